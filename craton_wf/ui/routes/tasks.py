"""The tasks pages: the list, a task with its builds and their logs, and the
approve / reject / revoke forms.

A task is read as ``GET /v1/tasks/{task_id}`` reads it (the project's own, a
public one, not one restricted to other roles); its builds and their logs as
``GET /v1/tasks/{task_id}/builds…`` do, which only a task's own project may
(a public task of another project shows its approved build, not its
history). A decision posts the build's number and the digest the page
showed, so an admin approves exactly the image they looked at: if a rebuild
changed it meanwhile, the service refuses (409) rather than approve another.
The service's rules hold as for the API: admins only, never a build's own
author (the page shows why instead of the button), public tasks root only.

A build's log is shown from its first line; while the build runs, the page
follows it through :func:`build_log_stream`, the API's one stream
implementation (``api.streams.build_log_items``) authenticated by the
session cookie.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse

from craton_wf.api.deps import ReadSessionmaker, SessionDep
from craton_wf.api.streams import build_log_items, last_event_id, sse_response
from craton_wf.domain.states import BuildStatus
from craton_wf.errors import InvalidInput
from craton_wf.services import approvals, policy
from craton_wf.services import tasks as task_service
from craton_wf.services.pagination import PageRequest
from craton_wf.services.users import user_names
from craton_wf.ui import PREFIX
from craton_wf.ui.deps import CheckedForm, ConsoleUser, form_text
from craton_wf.ui.render import page

router = APIRouter(prefix=PREFIX)
PAGE_SIZE = 50
BUILDS_SHOWN = 30
LOG_LINES = 5000  # of a build's log per page; later lines are a link away
DECISIONS = {
    "approve": approvals.APPROVED,
    "reject": approvals.REJECTED,
    "revoke": approvals.REVOKED,
}
FINISHED_BUILDS = {BuildStatus.READY.value, BuildStatus.FAILED.value}


@router.get("/tasks", response_class=HTMLResponse)
def task_list(
    request: Request,
    session: SessionDep,
    user: ConsoleUser,
    marker: Annotated[str, Query(max_length=20)] = "",
) -> HTMLResponse:
    policy.authorize(user.principal, "GET", "/v1/tasks")
    result = task_service.list_tasks(
        session,
        user.principal,
        PageRequest(limit=PAGE_SIZE, marker=marker or None, sort_keys=("name",)),
        {},
    )
    rows = [
        {
            **task_service.task_view(session, task),
            "approval": approvals.state_of(session, task),
        }
        for task in result.items
    ]
    return page(request, "tasks.html", user, rows=rows, next_marker=result.next_marker)


def _build_rows(session: Any, task: Any, me: Any) -> list[dict[str, Any]]:
    builds = task_service.list_builds(
        session, task, PageRequest(limit=BUILDS_SHOWN, sort_keys=("number",), sort_dir="desc")
    ).items
    authors = user_names(session, (build.requested_by for build in builds))
    rows = []
    for build in builds:
        decision = approvals.latest_decision(session, build)
        rows.append(
            {
                "build": build,
                "author": authors.get(build.requested_by) if build.requested_by else None,
                "mine": build.requested_by is not None and build.requested_by == me.user_id,
                "decision": decision,
                "decidable": build.status == BuildStatus.READY.value and bool(build.digest),
            }
        )
    return rows


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
def task_page(
    task_id: str,
    request: Request,
    session: SessionDep,
    user: ConsoleUser,
    build: Annotated[str, Query(max_length=20)] = "",
    after: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    notice: Annotated[str, Query(max_length=300)] = "",
) -> HTMLResponse:
    me = user.principal
    policy.authorize(me, "GET", "/v1/tasks/{task_id}")
    task = task_service.get_visible_task(session, me, task_id)
    owned = task.project_id == me.project_id
    builds: list[dict[str, Any]] = []
    shown, lines = None, []
    if owned and policy.may(me, "GET", "/v1/tasks/{task_id}/builds"):
        builds = _build_rows(session, task, me)
        if build or task.current_build_id is not None:
            shown = task_service.get_build(session, task, build or None)
            lines = task_service.read_build_logs(session, shown, after, LOG_LINES)
    return page(
        request,
        "task.html",
        user,
        task=task,
        view=task_service.task_view(session, task),
        approval=approvals.state_of(session, task),
        owned=owned,
        builds=builds,
        shown=shown,
        lines=lines,
        more_lines=len(lines) == LOG_LINES,
        following=shown is not None and shown.status not in FINISHED_BUILDS,
        log_after=lines[-1].seq if lines else after,
        notice=notice,
    )


@router.get("/tasks/{task_id}/builds/{build_id}/logs/stream")
def build_log_stream(
    task_id: str,
    build_id: str,
    request: Request,
    session: SessionDep,
    sessions: ReadSessionmaker,
    user: ConsoleUser,
    after: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> StreamingResponse:
    """The build's log lines after ``after`` (or the ``Last-Event-ID`` of a reconnect)
    as Server-Sent Events, until the build is finished."""
    me = user.principal
    policy.authorize(me, "GET", "/v1/tasks/{task_id}/builds/{build_id}/logs")
    task = task_service.get_owned_task(session, me.project_id, task_id)
    found = task_service.get_build(session, task, build_id)
    items = build_log_items(
        sessions, me.project_id, task.id, found.id, after=last_event_id(request, after)
    )
    return sse_response(request, items)


def _decide(task_id: str, action: str, session: Any, user: Any, form: Any) -> RedirectResponse:
    """``action`` (approve, reject, revoke) as ``POST /v1/tasks/{task_id}/<action>`` does it."""
    me = user.principal
    policy.authorize(me, "POST", f"/v1/tasks/{{task_id}}/{action}")
    task = task_service.get_owned_task(session, me.project_id, task_id)
    number = form_text(form, "build").strip()
    if number and not (number.isascii() and number.isdigit() and len(number) < 10):
        raise InvalidInput(f"build must be a build's number, not {number[:40]!r}")
    decided = approvals.decide(
        session,
        me,
        task,
        DECISIONS[action],
        build_number=int(number) if number else None,
        digest=form_text(form, "digest").strip() or None,
        reason=form_text(form, "reason").strip() or None,
    )
    build = task_service.get_build(session, task, decided.build_id)
    notice = quote(f"build {build.number}: {decided.decision}")
    return RedirectResponse(
        f"/ui/tasks/{task.id}?build={build.id}&notice={notice}", status_code=303
    )


@router.post("/tasks/{task_id}/approve", status_code=303)
def approve(
    task_id: str, session: SessionDep, user: ConsoleUser, form: CheckedForm
) -> RedirectResponse:
    return _decide(task_id, "approve", session, user, form)


@router.post("/tasks/{task_id}/reject", status_code=303)
def reject(
    task_id: str, session: SessionDep, user: ConsoleUser, form: CheckedForm
) -> RedirectResponse:
    return _decide(task_id, "reject", session, user, form)


@router.post("/tasks/{task_id}/revoke", status_code=303)
def revoke(
    task_id: str, session: SessionDep, user: ConsoleUser, form: CheckedForm
) -> RedirectResponse:
    return _decide(task_id, "revoke", session, user, form)
