"""Jobs: create, read, hosts, runs, logs and events (live with ``follow=true``:
``api.streams``), cancel, retry."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from craton_wf.api.deps import (
    Authorized,
    CurrentUser,
    PageDep,
    ReadSessionmaker,
    SessionDep,
    SettingsDep,
    again_on_conflict,
    created,
    page_links,
    wake_runner,
)
from craton_wf.api.openapi import API_ERRORS, follow_responses
from craton_wf.api.schemas import (
    EventList,
    EventRead,
    JobCreate,
    JobHostList,
    JobHostRead,
    JobList,
    JobLogPage,
    JobRead,
    JobRetry,
    RunList,
    RunRead,
)
from craton_wf.api.streams import (
    follow_response,
    job_event_items,
    job_log_items,
    last_event_id,
    log_read,
)
from craton_wf.db.models import Job
from craton_wf.errors import InvalidInput
from craton_wf.services import jobs as job_service
from craton_wf.services.events import host_names_of_runs, list_events

router = APIRouter(prefix="/v1", dependencies=[Authorized], tags=["jobs"], responses=API_ERRORS)

BEFORE = "The page of lines before this line's id, oldest first (a log read backwards)."
TAIL = "The last lines of the log, oldest first: where a long log opens."


def job_read(session: Any, job: Job) -> JobRead:
    read = JobRead.model_validate(job)
    read.summary = job_service.job_summary(session, job)
    for name, value in job_service.job_names(session, job).items():
        setattr(read, name, value)
    return read


@router.post("/jobs", status_code=201)
def create_job(
    body: JobCreate,
    request: Request,
    response: Response,
    session: SessionDep,
    me: CurrentUser,
    settings: SettingsDep,
) -> JobRead:
    data = body.model_dump(exclude_unset=True)
    if body.filters is not None:
        data["filters"] = body.filters.model_dump(exclude_none=True)
    job = job_service.create_job(
        session,
        me.project_id,
        me.user_id,
        data,
        principal=me,
        require_approval=settings.require_approval,
    )
    created(response, request, f"jobs/{job.id}")
    read = job_read(session, job)
    wake_runner(request)
    return read


@router.get("/jobs", response_model=JobList)
def list_jobs(
    request: Request,
    session: SessionDep,
    me: CurrentUser,
    page: PageDep,
    status: str | None = None,
    workflow_id: int | None = None,
    task_id: int | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    result = job_service.list_jobs(
        session,
        me.project_id,
        page,
        {"status": status, "workflow_id": workflow_id, "task_id": task_id, "name": name},
    )
    return {
        "jobs": [job_read(session, j) for j in result.items],
        "links": page_links(request, result),
    }


@router.get("/jobs/{job_id}")
def show_job(job_id: int, session: SessionDep, me: CurrentUser) -> JobRead:
    return job_read(session, job_service.get_job(session, me.project_id, job_id))


@router.post("/jobs/{job_id}/cancel", status_code=202)
def cancel_job(job_id: int, request: Request, session: SessionDep, me: CurrentUser) -> JobRead:
    def cancel() -> JobRead:
        job = job_service.cancel(session, job_service.get_job(session, me.project_id, job_id))
        return job_read(session, job)

    read = again_on_conflict(session, cancel)
    wake_runner(request)
    return read


@router.post("/jobs/{job_id}/resume")
def resume_job(job_id: int, request: Request, session: SessionDep, me: CurrentUser) -> JobRead:
    """Start the next wave of a job paused at its wave gate (409 unless PAUSED)."""

    def resume() -> JobRead:
        job = job_service.get_job(session, me.project_id, job_id)
        return job_read(session, job_service.resume(session, job, me.user_name))

    read = again_on_conflict(session, resume)
    wake_runner(request)
    return read


@router.post("/jobs/{job_id}/abort", status_code=202)
def abort_job(job_id: int, request: Request, session: SessionDep, me: CurrentUser) -> JobRead:
    """End a running or paused job: hosts not started never run (409 once it finished)."""

    def abort() -> JobRead:
        job = job_service.get_job(session, me.project_id, job_id)
        return job_read(session, job_service.abort(session, job, me.user_name))

    read = again_on_conflict(session, abort)
    wake_runner(request)
    return read


@router.post("/jobs/{job_id}/retry", status_code=201)
def retry_job(
    job_id: int,
    request: Request,
    response: Response,
    session: SessionDep,
    me: CurrentUser,
    settings: SettingsDep,
    body: JobRetry | None = None,
) -> JobRead:
    failed_only = body.failed_hosts if body else False
    old = job_service.get_job(session, me.project_id, job_id)
    job = job_service.retry_job(
        session,
        me.project_id,
        me.user_id,
        old,
        failed_only,
        require_approval=settings.require_approval,
        principal=me,
    )
    created(response, request, f"jobs/{job.id}")
    read = job_read(session, job)
    wake_runner(request)
    return read


@router.get("/jobs/{job_id}/hosts", response_model=JobHostList)
def job_hosts(job_id: int, session: SessionDep, me: CurrentUser) -> dict[str, Any]:
    job = job_service.get_job(session, me.project_id, job_id)
    return {
        "hosts": [JobHostRead.model_validate(h) for h in job_service.list_job_hosts(session, job)]
    }


@router.get("/jobs/{job_id}/runs", response_model=RunList)
def job_runs(
    job_id: int,
    session: SessionDep,
    me: CurrentUser,
    host: str | None = None,
    step: str | None = None,
) -> dict[str, Any]:
    job = job_service.get_job(session, me.project_id, job_id)
    runs = []
    for run, job_host, deps in job_service.list_runs(session, job, host, step):
        read = RunRead.model_validate(run)
        read.host_id = job_host.host_id if job_host else None
        read.host_name = job_host.host_name if job_host else None
        read.depends_on = deps
        runs.append(read)
    return {"runs": runs}


@router.get(
    "/jobs/{job_id}/events",
    response_model=None,
    responses=follow_responses(EventList, "an EventRead per event", "job_status"),
)
def job_events(
    job_id: int,
    request: Request,
    session: SessionDep,
    sessions: ReadSessionmaker,
    me: CurrentUser,
    after: int = 0,
    limit: int = 1000,
    follow: bool = False,
) -> Any:
    job = job_service.get_job(session, me.project_id, job_id)
    if follow:
        after = last_event_id(request, after)
        return follow_response(
            request, job_event_items(sessions, me.project_id, job.id, after=after)
        )
    events = list_events(session, job.id, after, max(1, min(limit, 10_000)))
    hosts = host_names_of_runs(session, events)
    reads = [EventRead.model_validate(e) for e in events]
    for read in reads:
        read.host_name = hosts.get(read.run_id) if read.run_id is not None else None
    return {"events": reads}


@router.get(
    "/jobs/{job_id}/logs",
    response_model=None,
    responses=follow_responses(JobLogPage, "a LogRead per line", "job_status (and run_status)"),
)
def job_logs(
    job_id: int,
    request: Request,
    session: SessionDep,
    sessions: ReadSessionmaker,
    me: CurrentUser,
    host: str | None = None,
    step: str | None = None,
    run: int | None = None,
    after: int = 0,
    limit: int = 1000,
    follow: bool = False,
    before: Annotated[int | None, Query(ge=1, description=BEFORE)] = None,
    tail: Annotated[int | None, Query(ge=1, le=10_000, description=TAIL)] = None,
) -> Any:
    limit = max(1, min(limit, 10_000))
    filters: dict[str, Any] = {"host": host, "step": step, "run_id": run}
    job = job_service.get_job(session, me.project_id, job_id)
    job_service.check_log_filters(session, job, host=host, run_id=run)
    backwards = before is not None or tail is not None
    if backwards and (follow or after):
        raise InvalidInput("before and tail read a log backwards; after and follow forwards")
    if follow:
        after = last_event_id(request, after)
        items = job_log_items(sessions, me.project_id, job.id, after=after, **filters)
        return follow_response(request, items)
    if backwards:
        count = limit if tail is None else tail
        rows = job_service.read_logs_before(session, job, before=before, limit=count, **filters)
        return {
            "logs": [log_read(r) for r in rows],
            "next_after": rows[-1][0].id if rows else 0,
            "job_status": job.status,
            "previous_before": rows[0][0].id if len(rows) == count else None,
        }
    rows = job_service.read_logs(session, job, after=after, limit=limit, **filters)
    return {
        "logs": [log_read(r) for r in rows],
        "next_after": rows[-1][0].id if rows else after,
        "job_status": job.status,
    }
