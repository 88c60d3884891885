"""The API in several processes: ``craton-wf serve --workers N``.

One Python process serves requests on one core at a time (the interpreter
lock), so ``serve`` runs N API worker processes on the one listening socket,
under uvicorn's supervisor. Each worker is a fresh interpreter (uvicorn
spawns them) that builds its app with :func:`worker_app`, from the settings
in the environment as the parent read them; the parent exports what its
command line overrode (:func:`export_for_workers`).

The embedded runner is not in the workers: it runs in the parent process,
which does nothing else but supervise, so there is exactly one runner however
many workers serve. A worker that queues new work (a job, a build) wakes it
as the single-process ``serve`` does, across the process boundary: a
datagram to the parent's wake-up socket (:class:`WakeupListener`), an
abstract Unix socket named after the parent's process id, which only this
machine reaches and which vanishes with the process. Where there is no such
socket (not Linux) the runner finds the work by polling, as it always also
does.

SQLite in WAL mode takes readers and its one writer from several processes as
from several threads: each worker has its connections, and a write waits for
the lock up to ``sqlite_lock_timeout_seconds`` as before. The write slots
(``api.write_slots``) are per process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading

from fastapi import FastAPI

from craton_wf.service_log import configure_logging
from craton_wf.settings import load_settings

log = logging.getLogger(__name__)

_LOG_LEVEL = "CRATON_WF_LOG_LEVEL"
_LOG_FORMAT = "CRATON_WF_LOG_FORMAT"


def _wakeup_address(parent_pid: int) -> str:
    return f"\0craton-wf-wakeup-{parent_pid}"


class WakeupListener:
    """In the parent: sets ``event`` whenever a worker says new work is queued."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event
        self._socket: socket.socket | None = None

    def start(self) -> None:
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind(_wakeup_address(os.getpid()))
        except (AttributeError, OSError) as exc:
            log.info("no wake-up socket (%s): the runner polls for new work", exc)
            return
        self._socket = sock
        threading.Thread(target=self._listen, name="worker-wakeups", daemon=True).start()

    def _listen(self) -> None:
        assert self._socket is not None
        while True:
            try:
                self._socket.recv(16)
            except OSError:
                return  # closed
            self.event.set()

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()


class WakeupSignal:
    """In a worker: ``set()`` wakes the parent's runner (what ``app.state.wakeup`` takes)."""

    def __init__(self, parent_pid: int) -> None:
        self.address = _wakeup_address(parent_pid)
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.setblocking(False)

    def set(self) -> None:
        # No listener, or its queue is full (it has enough to wake on): nothing to do.
        with contextlib.suppress(OSError):
            self._socket.sendto(b"w", self.address)


def export_for_workers(database_url: str | None, log_level: str, log_format: str) -> None:
    """What the parent's command line set, in the environment its workers start with."""
    if database_url:
        os.environ["CRATON_WF_DATABASE_URL"] = database_url
    os.environ[_LOG_LEVEL] = log_level
    os.environ[_LOG_FORMAT] = log_format


def worker_app() -> FastAPI:
    """The app of one worker process (uvicorn's ``factory``): no runner, migrations
    already run by the parent."""
    from craton_wf.api.app import create_app

    configure_logging(os.environ.get(_LOG_LEVEL, "INFO"), os.environ.get(_LOG_FORMAT, "text"))
    settings = load_settings()
    wakeup = WakeupSignal(os.getppid()) if hasattr(socket, "AF_UNIX") else None
    return create_app(settings, wakeup=wakeup)
