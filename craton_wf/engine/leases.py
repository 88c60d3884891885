"""Leases on runs and builds: claim, renew, and the fencing check on every write.

A claim raises the row's ``lease_epoch``; every later write about the row names
the owner and epoch it was given and is refused (``LeaseLost``) when either no
longer matches — a runner that was paused past its lease cannot overwrite the
work of the runner that took over. PostgreSQL claims with ``FOR UPDATE SKIP
LOCKED``; on SQLite every write transaction is serialized, so a plain
select-then-update is already exclusive.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Row, Select, Table, func, select, update
from sqlalchemy.orm import Session

from craton_wf.db.bulk import one_of
from craton_wf.db.models import utcnow
from craton_wf.engine._staged import stage
from craton_wf.errors import LeaseLost

T = TypeVar("T")


def db_now(session: Session) -> datetime:
    """The database's clock: every runner computes leases against the same time.

    PostgreSQL answers ``statement_timestamp()`` (of the transaction's first
    question); SQLite is the one-host embedded default, where the database's
    clock is this machine's.
    """
    if session.get_bind().dialect.name == "postgresql":
        # Asked once per transaction (a session here is one transaction): the
        # runner records many runs in one, and each question is a round trip.
        if "db_now" not in session.info:
            session.info["db_now"] = session.execute(
                select(func.statement_timestamp())
            ).scalar_one()
        return session.info["db_now"]  # type: ignore[no-any-return]
    return utcnow()


def db_clock(session: Session) -> Any:
    """The database's clock, to compare with in a statement: on PostgreSQL
    ``statement_timestamp()`` itself (no question of its own), else :func:`db_now`."""
    if session.get_bind().dialect.name == "postgresql":
        return func.statement_timestamp()
    return db_now(session)


def claim_one(session: Session, stmt: Select[Any], model: type) -> Any:
    """The first row of ``stmt``, locked; rows other claimers hold are skipped."""
    rows = claim_many(session, stmt, model, 1)
    return rows[0] if rows else None


def claim_many(session: Session, stmt: Select[Any], model: type, limit: int) -> list[Any]:
    """Up to ``limit`` rows of ``stmt``, locked; rows other claimers hold are skipped.

    Only ``model``'s rows are locked, and with ``FOR NO KEY UPDATE``: locking a
    joined job row too would make every other runner skip all of that job's
    runs, and a full ``FOR UPDATE`` would block the foreign-key checks of every
    insert (events, log lines) that names the row.
    """
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True, of=model, key_share=True)
    return _rows_and_clock(session, stmt.limit(limit))


def claim_rows(session: Session, stmt: Select[Any], table: Table, limit: int) -> list[Row[Any]]:
    """As :func:`claim_many` for a statement on tables (rows, not objects):
    up to ``limit`` of its rows, only ``table``'s locked (``FOR NO KEY
    UPDATE``), rows other claimers hold skipped. On PostgreSQL it also reads
    the database's clock (:func:`db_now`), as one more column of every row."""
    stmt = stmt.limit(limit)
    if session.get_bind().dialect.name != "postgresql":
        return list(session.execute(stmt).all())
    stmt = stmt.with_for_update(skip_locked=True, of=table, key_share=True)
    if "db_now" in session.info:
        return list(session.execute(stmt).all())
    rows = list(session.execute(stmt.add_columns(func.statement_timestamp())).all())
    if rows:
        session.info["db_now"] = rows[0][-1]
    return rows


def _rows_and_clock(session: Session, stmt: Select[Any]) -> list[Any]:
    """The objects ``stmt`` selects; on PostgreSQL it also reads the database's
    clock (:func:`db_now`) if this transaction has not yet: one round trip
    instead of two, for the first question of a runner's every transaction."""
    if session.get_bind().dialect.name != "postgresql" or "db_now" in session.info:
        return list(session.execute(stmt).scalars())
    rows = session.execute(stmt.add_columns(func.statement_timestamp())).all()
    if rows:
        session.info["db_now"] = rows[0][1]
    return [row[0] for row in rows]


def take_lease(
    session: Session, row: Any, owner: str, lease_seconds: float, now: datetime | None = None
) -> int:
    """Make ``owner`` the holder of the (locked) row's lease, at the next epoch."""
    epoch = (row.lease_epoch or 0) + 1
    stage(
        session,
        row,
        lease_owner=owner,
        lease_epoch=epoch,
        lease_expires_at=(now or utcnow()) + timedelta(seconds=lease_seconds),
    )
    return epoch


def _locked(session: Session, model: type) -> dict[int, Any]:
    """The ``model`` rows this transaction (one session) holds locked, by id.

    Held here, not only in the session's identity map, which forgets objects
    nothing else refers to.
    """
    locked: dict[type, dict[int, Any]] = session.info.setdefault("locked", {})
    return locked.setdefault(model, {})


def lock_rows(session: Session, model: type[T], ids: Iterable[int]) -> dict[int, T]:
    """Many rows, locked in id order with one query (``FOR NO KEY UPDATE``), freshly read.

    For the rest of the transaction :func:`lock_row` answers these rows from
    the session without asking again: they are locked, so what the session
    holds is what the database has.
    """
    ids = list(ids)
    locked = _locked(session, model)
    wanted = sorted(set(ids) - set(locked))
    if wanted:
        rows = _rows_and_clock(
            session,
            select(model)
            .where(one_of(session, model.id, wanted))  # type: ignore[attr-defined]
            .order_by(model.id)  # type: ignore[attr-defined]
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True),
        )
        locked.update((row.id, row) for row in rows)  # type: ignore[attr-defined]
    return {row_id: locked[row_id] for row_id in ids if row_id in locked}


def lock_row(session: Session, model: type[T], row_id: int) -> T | None:
    """The row, locked for update (``FOR NO KEY UPDATE``) and freshly read."""
    return lock_rows(session, model, [row_id]).get(row_id)


def check_lease(
    session: Session, model: type[T], row_id: int, owner: str, epoch: int, row: Any = None
) -> T:
    """The row, locked, if ``owner`` still holds the lease at ``epoch``; else LeaseLost.

    ``row`` is the row already locked by :func:`lock_row` in this transaction.
    """
    row = row if row is not None else lock_row(session, model, row_id)
    if row is None or row.lease_owner != owner or row.lease_epoch != epoch:  # type: ignore[attr-defined]
        raise LeaseLost(f"{model.__name__.lower()} {row_id}: lease held by someone else")
    return row


def renew_leases(
    session: Session, model: type, owner: str, ids: list[int], lease_seconds: float
) -> int:
    if not ids:
        return 0
    expires = db_now(session) + timedelta(seconds=lease_seconds)
    # Rows another transaction of this runner holds right now (a run being
    # finished) are skipped rather than waited for: waiting on many rows in
    # another order than that transaction can deadlock, and a skipped lease is
    # renewed by the next heartbeat, long before it expires.
    held = (
        select(model.id)  # type: ignore[attr-defined]
        .where(one_of(session, model.id, ids), model.lease_owner == owner)  # type: ignore[attr-defined]
        .with_for_update(skip_locked=True, key_share=True)
    )
    result = session.execute(
        update(model)
        .where(model.id.in_(held.scalar_subquery()))  # type: ignore[attr-defined]
        .values(lease_expires_at=expires)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0  # type: ignore[attr-defined]


def expire_leases(session: Session, model: type, owner: str, ids: list[int]) -> None:
    """Give up leases now (a stopping runner), so another runner takes over at once."""
    if ids:
        session.execute(
            update(model)
            .where(one_of(session, model.id, ids), model.lease_owner == owner)  # type: ignore[attr-defined]
            .values(lease_expires_at=db_now(session))
            .execution_options(synchronize_session=False)
        )
