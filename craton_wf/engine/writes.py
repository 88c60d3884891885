"""The engine's write path: what a batch of engine calls holds back, and where it is written.

A runner's transaction records many runs at once (:mod:`craton_wf.runner.recorder`):
every run's log lines, its events, the few columns of its row that change.
Written as they come, each would be a statement, or an ORM object with its
bookkeeping; held, each kind goes in with one statement per table. So the
engine calls that write hold their writes in the session, in two private
stores:

- :mod:`craton_wf.engine._pending`: rows to insert (events, log lines, run
  tokens), inserted in the order they were added;
- :mod:`craton_wf.engine._staged`: column values of loaded, locked rows
  (leases, statuses, log counters), written one UPDATE per table, and before
  any other statement of the transaction, so that every query sees them.

:func:`batched_writes` opens the stores for a block of engine calls and
writes what they hold at its end, before the caller commits; an exception
inside it drops them, so the rolled-back transaction writes nothing. Every
engine function that writes is :func:`in_a_batch`: called alone, it is its
own batch; called inside a batch (the recorder's, for all the runs of a
transaction), its writes wait for the batch's end. A log line's way to its
row is thus: ``runner.execution`` reads it, ``runner.recorder`` queues it
and opens the batch, ``recording.append_logs`` holds it, and the batch's end
inserts it (:func:`write_held`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy.orm import Session

from craton_wf.engine._pending import forget_pending, insert_pending, open_pending
from craton_wf.engine._staged import close_staged, open_staged, write_staged

P = ParamSpec("P")
T = TypeVar("T")

_BATCH = "engine_batch"


@contextmanager
def batched_writes(session: Session) -> Iterator[None]:
    """Hold the engine's writes of this block, and write them at its end.

    Inside a batch already, the enclosing batch writes them.
    """
    if session.info.get(_BATCH):
        yield
        return
    session.info[_BATCH] = True
    open_staged(session)
    open_pending(session)
    try:
        yield
        write_held(session)
    finally:
        session.info.pop(_BATCH, None)
        close_staged(session)
        forget_pending(session)


def write_held(session: Session) -> None:
    """Write what the batch holds, at its end: the staged values, then the rows."""
    write_staged(session)
    insert_pending(session)


def in_a_batch(fn: Callable[Concatenate[Session, P], T]) -> Callable[Concatenate[Session, P], T]:
    """``fn(session, ...)`` with its writes in a batch: its own, unless it is
    called inside one."""

    @functools.wraps(fn)
    def batched(session: Session, *args: P.args, **kwargs: P.kwargs) -> T:
        with batched_writes(session):
            return fn(session, *args, **kwargs)

    return batched
