"""Many rows in one statement: updated alike, or inserted.

The engine moves rows on in groups — the hosts a batch of finished runs
completes, the hosts and runs a freed slot starts — and every row of a
group gets the same values. Set one by one on ORM objects, each row would
be an UPDATE of its own at flush; here the group is one statement
(:func:`set_columns`), and the objects are told their new values as already
stored, so the session does not write them again.

Rows written in bulk (a batch's events and log lines, a new job's hosts) go
in with :func:`insert_rows`: on PostgreSQL with ``COPY``, which costs the
client about a quarter of what an ``executemany`` of the same rows does, and
the server about half; elsewhere with one multi-row insert.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Integer, Table, any_, bindparam, insert, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError
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


def insert_rows(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (each naming the same columns) into ``table`` with one statement."""
    if not rows:
        return
    if connection.dialect.name == "postgresql":
        copy_rows(connection, table, rows)
    else:
        connection.execute(insert(table), rows)


def copy_rows(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """``COPY`` ``rows`` into ``table``, in this connection's transaction.

    Values pass through the columns' types as they would for an insert (UTC
    datetimes, JSON); a database error is raised as SQLAlchemy raises it, a
    dropped connection invalidated, so callers that retry see what they
    would see for any other statement.
    """
    names = list(rows[0])
    dialect = connection.dialect
    quote = dialect.identifier_preparer.quote
    processors = [
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    ]
    statement = (
        f"COPY {dialect.identifier_preparer.format_table(table)} "
        f"({', '.join(quote(name) for name in names)}) FROM STDIN"
    )
    fairy = connection.connection
    # The driver's own error class (psycopg's, the only COPY driver): named through
    # the dialect, so that psycopg stays an extra (craton-wf[postgres]).
    driver_error = dialect.loaded_dbapi.Error
    cursor = fairy.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(
                    [
                        process(row[name]) if process else row[name]
                        for name, process in zip(names, processors, strict=True)
                    ]
                )
    except driver_error as exc:
        lost = dialect.is_disconnect(exc, fairy, cursor)  # type: ignore[arg-type]
        if lost:
            connection.invalidate(exc)
        raise DBAPIError.instance(
            statement, None, exc, driver_error, connection_invalidated=lost
        ) from exc
    finally:
        cursor.close()
