"""A job's page: its header, its graph coloured by state, a page of its host × step
grid, the log pane, and the cancel, retry and resume (a job paused at its wave
gate) buttons.

The parts that change while the job runs (status and timings, the buttons,
the graph, the grid page) are one template, ``job_live.html``, rendered inside
the page and alone at ``/ui/jobs/{id}/live``: the page's script follows the
job's events (``job_logs.job_event_stream``) and, a moment after each burst,
fetches that fragment for the grid page it shows and swaps it in. One query
path renders both, so a live page shows what a reload would.

Cancel, retry and resume are forms posting to ``/ui/jobs/{id}/cancel``,
``/ui/jobs/{id}/retry`` and ``/ui/jobs/{id}/resume`` (the API's paths under
``/ui``, audited as the API's calls): the job is looked up first (another
project's is 404), then the API's rule for the call is applied (403
otherwise), then the API's service call is made with the API's arguments. The
answer is a redirect to the job (or to the retry) with a short notice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from craton_wf.api.deps import SessionDep, SettingsDep, again_on_conflict, wake_runner
from craton_wf.db.models import Job
from craton_wf.services import job_views, policy
from craton_wf.services import jobs as job_service
from craton_wf.ui import PREFIX
from craton_wf.ui.deps import CheckedForm, ConsoleUser, form_text
from craton_wf.ui.graph import workflow_svg
from craton_wf.ui.render import page

router = APIRouter(prefix=PREFIX)
HOSTS_PER_PAGE = 100
Notice = Annotated[str, Query(max_length=200)]
Search = Annotated[str, Query(max_length=255)]
PageNumber = Annotated[int, Query(alias="page", ge=1, le=1_000_000)]


@dataclass(frozen=True)
class GridView:
    """Which page of the grid is shown: failed hosts only, a name search, a page number."""

    failed: bool = False
    q: str = ""
    page: int = 1

    def query(self, page: int | None = None) -> dict[str, str]:
        """The view as a query string's fields, leaving out what is the default."""
        fields = {"failed": "true" if self.failed else "", "q": self.q}
        fields["page"] = str(page or self.page) if (page or self.page) > 1 else ""
        return {key: value for key, value in fields.items() if value}


def grid_view(failed: bool = False, q: Search = "", page_number: PageNumber = 1) -> GridView:
    return GridView(failed, q, page_number)


Grid = Annotated[GridView, Depends(grid_view)]


def live_context(session: Session, job: Job, view: GridView) -> dict[str, Any]:
    """What ``job_live.html`` shows: the job's state, its graph and one grid page."""
    counts = job_views.step_counts(session, job)
    hosts = job_views.host_counts(session, job)
    grid = job_views.grid_page(
        session,
        job,
        page=view.page,
        per_page=HOSTS_PER_PAGE,
        failed_only=view.failed,
        search=view.q,
    )
    states = {name: job_views.step_state(c) for name, c in counts.items()}
    notes = {name: job_views.count_note(c) for name, c in counts.items()}
    graph = workflow_svg(
        job.steps,
        {name: state for name, state in states.items() if state},
        notes,
    )
    shown = GridView(view.failed, view.q, grid.page)  # a page past the last: the last
    return {
        "job": job,
        **job_service.job_names(session, job),
        "targets": job_views.describe_targets(job),
        "retried_as": job_views.retries_of(session, job),
        "graph": graph,
        "steps": job.steps,
        "step_states": states,
        "step_notes": notes,
        "hosts": hosts,
        "grid": grid,
        "failed": view.failed,
        "q": view.q,
        "grid_query": urlencode(shown.query()),
        "page_link": lambda number: urlencode(shown.query(number)),
        "running": job_views.is_running(job),
        "may_retry_failed": job_views.may_retry_failed(job, hosts),
    }


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(
    request: Request,
    job_id: int,
    session: SessionDep,
    user: ConsoleUser,
    view: Grid,
    run: Annotated[int | None, Query(ge=1)] = None,
    notice: Notice = "",
) -> HTMLResponse:
    policy.authorize(user.principal, "GET", "/v1/jobs/{job_id}")
    job = job_service.get_job(session, user.principal.project_id, job_id)
    opened = None
    if run is not None and policy.may(user.principal, "GET", "/v1/jobs/{job_id}/logs"):
        opened = job_service.get_run_of_job(session, job, run)
    return page(
        request,
        "job.html",
        user,
        notice=notice,
        last_event=job_views.latest_event_id(session, job),
        opened=opened,
        **live_context(session, job, view),
    )


@router.get("/jobs/{job_id}/live", response_class=HTMLResponse)
def job_live(
    request: Request,
    job_id: int,
    session: SessionDep,
    user: ConsoleUser,
    view: Grid,
) -> HTMLResponse:
    """The changing parts of the job's page alone, for its script to swap in."""
    policy.authorize(user.principal, "GET", "/v1/jobs/{job_id}")
    job = job_service.get_job(session, user.principal.project_id, job_id)
    return page(request, "job_live.html", user, **live_context(session, job, view))


def _back(job_id: int, notice: str) -> RedirectResponse:
    return RedirectResponse(f"/ui/jobs/{job_id}?{urlencode({'notice': notice})}", status_code=303)


@router.post("/jobs/{job_id}/cancel", status_code=303)
def cancel_job(
    request: Request, job_id: int, session: SessionDep, user: ConsoleUser, _form: CheckedForm
) -> RedirectResponse:
    me = user.principal
    job_service.get_job(session, me.project_id, job_id)  # another project's: 404 first
    policy.authorize(me, "POST", "/v1/jobs/{job_id}/cancel")

    def cancel() -> Job:
        return job_service.cancel(session, job_service.get_job(session, me.project_id, job_id))

    job = again_on_conflict(session, cancel)
    wake_runner(request)
    return _back(job.id, f"Cancel requested: the job is {job.status}.")


@router.post("/jobs/{job_id}/resume", status_code=303)
def resume_job(
    request: Request, job_id: int, session: SessionDep, user: ConsoleUser, _form: CheckedForm
) -> RedirectResponse:
    """Start the next wave of a job paused at its wave gate (as the API's resume)."""
    me = user.principal
    job_service.get_job(session, me.project_id, job_id)  # another project's: 404 first
    policy.authorize(me, "POST", "/v1/jobs/{job_id}/resume")

    def resume() -> Job:
        job = job_service.get_job(session, me.project_id, job_id)
        return job_service.resume(session, job, me.user_name)

    job = again_on_conflict(session, resume)
    wake_runner(request)
    return _back(job.id, f"Resumed: wave {job.current_wave} started.")


@router.post("/jobs/{job_id}/retry", status_code=303)
def retry_job(
    request: Request,
    job_id: int,
    session: SessionDep,
    settings: SettingsDep,
    user: ConsoleUser,
    form: CheckedForm,
) -> RedirectResponse:
    me = user.principal
    old = job_service.get_job(session, me.project_id, job_id)
    policy.authorize(me, "POST", "/v1/jobs/{job_id}/retry")
    failed_only = form_text(form, "failed_hosts", "false").lower() in ("true", "1", "on", "yes")
    job = job_service.retry_job(
        session,
        me.project_id,
        me.user_id,
        old,
        failed_only,
        require_approval=settings.require_approval,
        principal=me,
    )
    wake_runner(request)
    which = "its failed hosts" if failed_only else "every host"
    return _back(job.id, f"Job {job.id} retries job {old.id} on {which}.")
