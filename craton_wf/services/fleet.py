"""What the database says of the whole fleet, for ``/metrics``: a few aggregate queries.

Jobs and runs by state, builds waiting for an approval, the runners'
heartbeats: facts of every runner and API process at once, which no single
process could count, read when Prometheus scrapes (``api.metrics`` caches
them a few seconds). Each is one grouped count over an indexed column
(``jobs.status``; ``runs(status, queued_at)``), the tasks with a READY build,
or the runners heard from lately.

Jobs and runs that reached a final state are counted from their rows, which
never leave that state; so the counts only grow, and need no process to
remember them across restarts. One thing removes rows: deleting a project
(its jobs and runs go with it). :func:`retire_project_counts`, called before,
keeps what they counted in ``retired_counts``, added back here, so the
counters of final states never go down.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, exists, func, literal, or_, select
from sqlalchemy.orm import Session, aliased

from craton_wf.db.models import Build, Job, RetiredCount, Run, RunnerRecord, Task, TaskApproval
from craton_wf.domain.states import FINAL_JOB_STATES, FINAL_RUN_STATES
from craton_wf.engine.leases import db_now
from craton_wf.engine.runners import alive

# A runner that stopped without saying so (killed) keeps its row; its
# heartbeat's age is shown this long, then it is forgotten.
RUNNER_SHOWN_SECONDS = 3600.0
APPROVED = "approved"  # services.approvals.APPROVED, without importing the use cases


@dataclass(frozen=True)
class RunnerHeartbeat:
    id: str
    name: str
    executor: str
    age_seconds: float


@dataclass(frozen=True)
class FleetFigures:
    jobs: dict[str, int]  # stored jobs by status
    runs: dict[str, int]  # stored runs by status
    retired_jobs: dict[str, int]  # final jobs deleted with their project, by status
    retired_runs: dict[str, int]
    approvals_pending: int
    runners: list[RunnerHeartbeat]  # not stopped, heard from within RUNNER_SHOWN_SECONDS
    runners_alive: int

    def finished_jobs(self, status: str) -> int:
        return self.jobs.get(status, 0) + self.retired_jobs.get(status, 0)

    def finished_runs(self, status: str) -> int:
        return self.runs.get(status, 0) + self.retired_runs.get(status, 0)


def read_figures(session: Session, lease_seconds: float) -> FleetFigures:
    retired = session.execute(
        select(RetiredCount.kind, RetiredCount.status, func.sum(RetiredCount.count)).group_by(
            RetiredCount.kind, RetiredCount.status
        )
    ).all()
    now = db_now(session)
    return FleetFigures(
        jobs=_by_status(session, Job.status),
        runs=_by_status(session, Run.status),
        retired_jobs={status: int(n) for kind, status, n in retired if kind == "job"},
        retired_runs={status: int(n) for kind, status, n in retired if kind == "run"},
        approvals_pending=count_pending_approvals(session),
        runners=[
            # the runners' clocks stamp their heartbeats: a fast one is not in the future
            RunnerHeartbeat(
                row.id, row.name, row.executor, max(0.0, (now - row.heartbeat_at).total_seconds())
            )
            for row in session.execute(
                select(
                    RunnerRecord.id,
                    RunnerRecord.name,
                    RunnerRecord.executor,
                    RunnerRecord.heartbeat_at,
                )
                .where(
                    RunnerRecord.stopped_at.is_(None),
                    RunnerRecord.heartbeat_at > now - timedelta(seconds=RUNNER_SHOWN_SECONDS),
                )
                .order_by(RunnerRecord.id)
            )
        ],
        runners_alive=session.execute(
            select(func.count()).select_from(RunnerRecord).where(alive(lease_seconds, now))
        ).scalar_one(),
    )


def _by_status(session: Session, column: object) -> dict[str, int]:
    rows = session.execute(select(column, func.count()).group_by(column))  # type: ignore[call-overload]
    return {status: int(count) for status, count in rows}


def count_pending_approvals(session: Session) -> int:
    """Tasks whose READY build waits for a decision, as ``services.approvals.state_of``
    tells it: no decision about its digest yet, or (a public task) approved by
    someone not root."""
    newest = aliased(TaskApproval)
    newest_id = (
        select(func.max(TaskApproval.id))
        .where(TaskApproval.task_id == Task.id, TaskApproval.digest == Build.digest)
        .scalar_subquery()
    )
    approved_not_by_root = exists(
        select(literal(1)).where(
            newest.id == newest_id,
            newest.decision == APPROVED,
            newest.by_root.is_(False),
        )
    )
    return session.execute(
        select(func.count())
        .select_from(Task)
        .join(Build, Build.id == Task.ready_build_id)
        .where(or_(newest_id.is_(None), and_(Task.public.is_(True), approved_not_by_root)))
    ).scalar_one()


def retire_project_counts(session: Session, project_id: str) -> None:
    """Keep the project's final jobs and runs counted: call before deleting it."""
    for kind, model, finals in (
        ("job", Job, FINAL_JOB_STATES),
        ("run", Run, FINAL_RUN_STATES),
    ):
        rows = session.execute(
            select(model.status, func.count())
            .where(model.project_id == project_id, model.status.in_([s.value for s in finals]))
            .group_by(model.status)
        ).all()
        session.add_all(
            RetiredCount(kind=kind, status=status, count=count, project_id=project_id)
            for status, count in rows
        )
    session.flush()
