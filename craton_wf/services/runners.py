"""Runners as the API sees them: registered processes and whether they are alive."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, not_, select, text
from sqlalchemy.orm import Session

from craton_wf.db.models import RunnerRecord
from craton_wf.services.leases import db_now
from craton_wf.services.pagination import Page, PageRequest, paginate


@dataclass(frozen=True)
class RunnerView:
    record: RunnerRecord
    alive: bool

    @property
    def id(self) -> str:  # a page's next marker
        return self.record.id


RUNNER_SORT_KEYS = ("id", "name", "hostname", "started_at", "heartbeat_at")


def _alive(lease_seconds: float, now: datetime) -> ColumnElement[bool]:
    """Alive, as SQL: not stopped, and heard from within a lease (as :func:`_is_alive`)."""
    return and_(
        RunnerRecord.stopped_at.is_(None),
        RunnerRecord.heartbeat_at > now - timedelta(seconds=lease_seconds),
    )


def _is_alive(record: RunnerRecord, lease_seconds: float, now: datetime) -> bool:
    """Alive, of a loaded row (as :func:`_alive`)."""
    return record.stopped_at is None and record.heartbeat_at > now - timedelta(
        seconds=lease_seconds
    )


def list_runners(
    session: Session, lease_seconds: float, page: PageRequest, alive: bool | None = None
) -> Page[RunnerView]:
    """A page of the registered runners: the live ones only (``alive=True``), the
    others (``False``), or all."""
    now = db_now(session)
    stmt = select(RunnerRecord)
    if alive is not None:
        stmt = stmt.where(_alive(lease_seconds, now) if alive else not_(_alive(lease_seconds, now)))
    found = paginate(session, stmt, RunnerRecord, page, RUNNER_SORT_KEYS)
    return Page(
        items=[RunnerView(r, _is_alive(r, lease_seconds, now)) for r in found.items],
        has_more=found.has_more,
    )


def count_live(session: Session, lease_seconds: float) -> int:
    """How many runners are alive (a count, however many ever registered)."""
    return session.execute(
        select(func.count()).select_from(RunnerRecord).where(_alive(lease_seconds, db_now(session)))
    ).scalar_one()


def ping_database(session: Session) -> None:
    session.execute(text("SELECT 1"))
