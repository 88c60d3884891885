"""Leases on runs and builds: claim, renew, and the fencing check on every write.

A claim raises the row's ``lease_epoch``; every later write about the row names
the owner and epoch it was given and is refused (``LeaseLost``) when either no
longer matches — a runner that was paused past its lease cannot overwrite the
work of the runner that took over. PostgreSQL claims with ``FOR UPDATE SKIP
LOCKED``; on SQLite every write transaction is serialized, so a plain
select-then-update is already exclusive.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from craton_wf.db.models import utcnow
from craton_wf.errors import LeaseLost

T = TypeVar("T")


def db_now(session: Session) -> datetime:
    """The database's clock: every runner computes leases against the same time.

    PostgreSQL answers ``statement_timestamp()``; SQLite is the one-host embedded
    default, where the database's clock is this machine's.
    """
    if session.get_bind().dialect.name == "postgresql":
        return session.execute(select(func.statement_timestamp())).scalar_one()
    return utcnow()


def claim_one(session: Session, stmt: Select[Any]) -> Any:
    """The first row of ``stmt``, locked; rows other claimers hold are skipped."""
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return session.execute(stmt.limit(1)).scalar_one_or_none()


def take_lease(row: Any, owner: str, lease_seconds: float, now: datetime | None = None) -> int:
    row.lease_owner = owner
    row.lease_epoch = (row.lease_epoch or 0) + 1
    row.lease_expires_at = (now or utcnow()) + timedelta(seconds=lease_seconds)
    return row.lease_epoch


def check_lease(session: Session, model: type[T], row_id: int, owner: str, epoch: int) -> T:
    """The row, locked, if ``owner`` still holds the lease at ``epoch``; else LeaseLost."""
    row = session.execute(
        select(model).where(model.id == row_id).with_for_update()  # type: ignore[attr-defined]
    ).scalar_one_or_none()
    if row is None or row.lease_owner != owner or row.lease_epoch != epoch:  # type: ignore[attr-defined]
        raise LeaseLost(f"{model.__name__.lower()} {row_id}: lease held by someone else")
    return row


def renew_leases(
    session: Session, model: type, owner: str, ids: list[int], lease_seconds: float
) -> int:
    if not ids:
        return 0
    expires = db_now(session) + timedelta(seconds=lease_seconds)
    result = session.execute(
        update(model)
        .where(model.id.in_(ids), model.lease_owner == owner)  # type: ignore[attr-defined]
        .values(lease_expires_at=expires)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0  # type: ignore[attr-defined]


def expire_leases(session: Session, model: type, owner: str, ids: list[int]) -> None:
    """Give up leases now (a stopping runner), so another runner takes over at once."""
    if ids:
        session.execute(
            update(model)
            .where(model.id.in_(ids), model.lease_owner == owner)  # type: ignore[attr-defined]
            .values(lease_expires_at=db_now(session))
            .execution_options(synchronize_session=False)
        )
