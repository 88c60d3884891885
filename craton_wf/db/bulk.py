"""One UPDATE for many loaded rows that take the same values.

The engine moves rows on in groups — the hosts a batch of finished runs
completes, the hosts and runs a freed slot starts — and every row of a
group gets the same values. Set one by one on ORM objects, each row would
be an UPDATE of its own at flush; here the group is one statement, and the
objects are told their new values as already stored, so the session does
not write them again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Integer, any_, bindparam, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

CHUNK = 1000  # ids per statement, well inside every database's parameter limit


def set_columns(session: Session, rows: Sequence[Any], **values: Any) -> None:
    """Store ``values`` on every one of ``rows`` (loaded objects of one model)."""
    if not rows:
        return
    model = type(rows[0])
    ids = [row.id for row in rows]
    for start in range(0, len(ids), CHUNK):
        session.execute(
            update(model)
            .where(one_of(session, model.id, ids[start : start + CHUNK]))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    for row in rows:
        for key, value in values.items():
            set_committed_value(row, key, value)


def one_of(session: Session, column: Any, ids: Iterable[int]) -> ColumnElement[bool]:
    """``column IN (ids)`` for an integer column; on PostgreSQL ``column = ANY(:ids)``.

    The engine asks about a batch's runs and hosts, a different number of them
    every time. An ``IN`` list renders one parameter per id, so each count is
    another statement text: rendered again, and never prepared by the server.
    One array parameter keeps one text for every count, at about a fifth of
    the client's work for a hundred ids.
    """
    ids = list(ids)
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, ids, type_=ARRAY(Integer)))  # type: ignore[no-any-return]
    return column.in_(ids)  # type: ignore[no-any-return]
