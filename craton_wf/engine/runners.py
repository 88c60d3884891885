"""The runner registry: each runner process's row, its heartbeat, its stop.

A runner registers when it starts, stamps its heartbeat with every lease
renewal and records when it stopped. A runner is alive while it has not
stopped and was heard from within a lease (:func:`alive`); the API lists the
registry (:mod:`craton_wf.services.runners`) and ``/readyz`` counts the live.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_
from sqlalchemy.orm import Session

from craton_wf.db.models import RunnerRecord, utcnow


def register_runner(session: Session, runner_id: str, name: str, executor: str) -> None:
    session.add(
        RunnerRecord(
            id=runner_id,
            name=name,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            executor=executor,
        )
    )


def record_heartbeat(session: Session, runner_id: str) -> None:
    record = session.get(RunnerRecord, runner_id)
    if record is not None:
        record.heartbeat_at = utcnow()


def record_stop(session: Session, runner_id: str) -> None:
    record = session.get(RunnerRecord, runner_id)
    if record is not None:
        record.stopped_at = utcnow()


def alive(lease_seconds: float, now: datetime) -> ColumnElement[bool]:
    """Alive, as SQL: not stopped, and heard from within a lease (as :func:`is_alive`)."""
    return and_(
        RunnerRecord.stopped_at.is_(None),
        RunnerRecord.heartbeat_at > now - timedelta(seconds=lease_seconds),
    )


def is_alive(record: RunnerRecord, lease_seconds: float, now: datetime) -> bool:
    """Alive, of a loaded row (as :func:`alive`)."""
    return record.stopped_at is None and record.heartbeat_at > now - timedelta(
        seconds=lease_seconds
    )
