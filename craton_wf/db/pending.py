"""Rows inserted when their transaction commits: one multi-row statement per table.

A runner's batch writes many small rows (events, log lines) for many runs;
one insert per table costs far less than an ORM object each. Rows go in
the order they were added, tables in the order they were first used; every
row they name already has its id. A rolled-back transaction inserts nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, insert
from sqlalchemy.orm import Session

_KEY = "pending_rows"


def insert_later(session: Session, model: type, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` of ``model`` with the transaction's commit."""
    if rows:
        pending: dict[type, list[dict[str, Any]]] = session.info.setdefault(_KEY, {})
        pending.setdefault(model, []).extend(rows)


@event.listens_for(Session, "before_commit")
def _insert_pending(session: Session) -> None:
    pending = session.info.pop(_KEY, None)
    for model, rows in (pending or {}).items():
        session.connection().execute(insert(model), rows)


@event.listens_for(Session, "after_rollback")
def _forget_pending(session: Session) -> None:
    session.info.pop(_KEY, None)
