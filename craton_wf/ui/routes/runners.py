"""The runners page: every registered runner, alive or not, its heartbeat's age,
its executor, and the runs and builds it holds a lease on (its slots in use).

Read under ``GET /v1/runners``'s rule. A runner's capacity is its own
setting, not recorded in the registry; the page says this server's
(``runner_slots``, ``build_slots``), which the embedded runner and runners
started with the same settings share.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from craton_wf.api.deps import SessionDep, SettingsDep
from craton_wf.services import policy
from craton_wf.services import runners as runner_service
from craton_wf.services.pagination import PageRequest
from craton_wf.ui import PREFIX
from craton_wf.ui.deps import ConsoleUser
from craton_wf.ui.render import page

router = APIRouter(prefix=PREFIX)
PAGE_SIZE = 100


@router.get("/runners", response_class=HTMLResponse)
def runner_list(
    request: Request,
    session: SessionDep,
    user: ConsoleUser,
    settings: SettingsDep,
    marker: Annotated[str, Query(max_length=64)] = "",
) -> HTMLResponse:
    policy.authorize(user.principal, "GET", "/v1/runners")
    found = runner_service.list_runners(
        session,
        settings.lease_seconds,
        PageRequest(
            limit=PAGE_SIZE, marker=marker or None, sort_keys=("heartbeat_at",), sort_dir="desc"
        ),
    )
    held = runner_service.leases_held(session, [view.id for view in found.items])
    now = datetime.now(UTC)
    rows = [
        {
            "view": view,
            "age": max((now - view.record.heartbeat_at).total_seconds(), 0.0),
            "held": held.get(view.id, runner_service.LeasesHeld()),
        }
        for view in found.items
    ]
    return page(
        request,
        "runners.html",
        user,
        rows=rows,
        runner_slots=settings.runner_slots,
        build_slots=settings.build_slots,
        lease_seconds=settings.lease_seconds,
        next_marker=found.next_marker,
    )
