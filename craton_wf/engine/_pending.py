"""Rows inserted together at the end of an engine batch: one statement per table.

A runner's batch writes many small rows (events, log lines) for many runs;
one insert per table costs far less than an ORM object each. On PostgreSQL
the rows go in with ``COPY``, which costs the client about a quarter of
what an ``executemany`` of the same rows does; elsewhere with one
multi-row insert. Rows go in the order they were added, tables in the
order they were first used; every row they name already has its id.

The rows are held by the engine call that adds them
(:func:`craton_wf.engine.writes.batched_writes`, which opens the store with
:func:`open_pending`) and inserted at the end of the batch, before the caller
commits (:func:`insert_pending`); a batch that fails inserts nothing
(:func:`forget_pending`). Outside a batch, :func:`insert_later` inserts at once.
A run's log lines wait in a store of their own, made for millions of them
(:mod:`craton_wf.engine._log_lines`), inserted at the same point.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from craton_wf.db.bulk import insert_rows
from craton_wf.engine._log_lines import forget_pending_lines, insert_pending_lines

_KEY = "pending_rows"


def open_pending(session: Session) -> None:
    """Hold the rows :func:`insert_later` is given in ``session`` from now on."""
    session.info[_KEY] = {}


def insert_later(session: Session, model: type, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` of ``model`` at the end of the batch (at once outside a batch).

    Every row of one model names the same columns.
    """
    if not rows:
        return
    pending: dict[type, list[dict[str, Any]]] | None = session.info.get(_KEY)
    if pending is None:
        _insert(session.connection(), model, rows)
    else:
        pending.setdefault(model, []).extend(rows)


def insert_pending(session: Session) -> None:
    """Insert the rows ``session`` holds, and stop holding rows."""
    insert_pending_lines(session)
    pending = session.info.pop(_KEY, None)
    if not pending:
        return
    connection = session.connection()
    for model, rows in pending.items():
        _insert(connection, model, rows)


def forget_pending(session: Session) -> None:
    """Drop the rows ``session`` holds (its batch failed), and stop holding rows."""
    forget_pending_lines(session)
    session.info.pop(_KEY, None)


def _insert(connection: Connection, model: Any, rows: list[dict[str, Any]]) -> None:
    insert_rows(connection, model.__table__, rows)
