"""Up to which id an append-only table's rows are all committed: the safe cursor of a stream.

A live stream of log lines or job events sends rows in id order and resumes
after the last id it sent (a browser's ``Last-Event-ID``, the CLI's
reconnect). That is exact only if no row with a smaller id can become
visible after a larger one was read. How ids are handed out decides it:

- SQLite has one writer at a time, and a row's id is chosen under that lock,
  so rows become visible in id order. Every visible row may be sent.
- PostgreSQL takes ids from a sequence when a row is inserted, not when it is
  committed. Two runners recording lines of one job at once (or a runner and
  an API request writing events) can commit in the other order: a reader may
  see id 200 while 150 is still in flight, send 200, and never send 150.

So on PostgreSQL a stream only sends rows up to a *horizon*: an id at or
below which every row that will ever be committed is already visible. It is
found from two facts the server publishes outside any snapshot:

1. the sequence's last value ``s`` (sequences are not transactional: it
   counts ids handed to transactions still in flight);
2. the transactions holding a lock on the table in the mode every ``INSERT``
   takes (``RowExclusiveLock``, taken before the insert draws its first id
   and held until the transaction ends), from ``pg_locks``.

Read in that order, every id up to ``s`` belongs to a transaction that had
ended when the locks were read, or to one of the writers ``W`` seen then. Once
none of ``W`` holds the lock any more, every id up to ``s`` is committed (or
never will be), and a statement that starts afterwards sees them all. Each
poll of a stream takes one such sample; a sample whose writers are all gone
settles its ``s`` as the horizon. When no writer is in flight at the sample,
its ``s`` is settled at once, which is the common case; under steady writing
from several runners, the horizon trails by about one transaction.

This relies on the sequence handing ids out one at a time (``CACHE 1``, what
a ``BIGSERIAL`` column gets): with a cache, a connection could draw from ids
it reserved earlier. A transaction that keeps the lock for long (a bulk
delete of old jobs) holds streams back until it ends; it never makes them
skip a row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.orm import Session

#: Unsettled samples kept at most; an older one is dropped (a later one settles past it).
MAX_PENDING = 64

_LAST_VALUE = text(
    "SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence(:table, 'id')::regclass), 0)"
)
_WRITERS = text(
    """
    SELECT virtualtransaction FROM pg_locks
    WHERE locktype = 'relation'
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND relation = CAST(:table AS regclass)
      AND mode = 'RowExclusiveLock'
      AND pid <> pg_backend_pid()
    """
)


@dataclass
class CommitHorizon:
    """The settled horizon of one table, for one stream (it keeps the stream's samples).

    :meth:`advance` is called in a transaction of its own before each read of
    the table; the read, in a later transaction, may send rows with ids up to
    the answer.
    """

    table: str
    #: The id up to which every row is visible to a later statement (None: every row).
    settled: int | None = None
    #: True when the last sample had no writer in flight: nothing beyond ``settled`` was.
    complete: bool = True
    _pending: list[tuple[int, frozenset[str]]] = field(default_factory=list)

    def advance(self, session: Session) -> int | None:
        """Take a sample; answer the horizon (``None``: no limit, every visible row)."""
        if session.get_bind().dialect.name != "postgresql":
            self.complete = True
            return None
        last = int(session.execute(_LAST_VALUE, {"table": self.table}).scalar_one())
        writers = frozenset(session.execute(_WRITERS, {"table": self.table}).scalars())
        self._pending.append((last, writers))
        settled = [value for value, held in self._pending if not held & writers]
        if settled:
            newest = max(settled)
            self.settled = max(newest, self.settled or 0)
            self._pending = [(v, held) for v, held in self._pending if v > newest]
        self._pending = self._pending[-MAX_PENDING:]
        self.complete = not writers
        return self.settled if self.settled is not None else 0
