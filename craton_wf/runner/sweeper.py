"""Sweeping: removing the containers of runs that runners left behind.

A runner stopped or killed between storing a run's outcome and removing its
container leaves the container behind. Every runner sweeps at its start and
then every ``sweep_seconds`` (see :class:`~craton_wf.runner.worker.Runner`):
it lists the containers carrying the run labels, whoever made them, and
removes those the database says no run needs
(:func:`craton_wf.engine.sweeping.removable_containers`). Several runners
may sweep at once: removing a container already gone is no error.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy.orm import Session, sessionmaker

from craton_wf.db.engine import transaction
from craton_wf.engine import sweeping
from craton_wf.errors import ExecutorError
from craton_wf.executors.base import Executor, Handle

log = logging.getLogger(__name__)


def sweep_containers(
    sessions: sessionmaker[Session], executor: Executor, stopping: threading.Event | None = None
) -> list[Handle]:
    """Remove the containers no run needs any more; the ones removed.

    Stops early once ``stopping`` is set; a container that cannot be removed
    is logged and left for the next sweep.
    """
    found: dict[sweeping.LeftContainer, Handle] = {}
    for handle in executor.managed():
        container = sweeping.left_container(handle.id, handle.labels)
        if container is not None:
            found[container] = handle
    if not found:
        return []
    with transaction(sessions) as session:
        removable = sweeping.removable_containers(session, found)
    removed: list[Handle] = []
    for container in removable:
        if stopping is not None and stopping.is_set():
            break
        handle = found[container]
        try:
            executor.remove(handle)
        except ExecutorError as exc:
            log.warning("could not remove %s, left behind: %s", handle.name, exc)
            continue
        removed.append(handle)
    return removed
