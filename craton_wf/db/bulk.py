"""One UPDATE for many loaded rows that take the same values.

The engine moves rows on in groups — the hosts a batch of finished runs
completes, the hosts and runs a freed slot starts — and every row of a
group gets the same values. Set one by one on ORM objects, each row would
be an UPDATE of its own at flush; here the group is one statement, and the
objects are told their new values as already stored, so the session does
not write them again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import update
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
            .where(model.id.in_(ids[start : start + CHUNK]))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    for row in rows:
        for key, value in values.items():
            set_committed_value(row, key, value)
