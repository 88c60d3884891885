"""Recording every state-changing call in the audit trail (services.audit).

The web console's forms (``/ui/…``) are recorded as the API's calls are.

A call that succeeded is recorded by its request's own transaction
(``api.deps.request_session``), so its event and its change commit together
or not at all. Every other call under ``/v1/`` (refused with 401, 403, 404,
422, 413, or failed) is recorded by :class:`AuditTrail`, an ASGI middleware
so that no route can forget it: after the answer, in a transaction of its own,
as the call's own was rolled back. If the database refuses that one, the
call's answer stands and the failure is logged.

Who made the call is the principal the route's authentication found
(``request.state.principal``); when there was none, the user name the caller
claimed is kept. A route may add facts of its own as JSON in the event's
detail (``request.state.audit_detail``: a template trigger's id).
"""

from __future__ import annotations

import json
import logging

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from craton_wf.services import audit

log = logging.getLogger(__name__)

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def is_audited(path: str) -> bool:
    """The API's calls and the web console's forms, which act through the same services."""
    return path.startswith(("/v1/", "/ui/"))


def record_call(session: Session, request: Request, status: int, location: str | None) -> None:
    """The call's event, in ``session``'s transaction."""
    audit.record(
        session,
        principal=getattr(request.state, "principal", None),
        claimed_user=request.headers.get("x-auth-user"),
        method=request.method,
        path=request.url.path,
        status=status,
        client=request.client.host if request.client else None,
        location=location,
        detail=_detail(request),
    )


def _detail(request: Request) -> str | None:
    facts = getattr(request.state, "audit_detail", None)
    return json.dumps(facts, sort_keys=True) if facts else None


def mark_recorded(request: Request) -> None:
    """The call's event is committed (its transaction with it): nothing more to record."""
    request.state.audited = True


class AuditTrail:
    """Records the state-changing calls under ``/v1/`` and ``/ui/`` their own transaction
    did not."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in STATE_CHANGING
            or not is_audited(scope["path"])
        ):
            await self.app(scope, receive, send)
            return
        status, location = 500, None  # when no answer started: the server error's

        async def send_noting(message: Message) -> None:
            nonlocal status, location
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", ()):
                    if name.lower() == b"location":
                        location = value.decode("latin-1")
            await send(message)

        try:
            await self.app(scope, receive, send_noting)
        finally:
            if not scope.get("state", {}).get("audited"):
                await run_in_threadpool(_record_apart, Request(scope), status, location)


def _record_apart(request: Request, status: int, location: str | None) -> None:
    try:
        with request.app.state.sessions.begin() as session:
            record_call(session, request, status, location)
    except Exception:
        log.exception("could not record %s %s in the audit trail", request.method, request.url)
