"""On SQLite, few state-changing requests at a time in the process, first come first served.

SQLite lets one connection write at a time, and a request waiting for the write
lock waits in one of the server's worker threads (the busy timeout). With many
writers at once, those waits would hold every worker thread, and reads, which
need no lock (``db.engine``), would queue behind them for as long as the lock
is held. So a state-changing route first takes one of ``WRITE_SLOTS`` slots
(:func:`write_slot`, a dependency of every router), waiting on the event loop
(no thread) in arrival order; only the slots' holders contend for the lock, and
the other threads serve reads. A request that waits for a slot past
``sqlite_lock_timeout_seconds`` answers 503 with ``Retry-After``
(``DatabaseBusy``), as a lock timeout does.

A dependency rather than a middleware: FastAPI reads the request's body before
it solves dependencies, so a slow client sending a body holds no slot. The
task uploads read their body in the route, so they take no slot: they are
few, and wait for the lock in their thread as any write did.

PostgreSQL locks rows, not the database: no slots there.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import Request

from craton_wf.api.deps import READING_METHODS
from craton_wf.api.limits import is_upload
from craton_wf.errors import DatabaseBusy

# One writes while the next few are ready to: more would only wait in threads.
WRITE_SLOTS = 4


class WriteSlots:
    """A semaphore of the running event loop (a new one if the loop changed)."""

    def __init__(self, size: int, patience: float) -> None:
        self.size = size
        self.patience = patience
        self._loop: asyncio.AbstractEventLoop | None = None
        self._semaphore = asyncio.Semaphore(size)

    def semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._semaphore = loop, asyncio.Semaphore(self.size)
        return self._semaphore


async def write_slot(request: Request) -> AsyncIterator[None]:
    """Hold a write slot while a state-changing route runs (SQLite only)."""
    slots: WriteSlots | None = request.app.state.write_slots
    if slots is None or request.method in READING_METHODS or is_upload(request.scope):
        yield
        return
    semaphore = slots.semaphore()
    try:
        await asyncio.wait_for(semaphore.acquire(), slots.patience)
    except TimeoutError:
        raise DatabaseBusy() from None
    try:
        yield
    finally:
        semaphore.release()
