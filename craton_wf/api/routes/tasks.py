"""Tasks, their builds and build logs.

``POST /v1/tasks`` takes JSON (a git source) or multipart form data with a
``spec`` JSON part and an ``archive`` part (an uploaded directory as tar.gz).
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from craton_wf.api.audit import mark_recorded, record_call
from craton_wf.api.deps import (
    Authorized,
    CurrentUser,
    PageDep,
    ReadSessionmaker,
    SessionDep,
    SettingsDep,
    WriteSessionmaker,
    created,
    page_links,
    wake_runner,
)
from craton_wf.api.openapi import API_ERRORS, follow_responses, upload_body
from craton_wf.api.schemas import (
    ApprovalRead,
    ApprovalRequest,
    BuildList,
    BuildLogPage,
    BuildLogRead,
    BuildRead,
    BuildRequest,
    TaskCreate,
    TaskList,
    TaskRead,
    TaskUpdate,
)
from craton_wf.api.streams import build_log_items, follow_response, last_event_id
from craton_wf.engine import source_rules, task_env
from craton_wf.errors import InvalidInput, PayloadTooLarge
from craton_wf.services import approvals
from craton_wf.services import tasks as task_service
from craton_wf.settings import Settings

router = APIRouter(prefix="/v1", dependencies=[Authorized], tags=["tasks"], responses=API_ERRORS)

SpecT = TypeVar("SpecT", bound=BaseModel)


def task_rules(settings: Settings) -> task_service.TaskRules:
    return task_service.TaskRules(
        resources=task_env.resource_policy(settings),
        network_allowed=settings.task_network_allowed,
        sources=source_rules.git_source_policy(settings),
        archives=source_rules.archive_limits(settings),
    )


def task_read(session: Any, task: Any) -> TaskRead:
    view = task_service.task_view(session, task)
    read = TaskRead.model_validate(task)
    read.image, read.digest, read.commit = view["image"], view["digest"], view["commit"]
    read.current_build = (
        BuildRead.model_validate(view["current_build"]) if view["current_build"] else None
    )
    state = approvals.state_of(session, task)
    read.approval = ApprovalRead(
        status=state.status,
        build=state.build_number,
        digest=state.digest,
        by=state.by,
        at=state.at,
        reason=state.reason,
    )
    return read


async def _read_upload(
    request: Request, max_bytes: int, schema: type[SpecT]
) -> tuple[SpecT, bytes | None]:
    """The JSON fields as ``schema``'s model and, for multipart bodies, the archive bytes."""
    length = request.headers.get("content-length")
    if length and (length.isascii() and length.isdigit()) and int(length) > max_bytes + 1024 * 1024:
        raise PayloadTooLarge(f"the request body is over the {max_bytes} byte limit")
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=4, max_part_size=max_bytes + 1)
        raw_spec = form.get("spec")
        archive_part = form.get("archive")
        if archive_part is None or isinstance(archive_part, str):
            raise InvalidInput("the multipart body needs an 'archive' file part")
        archive = await archive_part.read(max_bytes + 1)
        if len(archive) > max_bytes:
            raise PayloadTooLarge(f"the archive is over the {max_bytes} byte limit")
        try:
            fields = json.loads(raw_spec) if isinstance(raw_spec, str) and raw_spec else {}
        except ValueError as exc:
            raise InvalidInput(f"the 'spec' part is not JSON: {exc}") from exc
        except RecursionError as exc:  # the decoder's own limit, as FastAPI's bodies meet it
            raise InvalidInput("the 'spec' part is not JSON: nested too deeply") from exc
    else:
        body = await request.body()
        archive = None
        try:
            fields = json.loads(body) if body else {}
        except ValueError as exc:
            raise InvalidInput(f"the body is not JSON: {exc}") from exc
        except RecursionError as exc:
            raise InvalidInput("the body is not JSON: nested too deeply") from exc
    if not isinstance(fields, dict):
        raise InvalidInput("the task spec must be a JSON object")
    try:
        return schema.model_validate(fields), archive
    except ValidationError as exc:  # as any other body: 422, every problem named
        raise RequestValidationError(exc.errors()) from exc


@router.post(
    "/tasks", status_code=201, response_model=TaskRead, openapi_extra=upload_body(TaskCreate)
)
async def create_task(
    request: Request,
    response: Response,
    sessions: WriteSessionmaker,
    me: CurrentUser,
    settings: SettingsDep,
) -> TaskRead:
    """Written in a transaction of its own once the body is read (``api.deps``)."""
    spec, archive = await _read_upload(request, settings.upload_max_bytes, TaskCreate)

    def create() -> TaskRead:
        with sessions.begin() as session:
            task = task_service.create_task(
                session,
                me.project_id,
                me.user_id,
                spec,
                archive,
                settings.upload_max_bytes,
                task_rules(settings),
            )
            created(response, request, f"tasks/{task.id}")
            record_call(session, request, 201, response.headers["location"])
            read = task_read(session, task)
        mark_recorded(request)
        return read

    read = await run_in_threadpool(create)
    wake_runner(request)
    return read


@router.get("/tasks", response_model=TaskList)
def list_tasks(
    request: Request,
    session: SessionDep,
    me: CurrentUser,
    page: PageDep,
    name: str | None = None,
    status: str | None = None,
    kind: str | None = None,
    public: bool | None = None,
) -> dict[str, Any]:
    filters = {"name": name, "status": status, "kind": kind, "public": public}
    result = task_service.list_tasks(session, me, page, filters)
    return {
        "tasks": [task_read(session, t) for t in result.items],
        "links": page_links(request, result),
    }


@router.get("/tasks/{task_id}")
def show_task(task_id: str, session: SessionDep, me: CurrentUser) -> TaskRead:
    return task_read(session, task_service.get_visible_task(session, me, task_id))


@router.put("/tasks/{task_id}")
def update_task(
    task_id: str, body: TaskUpdate, session: SessionDep, me: CurrentUser, settings: SettingsDep
) -> TaskRead:
    task = task_service.get_owned_task(session, me.project_id, task_id)
    task_service.update_task(session, task, body, task_rules(settings), me)
    return task_read(session, task)


@router.delete("/tasks/{task_id}", status_code=204)
def delete_task(task_id: str, session: SessionDep, me: CurrentUser) -> Response:
    task_service.delete_task(session, task_service.get_owned_task(session, me.project_id, task_id))
    return Response(status_code=204)


@router.post(
    "/tasks/{task_id}/builds",
    status_code=201,
    response_model=BuildRead,
    openapi_extra=upload_body(BuildRequest),
)
async def rebuild_task(
    task_id: str,
    request: Request,
    response: Response,
    sessions: WriteSessionmaker,
    me: CurrentUser,
    settings: SettingsDep,
) -> BuildRead:
    """Written in a transaction of its own once the body is read (``api.deps``)."""
    wanted, archive = await _read_upload(request, settings.upload_max_bytes, BuildRequest)

    def build() -> BuildRead:
        with sessions.begin() as session:
            task = task_service.get_owned_task(session, me.project_id, task_id)
            new = task_service.request_build(
                session,
                task,
                me.user_id,
                ref=wanted.ref,
                archive=archive,
                max_archive_bytes=settings.upload_max_bytes,
                rules=task_rules(settings),
            )
            created(response, request, f"tasks/{task.id}/builds/{new.id}")
            record_call(session, request, 201, response.headers["location"])
            read = BuildRead.model_validate(new)
        mark_recorded(request)
        return read

    read = await run_in_threadpool(build)
    wake_runner(request)
    return read


@router.get("/tasks/{task_id}/builds", response_model=BuildList)
def list_builds(
    task_id: str, request: Request, session: SessionDep, me: CurrentUser, page: PageDep
) -> dict[str, Any]:
    task = task_service.get_owned_task(session, me.project_id, task_id)
    result = task_service.list_builds(session, task, page)
    return {
        "builds": [BuildRead.model_validate(b) for b in result.items],
        "links": page_links(request, result),
    }


@router.get("/tasks/{task_id}/builds/{build_id}")
def show_build(task_id: str, build_id: str, session: SessionDep, me: CurrentUser) -> BuildRead:
    task = task_service.get_owned_task(session, me.project_id, task_id)
    return BuildRead.model_validate(task_service.get_build(session, task, build_id))


@router.get(
    "/tasks/{task_id}/builds/{build_id}/logs",
    response_model=None,
    responses=follow_responses(BuildLogPage, "a BuildLogRead per line", "status"),
)
def build_logs(
    task_id: str,
    build_id: str,
    request: Request,
    session: SessionDep,
    sessions: ReadSessionmaker,
    me: CurrentUser,
    after: int = 0,
    limit: int = 1000,
    follow: bool = False,
) -> Any:
    limit = max(1, min(limit, 10_000))
    task = task_service.get_owned_task(session, me.project_id, task_id)
    build = task_service.get_build(session, task, build_id)
    if follow:
        after = last_event_id(request, after)
        items = build_log_items(sessions, me.project_id, task.id, build.id, after=after)
        return follow_response(request, items)
    lines = task_service.read_build_logs(session, build, after, limit)
    return {
        "logs": [BuildLogRead.model_validate(x) for x in lines],
        "status": build.status,
        "next_after": lines[-1].seq if lines else after,
    }


# --- approvals ----------------------------------------------------------------------


def _decide(
    task_id: str, body: ApprovalRequest | None, session: Session, me: Any, decision: str
) -> Any:
    body = body or ApprovalRequest()
    task = task_service.get_owned_task(session, me.project_id, task_id)
    approvals.decide(
        session,
        me,
        task,
        decision,
        build_number=body.build,
        digest=body.digest,
        reason=body.reason,
    )
    return task_read(session, task)


@router.post("/tasks/{task_id}/approve")
def approve_task(
    task_id: str, session: SessionDep, me: CurrentUser, body: ApprovalRequest | None = None
) -> TaskRead:
    """Approve a READY build (by default the current one), naming its digest."""
    return _decide(task_id, body, session, me, approvals.APPROVED)  # type: ignore[no-any-return]


@router.post("/tasks/{task_id}/reject")
def reject_task(
    task_id: str, session: SessionDep, me: CurrentUser, body: ApprovalRequest | None = None
) -> TaskRead:
    return _decide(task_id, body, session, me, approvals.REJECTED)  # type: ignore[no-any-return]


@router.post("/tasks/{task_id}/revoke")
def revoke_task_approval(
    task_id: str, session: SessionDep, me: CurrentUser, body: ApprovalRequest | None = None
) -> TaskRead:
    return _decide(task_id, body, session, me, approvals.REVOKED)  # type: ignore[no-any-return]
