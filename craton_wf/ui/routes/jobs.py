"""The jobs list: the project's jobs, newest first, filtered and paged.

Filters are what a person types (a workflow's or task's name, a user's name,
times in UTC); an unknown status or a time that is not one is a 400 page
naming it. A page of 50 jobs costs four queries whatever it holds
(``services.job_views``). While any listed job has not finished, the page's
script fetches the same URL again every few seconds and swaps the table's
rows: no second endpoint, the same query, the same policy.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from craton_wf.api.deps import SessionDep
from craton_wf.domain.states import JobStatus
from craton_wf.errors import InvalidInput
from craton_wf.services import job_views, policy
from craton_wf.ui import PREFIX
from craton_wf.ui.deps import ConsoleUser
from craton_wf.ui.render import page

router = APIRouter(prefix=PREFIX)
PAGE_SIZE = 50
Text = Annotated[str, Query(max_length=255)]


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/ui/jobs", status_code=307)


def parse_time(name: str, value: str) -> datetime | None:
    """``2026-12-05T03:50`` (a browser's datetime-local), a date, or ISO 8601; UTC
    unless it names its zone."""
    if not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise InvalidInput(f"{name} must be a time like 2026-12-05T03:50 (UTC): {value!r}") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@router.get("/jobs", response_class=HTMLResponse)
def job_list(
    request: Request,
    session: SessionDep,
    user: ConsoleUser,
    status: Annotated[str, Query(max_length=32)] = "",
    workflow: Text = "",
    who: Text = "",
    after: Annotated[str, Query(max_length=40)] = "",
    before: Annotated[str, Query(max_length=40)] = "",
    marker: Annotated[str, Query(max_length=20)] = "",
) -> HTMLResponse:
    policy.authorize(user.principal, "GET", "/v1/jobs")
    if status and status not in set(JobStatus):
        raise InvalidInput(f"unknown job status {status!r}: one of {', '.join(JobStatus)}")
    filters = job_views.JobFilters(
        status=status or None,
        workflow=workflow.strip() or None,
        who=who.strip() or None,
        created_after=parse_time("after", after),
        created_before=parse_time("before", before),
    )
    result = job_views.list_jobs(
        session, user.principal.project_id, filters, marker or None, PAGE_SIZE
    )
    rows = job_views.job_rows(session, result.items)
    query = {"status": status, "workflow": workflow, "who": who, "after": after, "before": before}
    kept = {key: value for key, value in query.items() if value}
    older = urlencode({**kept, "marker": result.next_marker}) if result.next_marker else ""
    return page(
        request,
        "jobs.html",
        user,
        rows=rows,
        query=query,
        filtered=filters.any(),
        statuses=list(JobStatus),
        older=older,
        newest=urlencode(kept) if marker else None,
        live=any(not row.final for row in rows),
    )
