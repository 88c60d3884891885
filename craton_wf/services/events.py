"""The append-only history of each job.

Events are written with one statement per transaction, right before it
commits, in the order they were recorded (:mod:`craton_wf.db.pending`): a
runner's batch records several per run.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from craton_wf.db.models import JobEvent, JobHost, Run, utcnow
from craton_wf.db.pending import insert_later


def record_event(
    session: Session,
    job_id: int,
    kind: str,
    message: str = "",
    *,
    run_id: int | None = None,
    runner_id: str | None = None,
    **data: Any,
) -> None:
    insert_later(
        session,
        JobEvent,
        [
            {
                "job_id": job_id,
                "run_id": run_id,
                "kind": kind,
                "message": message,
                "runner_id": runner_id,
                "data": data,
                "created_at": utcnow(),
            }
        ],
    )


def list_events(session: Session, job_id: int, after: int = 0, limit: int = 1000) -> list[JobEvent]:
    stmt = (
        select(JobEvent)
        .where(JobEvent.job_id == job_id, JobEvent.id > after)
        .order_by(JobEvent.id)
        .limit(limit)
    )
    return list(session.execute(stmt).scalars())


def host_names_of_runs(session: Session, events: list[JobEvent]) -> dict[int, str]:
    """The host each event's run ran on, by run id (one query; job-wide runs have none)."""
    run_ids = sorted({e.run_id for e in events if e.run_id is not None})
    if not run_ids:
        return {}
    rows = session.execute(
        select(Run.id, JobHost.host_name)
        .join(JobHost, JobHost.id == Run.job_host_id)
        .where(Run.id.in_(run_ids))
    ).all()
    return {run_id: host_name for run_id, host_name in rows}
