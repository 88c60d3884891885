"""The audit trail page: the project's audit events, newest first, paged, filtered
by user, action and object.

Read under ``GET /v1/audit-events``'s rule (admins; root sees every
project's events, as there) through the same service call.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from craton_wf.api.deps import SessionDep
from craton_wf.errors import InvalidInput
from craton_wf.services import audit as audit_service
from craton_wf.services import policy
from craton_wf.ui import PREFIX
from craton_wf.ui.deps import ConsoleUser
from craton_wf.ui.render import page

router = APIRouter(prefix=PREFIX)
PAGE_SIZE = 50
Filter = Annotated[str, Query(max_length=255)]


@router.get("/audit", response_class=HTMLResponse)
def audit_trail(
    request: Request,
    session: SessionDep,
    user: ConsoleUser,
    user_name: Annotated[str, Query(alias="user", max_length=255)] = "",
    action: Filter = "",
    object_type: Filter = "",
    object_id: Filter = "",
    outcome: Filter = "",
    marker: Annotated[str, Query(max_length=18)] = "",
) -> HTMLResponse:
    policy.authorize(user.principal, "GET", "/v1/audit-events")
    if marker and not (marker.isascii() and marker.isdigit()):
        raise InvalidInput(f"marker {marker!r} is not an audit event's id")
    typed = {
        "user": user_name.strip(),
        "action": action.strip(),
        "object_type": object_type.strip(),
        "object_id": object_id.strip(),
        "outcome": outcome.strip(),
    }
    events, more = audit_service.list_events(
        session,
        user.principal,
        limit=PAGE_SIZE,
        marker=int(marker) if marker else None,
        user=typed["user"] or None,
        action=typed["action"] or None,
        object_type=typed["object_type"] or None,
        object_id=typed["object_id"] or None,
        outcome=typed["outcome"] or None,
    )
    kept = {key: value for key, value in typed.items() if value}
    return page(
        request,
        "audit.html",
        user,
        events=events,
        filters=typed,
        next_page=(
            "/ui/audit?" + urlencode({**kept, "marker": events[-1].id}) if more and events else None
        ),
    )
