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

Staged values are held by the engine call that stages them
(:func:`craton_wf.engine.writes.batched_writes`) and reach the database
before anything else the transaction sends to it: before the next statement
on its connection (a ``before_execute`` listener of the database engine,
added by :func:`watch_statements`; that includes the ORM's own flush), and
at the end of the batch, before the caller commits. So a query, an ORM flush
or another UPDATE always sees them, as it would see the ORM's autoflushed
changes; and a later ORM change of the same column is written after them, so
the last value set wins either way. A batch that fails writes nothing.
Outside a batch, :func:`stage` sets the values as the ORM would and the
session writes them.

The values of one row staged twice merge, the later winning.
"""

from __future__ import annotations

import json
import threading
import weakref
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection, Engine, Table, TextClause, bindparam, event, text, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

_KEY = "staged_rows"


class StagedWrites:
    """The values staged in one batch of one transaction: ``{table: {row id:
    (object, {column: value})}}``, written in one statement per table."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection  # the transaction's: only its statements write them
        self.rows: dict[Table, dict[int, tuple[Any, dict[str, Any]]]] = {}

    def stage(self, row: Any, values: dict[str, Any]) -> None:
        for key, value in values.items():
            set_committed_value(row, key, value)
        self.rows.setdefault(row.__table__, {}).setdefault(row.id, (row, {}))[1].update(values)

    def write(self) -> None:
        """Write what is staged now, and forget it."""
        if not self.rows:
            return
        tables = list(self.rows.items())
        self.rows = {}  # first: the statements below must not write them again
        for table, rows in tables:
            names = tuple(sorted({name for _, values in rows.values() for name in values}))
            group = [
                (row_id, {n: values[n] if n in values else getattr(row, n) for n in names})
                for row_id, (row, values) in rows.items()
            ]
            if self.connection.dialect.name == "postgresql":
                _update_from_json(self.connection, table, names, group)
            else:
                self.connection.execute(
                    _update_by_id(table, names),
                    [{"_id": row_id, **values} for row_id, values in group],
                )


def open_staged(session: Session) -> StagedWrites:
    """Hold what :func:`stage` is given in ``session`` from now on, until :func:`close_staged`."""
    connection = session.connection()
    watch_statements(connection.engine)
    staged = session.info[_KEY] = _by_connection[connection] = StagedWrites(connection)
    return staged


def close_staged(session: Session) -> None:
    """Stop holding staged values in ``session``; what was not written is dropped."""
    staged = session.info.pop(_KEY, None)
    if staged is not None:
        staged.rows = {}
        _by_connection.pop(staged.connection, None)


def stage(session: Session, row: Any, **values: Any) -> None:
    """Give ``row`` (a loaded object with an ``id``) ``values``: held, when the
    session holds staged values, and written before the transaction's next
    statement or at the end of the batch; otherwise set as the ORM sets them."""
    staged: StagedWrites | None = session.info.get(_KEY)
    if staged is None:
        for key, value in values.items():
            setattr(row, key, value)
        return
    staged.stage(row, values)


def write_staged(session: Session) -> None:
    """Write what is staged now (it is written anyway before the next statement)."""
    staged: StagedWrites | None = session.info.get(_KEY)
    if staged is not None:
        staged.write()


# The batches open now, by the connection of their transaction: what the
# listener looks up before each statement. Held weakly, so a batch whose
# session was closed without ending it (nor its connection) is forgotten.
_by_connection: weakref.WeakKeyDictionary[Connection, StagedWrites] = weakref.WeakKeyDictionary()
_watched: weakref.WeakSet[Engine] = weakref.WeakSet()
_watching = threading.Lock()


def watch_statements(engine: Engine) -> None:
    """Have ``engine`` write a connection's staged values before each statement
    it sends: one listener per database engine, added the first time the
    engine's sessions stage values."""
    if engine in _watched:
        return
    with _watching:
        if not event.contains(engine, "before_execute", _write_before_statement):
            event.listen(engine, "before_execute", _write_before_statement)
        _watched.add(engine)


def _write_before_statement(connection: Connection, *_: Any) -> None:
    staged = _by_connection.get(connection)
    if staged is not None:
        staged.write()


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
