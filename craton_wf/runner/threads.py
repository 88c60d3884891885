"""Daemon threads kept for reuse, for work that may block for as long as a
container runs (reading its log).

A run's log reader blocks until the container's log ends, so a task never
waits behind another: it gets a thread that is idle or a new one. Made new for
every run, a thread costs more of a short run's CPU than most of what the run
does; kept, a runner holds at most as many as it ever read logs at once.
Daemon threads: a reader blocked on a container that outlives the runner does
not hold up the process's exit.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any


class ReusedThreads:
    def __init__(self, name: str) -> None:
        self.name = name
        self._tasks: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # threads waiting for a task, less the tasks waiting for a thread
        self._numbers = itertools.count(1)

    def submit(self, fn: Callable[[], Any]) -> Future[Any]:
        """Run ``fn()`` on an idle thread, or on a new one when none is idle."""
        future: Future[Any] = Future()
        with self._lock:
            new = self._idle == 0
            if not new:
                self._idle -= 1
        self._tasks.put((fn, future))
        if new:
            threading.Thread(
                target=self._work, name=f"{self.name}-{next(self._numbers)}", daemon=True
            ).start()
        return future

    def _work(self) -> None:
        while True:
            fn, future = self._tasks.get()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except BaseException as exc:  # the submitter's to handle
                    future.set_exception(exc)
            with self._lock:
                self._idle += 1
