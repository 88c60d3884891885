"""On SQLite, few state-changing requests at a time in the process, queued first come first served.

SQLite lets one connection write at a time, and a request waiting for the write
lock waits in one of the server's worker threads (the busy timeout). With many
writers at once, those waits would hold every worker thread, and reads, which
need no lock (``db.engine``), would queue behind them for as long as the lock
is held. So a state-changing request first takes one of ``WRITE_SLOTS`` slots,
waiting on the event loop (no thread) in arrival order; only the slots' holders
contend for the lock, and the rest of the threads serve reads. A request that
waits for a slot past ``sqlite_lock_timeout_seconds`` answers 503 with
``Retry-After``, as a lock timeout does. The slot is held until the answer,
the audit trail's write included.

PostgreSQL locks rows, not the database: no slots there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

from craton_wf.api.deps import READING_METHODS
from craton_wf.api.errors import busy_response
from craton_wf.db.engine import is_sqlite
from craton_wf.settings import Settings

# One writes while the next few are ready to: more would only wait in threads.
WRITE_SLOTS = 4


class _Slots:
    """A semaphore of the running event loop (a new one if the loop changed)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._loop: asyncio.AbstractEventLoop | None = None
        self._semaphore = asyncio.Semaphore(size)

    def semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._semaphore = loop, asyncio.Semaphore(self.size)
        return self._semaphore


def install_write_slots(app: FastAPI, settings: Settings) -> None:
    if not is_sqlite(settings.database_url):
        return
    slots = _Slots(WRITE_SLOTS)
    patience = settings.sqlite_lock_timeout_seconds

    @app.middleware("http")
    async def write_slot(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.method in READING_METHODS:
            return await call_next(request)
        semaphore = slots.semaphore()
        try:
            await asyncio.wait_for(semaphore.acquire(), patience)
        except TimeoutError:
            return busy_response()
        try:
            return await call_next(request)
        finally:
            semaphore.release()
