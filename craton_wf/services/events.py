"""Reading the append-only history of each job.

The engine writes the events (:mod:`craton_wf.engine.events`); the API lists
them here.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from craton_wf.db.models import JobEvent, JobHost, Run


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
