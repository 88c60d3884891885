"""Runners as the API sees them: registered processes and whether they are alive."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from craton_wf.db.models import RunnerRecord
from craton_wf.services.leases import db_now


@dataclass(frozen=True)
class RunnerView:
    record: RunnerRecord
    alive: bool


def list_runners(session: Session, lease_seconds: float) -> list[RunnerView]:
    """Every registered runner; alive = not stopped and heard from within a lease."""
    now = db_now(session)
    rows = session.execute(select(RunnerRecord).order_by(RunnerRecord.started_at)).scalars()
    return [
        RunnerView(
            r, r.stopped_at is None and now - r.heartbeat_at < timedelta(seconds=lease_seconds)
        )
        for r in rows
    ]


def ping_database(session: Session) -> None:
    session.execute(text("SELECT 1"))
