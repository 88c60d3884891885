"""Daemon threads kept for reuse, for work that may block for as long as a
container runs (reading its log).

A run's log reader blocks until the container's log ends, so a task never
waits behind another: it gets a thread that is idle or a new one. Made new for
every run, a thread costs more of a short run's CPU than most of what the run
does; kept, a runner holds at most as many as it ever read logs at once.
Daemon threads: a reader blocked on a container that outlives the runner does
not hold up the process's exit.

What a thread hands back is an :class:`Outcome`, waited for on a bare lock;
what it hands over as it goes (a log's blocks of lines), a :class:`WeighedQueue`.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")

FULL_QUEUE_WAIT_SECONDS = 0.005


class Outcome(Generic[T]):
    """A result that one thread sets once and others wait for.

    A lock held until the result is in: waiting is one acquire, made in C,
    where a ``Future`` runs its condition variable's Python code on both sides,
    several times the cost, and a short run waits like this twice.
    """

    __slots__ = ("_lock", "_done", "_value", "_error")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self._done = False
        self._value: T | None = None
        self._error: BaseException | None = None

    def set_result(self, value: T) -> None:
        self._settle(value, None)

    def set_exception(self, error: BaseException) -> None:
        self._settle(None, error)

    def _settle(self, value: T | None, error: BaseException | None) -> None:
        if self._done:
            raise RuntimeError("this outcome is set already")
        self._value, self._error, self._done = value, error, True
        self._lock.release()

    def done(self) -> bool:
        return self._done

    def wait(self, timeout: float | None = None) -> bool:
        """Whether the outcome is in, waiting for it up to ``timeout`` seconds (None: no limit)."""
        if self._done:
            return True
        if self._lock.acquire(timeout=-1 if timeout is None else timeout):
            self._lock.release()  # for whoever else waits
            return True
        return False

    def result(self, timeout: float | None = None) -> T:
        """The result, or what was raised instead; TimeoutError if not in by ``timeout``."""
        if self.exception(timeout) is not None:
            raise self._error  # type: ignore[misc]
        return self._value  # type: ignore[return-value]

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """What was raised instead of a result (None when there is a result)."""
        if not self.wait(timeout):
            raise TimeoutError(f"no outcome within {timeout}s")
        return self._error


class ReusedThreads:
    def __init__(self, name: str) -> None:
        self.name = name
        self._tasks: queue.SimpleQueue[tuple[Callable[[], Any], Outcome[Any]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # threads waiting for a task, less the tasks waiting for a thread
        self._numbers = itertools.count(1)

    def submit(self, fn: Callable[[], Any]) -> Outcome[Any]:
        """Run ``fn()`` on an idle thread, or on a new one when none is idle."""
        outcome: Outcome[Any] = Outcome()
        with self._lock:
            new = self._idle == 0
            if not new:
                self._idle -= 1
        self._tasks.put((fn, outcome))
        if new:
            threading.Thread(
                target=self._work, name=f"{self.name}-{next(self._numbers)}", daemon=True
            ).start()
        return outcome

    def _work(self) -> None:
        while True:
            fn, outcome = self._tasks.get()
            try:
                outcome.set_result(fn())
            except BaseException as exc:  # the submitter's to handle
                outcome.set_exception(exc)
            with self._lock:
                self._idle += 1


class WeighedQueue(Generic[T]):
    """A queue from one thread to another, bounded by the weight of what it holds.

    A log reader hands over blocks of any number of lines: bounded by their
    lines (each item's weight), not by the number of blocks, the queue holds
    the reader back once the writer is that far behind, whatever the blocks'
    sizes. The items go through a ``SimpleQueue`` (C, no Python lock per
    item); the weight is two counts, each kept by one side, so neither takes
    a lock, and a full queue is waited out a few milliseconds at a time.
    :meth:`close` (the writer is gone) lets a waiting reader go.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: queue.SimpleQueue[tuple[T, int]] = queue.SimpleQueue()
        self._put = 0  # weight put in so far: the putting thread's count
        self._taken = 0  # weight taken out so far: the getting thread's count
        self._closed = False

    def put(self, item: T, weight: int = 0) -> bool:
        """Add ``item``, waiting while the queue is full; False once it is closed."""
        while self._put - self._taken >= self.capacity and not self._closed:
            time.sleep(FULL_QUEUE_WAIT_SECONDS)
        if self._closed:
            return False
        self._put += weight
        self._items.put((item, weight))
        return True

    def get(self, timeout: float) -> T:
        """The oldest item; ``queue.Empty`` when none came within ``timeout`` seconds."""
        item, weight = self._items.get(timeout=timeout)
        self._taken += weight
        return item

    def close(self) -> None:
        """Take nothing more: a waiting and every later :meth:`put` returns False."""
        self._closed = True
