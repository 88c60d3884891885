"""What the console's job pages read: a page of jobs with their names and host counts,
a job's steps summarised over its hosts, and one page of its host × step grid.

Every function here costs a fixed number of queries, whatever the page or the
job holds: a jobs page asks once for the names (workflow, task, creator) of all
its jobs and once for their host counts, rather than three lookups and a count
per row; a job's graph is one ``GROUP BY`` over its runs; a grid page reads its
hosts (one page, by position) and then only their runs. A job of 2,000 hosts ×
9 steps thus renders a page of 100 hosts from about 900 rows.

Filters are those of the jobs list: status, workflow or task name, who
launched it (user name), created after/before. They are the API's list
filters plus names in place of ids, which is what a person types.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Row, exists, func, or_, select
from sqlalchemy.orm import Session, undefer

from craton_wf.db.models import Job, JobEvent, JobHost, Run, Task, User, Workflow
from craton_wf.domain.states import FINAL_JOB_STATES, RunStatus
from craton_wf.services.jobs import JOB_SORT_KEYS, describe_filters
from craton_wf.services.pagination import Page, PageRequest, paginate, scoped

FINAL_JOB_VALUES = frozenset(s.value for s in FINAL_JOB_STATES)
FAILED_RUN_VALUES = frozenset({RunStatus.FAILED.value, RunStatus.TIMED_OUT.value})

# A step's state over its hosts: the first of these any of its runs is in, so
# a failure shows even while other hosts still run, and a running step shows
# as running until every host is done.
STEP_STATE_ORDER = (
    RunStatus.FAILED,
    RunStatus.TIMED_OUT,
    RunStatus.RUNNING,
    RunStatus.STARTING,
    RunStatus.QUEUED,
    RunStatus.PENDING,
    RunStatus.SUCCEEDED,
    RunStatus.CANCELLED,
    RunStatus.SKIPPED,
)
# How a count is said in a step's note, shortest first.
COUNT_WORDS = {
    "SUCCEEDED": "ok",
    "FAILED": "failed",
    "TIMED_OUT": "timed out",
    "RUNNING": "running",
    "STARTING": "starting",
    "QUEUED": "queued",
    "PENDING": "pending",
    "SKIPPED": "skipped",
    "CANCELLED": "cancelled",
}


@dataclass(frozen=True)
class JobFilters:
    status: str | None = None
    workflow: str | None = None  # a workflow's name, or a task's for single-task jobs
    who: str | None = None  # the name of the user who launched the job
    created_after: datetime | None = None
    created_before: datetime | None = None

    def any(self) -> bool:
        return any(value is not None for value in vars(self).values())


@dataclass
class JobRow:
    """A row of the jobs list."""

    job: Job
    workflow_name: str | None = None
    task_name: str | None = None
    created_by_name: str | None = None
    hosts: dict[str, int] = field(default_factory=dict)
    targets: str = ""

    @property
    def final(self) -> bool:
        return self.job.status in FINAL_JOB_VALUES


def list_jobs(
    session: Session, project_id: str, filters: JobFilters, marker: str | None, limit: int
) -> Page[Job]:
    """A page of the project's jobs that match ``filters``, newest first."""
    stmt = scoped(Job, project_id).options(undefer(Job.targets))
    if filters.status is not None:
        stmt = stmt.where(Job.status == filters.status)
    if filters.workflow is not None:
        workflows = select(Workflow.id).where(
            Workflow.project_id == project_id, Workflow.name == filters.workflow
        )
        tasks = select(Task.id).where(Task.name == filters.workflow)
        stmt = stmt.where(or_(Job.workflow_id.in_(workflows), Job.task_id.in_(tasks)))
    if filters.who is not None:
        stmt = stmt.where(Job.created_by.in_(select(User.id).where(User.name == filters.who)))
    if filters.created_after is not None:
        stmt = stmt.where(Job.created_at >= filters.created_after)
    if filters.created_before is not None:
        stmt = stmt.where(Job.created_at < filters.created_before)
    request = PageRequest(limit=limit, marker=marker, sort_keys=("id",), sort_dir="desc")
    return paginate(session, stmt, Job, request, JOB_SORT_KEYS)


def job_rows(session: Session, jobs: Sequence[Job]) -> list[JobRow]:
    """The list's rows of ``jobs``: two queries for the page, not four per job."""
    ids = [job.id for job in jobs]
    if not ids:
        return []
    names = {
        job_id: (workflow, task, creator)
        for job_id, workflow, task, creator in session.execute(
            select(Job.id, Workflow.name, Task.name, User.name)
            .outerjoin(Workflow, Workflow.id == Job.workflow_id)
            .outerjoin(Task, Task.id == Job.task_id)
            .outerjoin(User, User.id == Job.created_by)
            .where(Job.id.in_(ids))
        )
    }
    counts: dict[int, dict[str, int]] = {}
    for job_id, status, count in session.execute(
        select(JobHost.job_id, JobHost.status, func.count())
        .where(JobHost.job_id.in_(ids))
        .group_by(JobHost.job_id, JobHost.status)
    ):
        counts.setdefault(job_id, {})[status] = count
    rows = []
    for job in jobs:
        workflow, task, creator = names.get(job.id, (None, None, None))
        rows.append(
            JobRow(job, workflow, task, creator, counts.get(job.id, {}), describe_targets(job))
        )
    return rows


def describe_targets(job: Job) -> str:
    """What the job was asked to run on, in a line: ``3 hosts: a, b, c; label=compute``."""
    targets = job.targets or {}
    parts = []
    if targets.get("retry_of"):
        which = "failed hosts" if targets.get("failed_hosts_only") else "hosts"
        parts.append(f"the {which} of job {targets['retry_of']}")
    else:
        hosts = [str(host) for host in targets.get("hosts") or []]
        if hosts:
            shown = ", ".join(hosts[:3]) + (f", … ({len(hosts)} named)" if len(hosts) > 3 else "")
            parts.append(f"hosts {shown}")
    if targets.get("filters"):
        parts.append(describe_filters(targets["filters"]))
    return "; ".join(parts)


# -- one job -------------------------------------------------------------------------


def step_counts(session: Session, job: Job) -> dict[str, Counter[str]]:
    """Each step's runs counted by state (one query over the job's runs)."""
    counts: dict[str, Counter[str]] = {step["name"]: Counter() for step in job.steps}
    for step_name, status, count in session.execute(
        select(Run.step_name, Run.status, func.count())
        .where(Run.job_id == job.id)
        .group_by(Run.step_name, Run.status)
    ):
        counts.setdefault(step_name, Counter())[status] = count
    return counts


def step_state(counts: Mapping[str, int]) -> str | None:
    """The most telling state of a step's runs (:data:`STEP_STATE_ORDER`)."""
    for state in STEP_STATE_ORDER:
        if counts.get(state.value):
            return state.value
    return None


def count_note(counts: Mapping[str, int]) -> str:
    """``1 failed · 2 running · 17 ok``, in the order of :data:`STEP_STATE_ORDER`."""
    return " · ".join(
        f"{counts[s.value]} {COUNT_WORDS[s.value]}" for s in STEP_STATE_ORDER if counts.get(s.value)
    )


def host_counts(session: Session, job: Job) -> dict[str, int]:
    return dict(
        session.execute(
            select(JobHost.status, func.count())
            .where(JobHost.job_id == job.id)
            .group_by(JobHost.status)
        ).all()
    )


@dataclass
class GridPage:
    """One page of a job's host × step grid."""

    hosts: list[Row[Any]]  # id, host_id, host_name, status, failed_step
    cells: dict[tuple[int | None, str], Row[Any]]  # (job host id or None, step) → run
    total: int  # hosts matching the filter
    page: int
    pages: int
    per_page: int


RUN_COLUMNS = (
    Run.id,
    Run.job_host_id,
    Run.step_name,
    Run.status,
    Run.attempt,
    Run.max_attempts,
    Run.exit_code,
    Run.started_at,
    Run.finished_at,
    Run.log_gap,
    Run.log_capped,
)


def grid_page(
    session: Session,
    job: Job,
    *,
    page: int = 1,
    per_page: int = 100,
    failed_only: bool = False,
    search: str = "",
) -> GridPage:
    """Hosts ``per_page`` at a time in the job's order (``failed_only``: those with a
    failed or timed-out run; ``search``: whose name holds it), with their runs, and
    the job's once-per-job runs (key ``(None, step)``) on every page."""
    where = [JobHost.job_id == job.id]
    if failed_only:
        where.append(
            exists().where(Run.job_host_id == JobHost.id, Run.status.in_(FAILED_RUN_VALUES))
        )
    if search:
        where.append(JobHost.host_name.contains(search, autoescape=True))
    total = session.execute(select(func.count()).select_from(JobHost).where(*where)).scalar_one()
    pages = max(1, -(-total // per_page))
    page = min(max(page, 1), pages)
    hosts: list[Row[Any]] = list(
        session.execute(
            select(
                JobHost.id, JobHost.host_id, JobHost.host_name, JobHost.status, JobHost.failed_step
            )
            .where(*where)
            .order_by(JobHost.position)
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
    )
    ids = [host.id for host in hosts]
    # Two reads along two indexes: the page's hosts' runs, the job's once-per-job runs.
    runs: list[Row[Any]] = list(
        session.execute(select(*RUN_COLUMNS).where(Run.job_host_id.in_(ids)))
    )
    if any(step.get("once") for step in job.steps):
        runs += session.execute(
            select(*RUN_COLUMNS).where(Run.job_id == job.id, Run.job_host_id.is_(None))
        )
    cells: dict[tuple[int | None, str], Row[Any]] = {
        (run.job_host_id, run.step_name): run for run in runs
    }
    return GridPage(hosts, cells, total, page, pages, per_page)


def latest_event_id(session: Session, job: Job) -> int:
    """The id of the job's newest event: where the page's live stream starts."""
    return session.execute(
        select(func.coalesce(func.max(JobEvent.id), 0)).where(JobEvent.job_id == job.id)
    ).scalar_one()


def retries_of(session: Session, job: Job) -> list[int]:
    """The ids of the jobs that retried ``job``."""
    return list(
        session.execute(
            select(Job.id)
            .where(Job.project_id == job.project_id, Job.retry_of_job_id == job.id)
            .order_by(Job.id)
        ).scalars()
    )


def is_running(job: Job) -> bool:
    return job.status not in FINAL_JOB_VALUES


def may_retry_failed(job: Job, hosts: Mapping[str, int]) -> bool:
    return job.status in FINAL_JOB_VALUES and bool(hosts.get("FAILED"))


def host_name_of_run(session: Session, run: Run) -> str | None:
    """The name of the host a run ran on (None: a once-per-job run)."""
    if run.job_host_id is None:
        return None
    return session.execute(
        select(JobHost.host_name).where(JobHost.id == run.job_host_id)
    ).scalar_one_or_none()
