"""Writing the append-only history of each job: one event per thing that happened to it.

Events are inserted with one statement per transaction, right before it
commits, in the order they were recorded (:mod:`craton_wf.engine._pending`):
a runner's batch records several per run. The API reads them back through
:mod:`craton_wf.services.events`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from craton_wf.db.models import JobEvent, utcnow
from craton_wf.engine._pending import insert_later


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
