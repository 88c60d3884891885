"""Health, readiness and the runners' heartbeats."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from craton_wf.api.deps import Authorized, CurrentUser, PageDep, SessionDep, SettingsDep, page_links
from craton_wf.api.openapi import API_ERRORS
from craton_wf.api.operator_warnings import operator_warnings
from craton_wf.api.schemas import HealthRead, ReadinessRead, RunnerList, RunnerRead
from craton_wf.errors import CratonError
from craton_wf.services import runners as runner_service
from craton_wf.settings import Settings

if TYPE_CHECKING:
    from craton_wf.executors.base import Executor

router = APIRouter(tags=["system"])


@router.get("/healthz", response_model=HealthRead)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _executor_probe(request: Request, settings: Settings) -> Executor:
    from craton_wf.executors import make_executor

    executor = getattr(request.app.state, "executor_probe", None)
    if executor is None:
        executor = request.app.state.executor_probe = make_executor(settings)
    return executor


def _executor_check(request: Request, settings: Settings) -> str:
    """``ok``, or why the executor's runtime (engine, swarm, cluster) cannot be reached."""
    try:
        _executor_probe(request, settings).ping()
    except CratonError as exc:
        return f"error: {exc.message}"
    return "ok"


def _firewall_check(request: Request, settings: Settings) -> str:
    """``disabled``, ``ok``, or what of the task network firewall is not in place.

    Read from this host's kernel: the API answers for the runner of its own
    host (the embedded default); a runner elsewhere has its own host's rules.
    """
    if not settings.task_network_firewall:
        return "disabled"
    try:
        return _executor_probe(request, settings).firewall_status()
    except CratonError as exc:
        return f"error: {exc.message}"


@router.get(
    "/readyz",
    response_model=None,
    responses={
        200: {"model": ReadinessRead, "description": "Ready."},
        503: {"model": ReadinessRead, "description": "Not ready: the checks say why."},
    },
)
def readyz(request: Request, session: SessionDep, settings: SettingsDep) -> Any:
    checks: dict[str, Any] = {}
    live = 0
    try:
        runner_service.ping_database(session)
        live = runner_service.count_live(session, settings.lease_seconds)
        checks["database"] = "ok"
        checks["runners"] = live
    except Exception as exc:  # readiness reports, it does not raise
        session.rollback()
        checks["database"] = f"error: {type(exc).__name__}"
    checks["executor"] = {"name": settings.executor, "status": _executor_check(request, settings)}
    checks["task_network_firewall"] = _firewall_check(request, settings)
    ready = (
        checks["database"] == "ok"
        and live > 0
        and checks["executor"]["status"] == "ok"
        and checks["task_network_firewall"] in ("ok", "disabled")
    )
    return JSONResponse(
        status_code=200 if ready else 503,
        content={
            "status": "ready" if ready else "not ready",
            "checks": checks,
            # what an operator must know, whatever the readiness (approval off…)
            "warnings": operator_warnings(settings),
        },
    )


@router.get(
    "/v1/runners", dependencies=[Authorized], response_model=RunnerList, responses=API_ERRORS
)
def list_runners(
    request: Request,
    session: SessionDep,
    me: CurrentUser,
    settings: SettingsDep,
    page: PageDep,
    alive: bool | None = None,
) -> dict[str, Any]:
    """Registered runners, paged and sorted as every list; ``alive=true`` for the
    live ones only, ``false`` for those stopped or silent past a lease."""
    found = runner_service.list_runners(session, settings.lease_seconds, page, alive)
    runners = []
    for view in found.items:
        read = RunnerRead.model_validate(view.record)
        read.alive = view.alive
        runners.append(read)
    return {"runners": runners, "links": page_links(request, found)}
