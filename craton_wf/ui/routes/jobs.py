"""The jobs pages: the list of the project's jobs, newest first."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from craton_wf.api.deps import SessionDep
from craton_wf.domain.states import JobStatus
from craton_wf.errors import InvalidInput
from craton_wf.services import jobs as job_service
from craton_wf.services import policy
from craton_wf.services.pagination import PageRequest
from craton_wf.ui.deps import ConsoleUser
from craton_wf.ui.render import page

router = APIRouter()
PAGE_SIZE = 50


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/ui/jobs", status_code=307)


@router.get("/jobs", response_class=HTMLResponse)
def job_list(
    request: Request,
    session: SessionDep,
    user: ConsoleUser,
    status: Annotated[str, Query(max_length=32)] = "",
    marker: Annotated[str, Query(max_length=20)] = "",
) -> HTMLResponse:
    policy.authorize(user.principal, "GET", "/v1/jobs")
    if status and status not in set(JobStatus):
        raise InvalidInput(f"unknown job status {status!r}: one of {', '.join(JobStatus)}")
    result = job_service.list_jobs(
        session,
        user.principal.project_id,
        PageRequest(limit=PAGE_SIZE, marker=marker or None, sort_keys=("id",), sort_dir="desc"),
        {"status": status or None},
    )
    rows: list[dict[str, Any]] = []
    for job in result.items:
        rows.append(
            {
                "job": job,
                **job_service.job_names(session, job),
                "hosts": job_service.job_summary(session, job)["hosts"],
            }
        )
    return page(
        request,
        "jobs.html",
        user,
        rows=rows,
        status=status,
        statuses=list(JobStatus),
        next_marker=result.next_marker,
    )
