"""The executor interface every backend implements.

A runner drives one run through an executor in these calls::

    handle = executor.find(spec.name)          # adoption: is it already there?
    handle = handle or executor.create(spec)   # exactly one container per attempt
    executor.start(handle)
    for line in executor.logs(handle, since=...):   # until the container exits
        store(line)
    code = executor.wait(handle)
    executor.remove(handle)                    # only after logs and code are stored

Container names are deterministic (run id and attempt), so a second runner
that takes over finds the container instead of starting another.

``managed`` lists every container of a run (those labelled ``craton.run-uid``),
whichever runner or database made it: a runner stopped between storing a
run's outcome and ``remove`` leaves its container behind, and the sweep
(:mod:`craton_wf.runner.sweeper`) finds it there and asks the database
whether it may go.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from craton_wf.domain.labels import RUN_UID_LABEL  # the label ``managed`` selects by
from craton_wf.domain.loglines import LineBlock
from craton_wf.domain.resources import Limits

__all__ = [
    "RUN_UID_LABEL",
    "ContainerSpec",
    "ContainerState",
    "Executor",
    "Handle",
    "LineBlock",
    "Limits",
    "LogLine",
]


class ContainerState(StrEnum):
    CREATED = "created"
    RUNNING = "running"
    EXITED = "exited"


@dataclass(frozen=True)
class ContainerSpec:
    """Everything needed to start one attempt of one run."""

    name: str
    image: str
    command: list[str]
    labels: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    network: bool = False
    limits: Limits = field(default_factory=Limits)
    # Cluster executors only: where the run may be scheduled (swarm constraints).
    placement: tuple[str, ...] = ()
    # The step's timeout; executors that can enforce one themselves do (Kubernetes).
    timeout_seconds: int | None = None


@dataclass(frozen=True)
class Handle:
    """A reference to a container an executor created."""

    id: str
    name: str
    state: ContainerState = ContainerState.CREATED
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LogLine:
    stream: str  # "stdout" | "stderr" | "system" (a note of the executor's)
    ts: datetime  # as stamped by the runtime (UTC, sub-second), or when it was read
    text: str  # one line, without its newline
    # Read straight from the container's output (an attach), not replayed from
    # the runtime's stored log: no earlier reader can have stored it.
    live: bool = False


class Executor(abc.ABC):
    """Creates, starts, watches and removes task containers."""

    name: str = "abstract"

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise ``ExecutorError`` when the runtime cannot be reached."""

    @abc.abstractmethod
    def create(self, spec: ContainerSpec) -> Handle:
        """Create (not start) the container; ``ExecutorError`` if the name is taken."""

    @abc.abstractmethod
    def find(self, name: str) -> Handle | None:
        """The container of that name, with its current state, or None."""

    @abc.abstractmethod
    def managed(self) -> list[Handle]:
        """Every container (service, Job) carrying the ``craton.run-uid`` label, any state."""

    @abc.abstractmethod
    def start(self, handle: Handle) -> None: ...

    @abc.abstractmethod
    def logs(self, handle: Handle, since: datetime | None = None) -> Iterator[LogLine]:
        """Follow the container's output line by line until it exits.

        Without ``since``, from the first line the runtime still has: a runner
        that takes a run over finds where its stored log ends by counting and
        comparing lines (:mod:`craton_wf.runner.resume`), not by stamps. Lines
        lost on the way (rotated away between two reads) are replaced by one
        ``system`` gap line (:func:`craton_wf.domain.logmarks.log_gap_marker`).
        ``since`` skips lines stamped at or before it.
        """

    def log_blocks(self, handle: Handle, since: datetime | None = None) -> Iterator[LineBlock]:
        """:meth:`logs` in blocks: consecutive lines of one stream, read together.

        How the runner reads a log it has nothing of yet. Here each line is a
        block of its own; an executor that reads output in large pieces (the
        Docker executor's attach) yields a block per piece, and spares the
        runner an object per line. Closing the iterator closes the log.
        """
        lines = self.logs(handle, since)
        try:
            for line in lines:
                yield LineBlock(line.stream, line.ts, [line.text], line.live)
        finally:
            close = getattr(lines, "close", None)
            if close is not None:
                close()

    @abc.abstractmethod
    def wait(self, handle: Handle, timeout: float | None = None) -> int | None:
        """The exit code once the container exited, None if ``timeout`` passed first."""

    @abc.abstractmethod
    def stop(self, handle: Handle, grace_seconds: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after the grace period. No error if already stopped."""

    @abc.abstractmethod
    def remove(self, handle: Handle) -> None:
        """Remove the container. No error if already gone."""

    def firewall_status(self) -> str:
        """``ok``, ``disabled``, or why the task network firewall is not in place.

        Only the Docker executor installs one (``CRATON_WF_TASK_NETWORK_FIREWALL``).
        """
        return f"error: the {self.name} executor does not install the task network firewall"

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
