"""A run's log between its reader and its writer, spilled to disk when the writer is behind.

The reader of an attach must keep draining it: the engine holds the
container back while its reader is behind, and a reader that stalls
behind slow database writes holds the container (and the engine's own
copies of its output) with it. So the reader never waits on the writer
while the run's log can still grow: the first :data:`LINES_QUEUED`-odd lines
ahead of the writer stay in memory, and the blocks read beyond them are
appended to a temporary file (one per run, gone when closed), each leaving
only its place in the queue, so the order of everything put stays the order
of everything taken. The runner's memory stays bounded whatever the
database's speed; the file is bounded by the run's log cap: once it holds
that many bytes not yet written, the run's log cannot take them all anyway
(the cap line stands where it is reached), and the reader waits again, as it
did before there was a file.
"""

from __future__ import annotations

import os
import pickle
import queue
import tempfile
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class _Spilled:
    """Where a block spilled to the file is: its place in the queue."""

    offset: int
    size: int


class SpillingQueue(Generic[T]):
    """A queue from a log's reader to its writer: :meth:`put` waits only once
    ``max_spilled_bytes`` are on disk, not taken yet.

    ``capacity`` bounds the weight (lines) kept in memory; items past it are
    pickled to a temporary file made on the first spill. Items that are not
    weighed (an end, an error) always stay in memory, in their place.
    """

    def __init__(self, capacity: int, max_spilled_bytes: int) -> None:
        self.capacity = capacity
        self.max_spilled_bytes = max_spilled_bytes
        self._items: deque[tuple[Any, int]] = deque()
        self._ready = threading.Condition()
        self._in_memory = 0  # weight held in memory
        self._spilled = 0  # bytes on disk not taken yet
        self._end = 0  # where the next spilled block goes
        self._file: Any = None
        self._closed = False
        self.spilled_blocks = 0  # how many blocks went through the file (for logs and tests)

    def put(self, item: T, weight: int = 0) -> bool:
        """Add ``item`` (in memory, or on disk if memory is full); False once closed."""
        with self._ready:
            if weight and self._in_memory + weight > self.capacity and self._in_memory:
                while self._spilled >= self.max_spilled_bytes and not self._closed:
                    self._ready.wait()
                if self._closed:
                    return False
                self._items.append((self._spill(item), weight))
            elif self._closed:
                return False
            else:
                self._in_memory += weight
                self._items.append((item, weight))
            self._ready.notify_all()
        return True

    def _spill(self, item: T) -> _Spilled:
        data = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
        if self._file is None:
            # Kept open across calls, closed by close(): no context manager fits.
            self._file = tempfile.TemporaryFile(prefix="craton-run-log-")  # noqa: SIM115
        if not self._spilled:
            self._end = 0  # everything spilled was taken: start the file over
        os.pwrite(self._file.fileno(), data, self._end)
        spilled = _Spilled(self._end, len(data))
        self._end += len(data)
        self._spilled += len(data)
        self.spilled_blocks += 1
        return spilled

    def get(self, timeout: float) -> T:
        """The oldest item; ``queue.Empty`` when none came within ``timeout`` seconds."""
        with self._ready:
            if not self._items and not self._ready.wait_for(lambda: self._items, timeout):
                raise queue.Empty
            item, weight = self._items.popleft()
            if isinstance(item, _Spilled):
                data = os.pread(self._file.fileno(), item.size, item.offset)
                self._spilled -= item.size
                item = pickle.loads(data)
            else:
                self._in_memory -= weight
            self._ready.notify_all()
        return item  # type: ignore[no-any-return]

    def close(self) -> None:
        """Take nothing more: a waiting and every later :meth:`put` returns False;
        the file goes."""
        with self._ready:
            self._closed = True
            self._items.clear()
            if self._file is not None:
                self._file.close()
                self._file = None
            self._ready.notify_all()
