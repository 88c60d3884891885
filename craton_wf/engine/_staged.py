"""Column values of loaded rows, written together before the transaction's next statement.

A runner's batch changes a few columns of each of many runs: its claim takes
their leases, its writes mark them started and finished. Set on ORM objects,
each changed row is tracked by the unit of work and written at flush with
bookkeeping per object and per attribute; for a runner's short runs that
bookkeeping was about a sixth of its CPU. :func:`stage` instead sets the
values on the object as already stored (nothing for the unit of work to do)
and keeps them aside; then all the rows of a table are written with one
statement: on PostgreSQL an ``UPDATE … FROM jsonb_to_recordset(…)`` of
one JSON document, elsewhere one executemany. A row is written with every column any
row of its table staged: those it did not stage take the value its object
holds, which is what the database holds (the rows are locked and were read
in this transaction) unless the ORM is about to write the same.

Staged values reach the database before anything else the transaction sends
to it: before the next statement on its connection (a ``before_execute``
listener; that includes the ORM's own flush), and before its commit. So a
query, an ORM flush or another UPDATE always sees them, as it would see the
ORM's autoflushed changes; and a later ORM change of the same column is
written after them, so the last value set wins either way. A rolled-back
transaction writes nothing.

The values of one row staged twice merge, the later winning.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection, Engine, Pool, Table, TextClause, bindparam, event, text, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

_KEY = "staged_rows"

# {table: {row id: (object, {column: value})}}, shared by the session (to
# clear on rollback) and its connection (to write before the next statement).
Staged = dict[Table, dict[int, tuple[Any, dict[str, Any]]]]


def stage(session: Session, row: Any, **values: Any) -> None:
    """Give ``row`` (a loaded object with an ``id``) ``values``, written before
    the transaction's next statement or its commit."""
    for key, value in values.items():
        set_committed_value(row, key, value)
    staged: Staged | None = session.info.get(_KEY)
    if staged is None:
        staged = session.info[_KEY] = {}
        session.connection().info[_KEY] = staged
    staged.setdefault(row.__table__, {}).setdefault(row.id, (row, {}))[1].update(values)


def write_staged(session: Session) -> None:
    """Write what is staged now (it is written anyway before the next statement)."""
    staged: Staged | None = session.info.get(_KEY)
    if staged:
        _write(session.connection(), staged)


def _write(connection: Connection, staged: Staged) -> None:
    tables = list(staged.items())
    staged.clear()  # first: the statements below must not write them again
    for table, rows in tables:
        names = tuple(sorted({name for _, values in rows.values() for name in values}))
        group = [
            (
                row_id,
                {name: values[name] if name in values else getattr(row, name) for name in names},
            )
            for row_id, (row, values) in rows.items()
        ]
        if connection.dialect.name == "postgresql":
            _update_from_json(connection, table, names, group)
        else:
            connection.execute(
                _update_by_id(table, names), [{"_id": row_id, **values} for row_id, values in group]
            )


@cache
def _update_by_id(table: Table, names: tuple[str, ...]) -> Any:
    return (
        update(table)
        .where(table.c.id == bindparam("_id"))
        .values({name: bindparam(name, type_=table.c[name].type) for name in names})
    )


def _update_from_json(
    connection: Connection,
    table: Table,
    names: tuple[str, ...],
    group: list[tuple[int, dict[str, Any]]],
) -> None:
    """One UPDATE for the whole group, its rows one JSON parameter
    (``jsonb_to_recordset``): one statement text whatever the group's size,
    and one ``json.dumps`` where arrays would be dumped value by value."""
    rows = [{"id": row_id, **values} for row_id, values in group]
    document = json.dumps(rows, default=_json_value, separators=(",", ":"))
    connection.execute(_json_update_text(table, names, connection.dialect), {"rows": document})


def _json_value(value: Any) -> str:
    if isinstance(value, datetime):  # stored as UTC, as models.UTCDateTime does
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    raise TypeError(f"{type(value).__name__} cannot be staged")


@cache
def _json_update_text(table: Table, names: tuple[str, ...], dialect: Any) -> TextClause:
    quote = dialect.identifier_preparer.quote
    columns = ", ".join(
        f"{quote(name)} {table.c[name].type.dialect_impl(dialect).compile(dialect=dialect)}"
        for name in ("id", *names)
    )
    assignments = ", ".join(f"{quote(name)} = v.{quote(name)}" for name in names)
    target = dialect.identifier_preparer.format_table(table)
    return text(
        f"UPDATE {target} SET {assignments} "
        f"FROM jsonb_to_recordset(CAST(:rows AS JSONB)) AS v({columns}) "
        f"WHERE {target}.id = v.id"
    )


@event.listens_for(Engine, "before_execute")
def _write_before_statement(connection: Connection, *_: Any) -> None:
    staged = connection.info.get(_KEY)
    if staged:
        _write(connection, staged)


@event.listens_for(Session, "before_commit")
def _write_before_commit(session: Session) -> None:
    write_staged(session)


@event.listens_for(Session, "after_rollback")
def _forget_staged(session: Session) -> None:
    staged = session.info.pop(_KEY, None)
    if staged is not None:
        staged.clear()


@event.listens_for(Session, "after_commit")
def _done(session: Session) -> None:
    session.info.pop(_KEY, None)


@event.listens_for(Pool, "checkin")
def _never_outlive_the_checkout(_dbapi_connection: Any, record: Any) -> None:
    # A session closed without commit or rollback events: what it staged must
    # not be written by the next user of the pooled connection.
    staged = record.info.pop(_KEY, None)
    if staged is not None:
        staged.clear()
