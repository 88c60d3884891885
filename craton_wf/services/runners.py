"""Runners as the API sees them: registered processes and whether they are alive.

The registry is written by the runners themselves (:mod:`craton_wf.engine.runners`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, not_, select, text
from sqlalchemy.orm import Session

from craton_wf.db.models import Build, Run, RunnerRecord
from craton_wf.engine import runners as registry
from craton_wf.engine.leases import db_now
from craton_wf.services.pagination import Page, PageRequest, paginate


@dataclass(frozen=True)
class RunnerView:
    record: RunnerRecord
    alive: bool

    @property
    def id(self) -> str:  # a page's next marker
        return self.record.id


RUNNER_SORT_KEYS = ("id", "name", "hostname", "started_at", "heartbeat_at")


def list_runners(
    session: Session, lease_seconds: float, page: PageRequest, alive: bool | None = None
) -> Page[RunnerView]:
    """A page of the registered runners: the live ones only (``alive=True``), the
    others (``False``), or all."""
    now = db_now(session)
    stmt = select(RunnerRecord)
    if alive is not None:
        live = registry.alive(lease_seconds, now)
        stmt = stmt.where(live if alive else not_(live))
    found = paginate(session, stmt, RunnerRecord, page, RUNNER_SORT_KEYS)
    return Page(
        items=[RunnerView(r, registry.is_alive(r, lease_seconds, now)) for r in found.items],
        has_more=found.has_more,
    )


@dataclass(frozen=True)
class LeasesHeld:
    runs: int = 0
    builds: int = 0


def leases_held(session: Session, runner_ids: list[str]) -> dict[str, LeasesHeld]:
    """How many runs and builds each runner holds a lease on: its slots in use. A
    stopped or dead runner's leases stay until another runner takes them over."""
    if not runner_ids:
        return {}
    counts: dict[str, dict[str, int]] = {}
    for model, kind in ((Run, "runs"), (Build, "builds")):
        rows = session.execute(
            select(model.lease_owner, func.count())
            .where(model.lease_owner.in_(runner_ids))
            .group_by(model.lease_owner)
        )
        for owner, count in rows:
            if owner is not None:
                counts.setdefault(owner, {})[kind] = count
    return {owner: LeasesHeld(**held) for owner, held in counts.items()}


def count_live(session: Session, lease_seconds: float) -> int:
    """How many runners are alive (a count, however many ever registered)."""
    return session.execute(
        select(func.count())
        .select_from(RunnerRecord)
        .where(registry.alive(lease_seconds, db_now(session)))
    ).scalar_one()


def ping_database(session: Session) -> None:
    session.execute(text("SELECT 1"))
