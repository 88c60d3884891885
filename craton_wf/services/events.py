"""The append-only history of each job.

Events are written with one statement per transaction, right before it
commits, in the order they were recorded: a runner's batch records several
per run, and one multi-row insert costs far less than an ORM object each.
Every row an event names already has its id (it was flushed to get one).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, insert, select
from sqlalchemy.orm import Session

from craton_wf.db.models import JobEvent, utcnow

_PENDING = "pending_events"


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
    session.info.setdefault(_PENDING, []).append(
        {
            "job_id": job_id,
            "run_id": run_id,
            "kind": kind,
            "message": message,
            "runner_id": runner_id,
            "data": data,
            "created_at": utcnow(),
        }
    )


@event.listens_for(Session, "before_commit")
def _write_events(session: Session) -> None:
    rows = session.info.pop(_PENDING, None)
    if rows:
        session.connection().execute(insert(JobEvent), rows)


@event.listens_for(Session, "after_rollback")
def _forget_events(session: Session) -> None:
    session.info.pop(_PENDING, None)


def list_events(session: Session, job_id: int, after: int = 0, limit: int = 1000) -> list[JobEvent]:
    stmt = (
        select(JobEvent)
        .where(JobEvent.job_id == job_id, JobEvent.id > after)
        .order_by(JobEvent.id)
        .limit(limit)
    )
    return list(session.execute(stmt).scalars())
