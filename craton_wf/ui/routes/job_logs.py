"""A job's logs and events for the console: a run's log read backwards a page at a time,
followed live, downloaded whole; the job's events followed live.

These are the API's reads (``GET /v1/jobs/{id}/logs`` with ``run``, ``tail``
and ``before``; ``follow=true`` on logs and events) under ``/ui``, where the
browser is known by its session cookie: an ``EventSource`` cannot send a
token. Each applies the API route's rule first (a run's log needs what the
API's logs need: the auditor role) and looks the job up in the caller's
project (another project's is 404), then calls the same service function
with the same arguments; the streams are ``api.streams``' one implementation.

A log opens at its end: ``tail`` lines, then ``before`` the first line shown,
page by page, each page costing its own rows however long the log. The
download is every line of the run in order, read in pages of a few thousand,
each page its own short read transaction, so a million-line log is streamed
without holding a transaction or the whole log in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session, sessionmaker

from craton_wf.api.deps import ReadSessionmaker, SessionDep
from craton_wf.api.streams import job_event_items, job_log_items, last_event_id, sse_response
from craton_wf.services import job_views, policy
from craton_wf.services import jobs as job_service
from craton_wf.ui import PREFIX
from craton_wf.ui.deps import ConsoleUser

router = APIRouter(prefix=PREFIX)
LOGS = "/v1/jobs/{job_id}/logs"
DOWNLOAD_PAGE = 5000
MAX_PAGE = 5000


def _line(row: job_service.LogRow) -> dict[str, Any]:
    line = row[0]
    return {"id": line.id, "seq": line.seq, "ts": line.ts.isoformat(), "stream": line.stream,
            "line": line.line}  # fmt: skip


@router.get("/jobs/{job_id}/logs")
def run_log_page(
    job_id: int,
    session: SessionDep,
    user: ConsoleUser,
    run: Annotated[int, Query(ge=1)],
    tail: Annotated[int | None, Query(ge=1, le=MAX_PAGE)] = None,
    before: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 500,
) -> dict[str, Any]:
    """A page of run ``run``'s log, oldest first: its last ``tail`` lines, or the
    ``limit`` lines before line ``before``; with the run's state and where to go on."""
    policy.authorize(user.principal, "GET", LOGS)
    job = job_service.get_job(session, user.principal.project_id, job_id)
    found = job_service.get_run_of_job(session, job, run)
    count = tail if tail is not None else limit
    rows = job_service.read_logs_before(
        session, job, run_id=run, before=None if tail is not None else before, limit=count
    )
    return {
        "lines": [_line(row) for row in rows],
        "previous_before": rows[0][0].id if len(rows) == count else None,
        "run": {
            "id": found.id,
            "status": found.status,
            "step_name": found.step_name,
            "host_name": job_views.host_name_of_run(session, found),
            "attempt": found.attempt,
            "exit_code": found.exit_code,
            "log_gap": found.log_gap,
            "log_capped": found.log_capped,
        },
        "job_status": job.status,
    }


@router.get("/jobs/{job_id}/logs/stream")
def run_log_stream(
    job_id: int,
    request: Request,
    session: SessionDep,
    sessions: ReadSessionmaker,
    user: ConsoleUser,
    run: Annotated[int, Query(ge=1)],
    after: Annotated[int, Query(ge=0)] = 0,
) -> StreamingResponse:
    """Run ``run``'s lines after line ``after`` as they are stored (SSE), until it ends."""
    policy.authorize(user.principal, "GET", LOGS)
    project_id = user.principal.project_id
    job = job_service.get_job(session, project_id, job_id)
    job_service.get_run_of_job(session, job, run)
    items = job_log_items(
        sessions, project_id, job.id, after=last_event_id(request, after), run_id=run
    )
    return sse_response(request, items)


@router.get("/jobs/{job_id}/events/stream")
def job_event_stream(
    job_id: int,
    request: Request,
    session: SessionDep,
    sessions: ReadSessionmaker,
    user: ConsoleUser,
    after: Annotated[int, Query(ge=0)] = 0,
) -> StreamingResponse:
    """The job's events after event ``after`` (SSE), until the job has finished."""
    policy.authorize(user.principal, "GET", "/v1/jobs/{job_id}/events")
    project_id = user.principal.project_id
    job = job_service.get_job(session, project_id, job_id)
    items = job_event_items(sessions, project_id, job.id, after=last_event_id(request, after))
    return sse_response(request, items)


@router.get("/jobs/{job_id}/runs/{run_id}/log.txt")
def download_run_log(
    job_id: int,
    run_id: int,
    session: SessionDep,
    sessions: ReadSessionmaker,
    user: ConsoleUser,
    timestamps: bool = False,
) -> StreamingResponse:
    """Every line of the run, in order, as text (``timestamps``: each line's time first)."""
    policy.authorize(user.principal, "GET", LOGS)
    project_id = user.principal.project_id
    job = job_service.get_job(session, project_id, job_id)
    run = job_service.get_run_of_job(session, job, run_id)
    host_name = job_views.host_name_of_run(session, run) or "job"
    filename = _safe_name(f"job{job.id}-{host_name}-{run.step_name}.log")
    return StreamingResponse(
        _all_lines(sessions, project_id, job.id, run.id, timestamps),
        media_type="text/plain; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _safe_name(name: str) -> str:
    return "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in name)


def _all_lines(
    sessions: sessionmaker[Session], project_id: str, job_id: int, run_id: int, timestamps: bool
) -> Iterator[bytes]:
    next_seq = 1
    while True:
        with sessions.begin() as session:
            job = job_service.get_job(session, project_id, job_id)
            rows = job_service.read_logs(
                session, job, run_id=run_id, from_seq=next_seq, limit=DOWNLOAD_PAGE
            )
        if not rows:
            return
        text = "".join(
            (f"{line.ts.isoformat()} {line.stream} " if timestamps else "") + line.line + "\n"
            for line, _host, _step in rows
        )
        yield text.encode()
        next_seq = rows[-1][0].seq + 1
        if len(rows) < DOWNLOAD_PAGE:
            return
