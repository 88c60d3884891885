"""Recording every state-changing call in the audit trail (services.audit).

A middleware, so that no route can forget it and refused calls (401, 403,
404, 422) are recorded like the rest. Who made the call is the principal the
route's authentication found (``request.state.principal``); when there was
none, the user name the caller claimed is kept. The event is written after
the answer, in a transaction of its own; if the database refuses, the call's
answer stands and the failure is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from craton_wf.services import audit

log = logging.getLogger(__name__)

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def install_audit_trail(app: FastAPI) -> None:
    @app.middleware("http")
    async def audit_trail(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        if request.method in STATE_CHANGING and request.url.path.startswith("/v1/"):
            await run_in_threadpool(_record, request, response)
        return response


def _record(request: Request, response: Response) -> None:
    principal = getattr(request.state, "principal", None)
    try:
        with request.app.state.sessions.begin() as session:
            audit.record(
                session,
                principal=principal,
                claimed_user=request.headers.get("x-auth-user"),
                method=request.method,
                path=request.url.path,
                status=response.status_code,
                client=request.client.host if request.client else None,
                location=response.headers.get("location"),
            )
    except Exception:
        log.exception("could not record %s %s in the audit trail", request.method, request.url)
