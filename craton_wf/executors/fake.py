"""An in-memory executor for unit tests and the scheduler benchmark.

It keeps the docker executor's observable behaviour — one container per
name (``create`` of a taken name raises), states created → running → exited,
logs that follow until the exit, ``since`` filtering, stop with 137 — without
any runtime, so hundreds of runs finish in milliseconds.

What a container "does" is decided by ``behaviour(spec)`` when it starts: the
lines it prints (all stamped at start, a microsecond apart), its exit code and
how long it runs. By default it prints its last command argument (the payload)
and exits 0 at once. Every created spec is kept in ``created`` so tests can
assert payloads and that no name was created twice.

Time is checked lazily: a container whose ``delay`` passed is seen as exited
by the next call that looks at it; waiting threads wake up on time.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from craton_wf.errors import ContainerNotFound, ExecutorError, NameTaken
from craton_wf.executors.base import (
    RUN_UID_LABEL,
    ContainerSpec,
    ContainerState,
    Executor,
    Handle,
    LogLine,
)

KILLED_EXIT_CODE = 137  # 128 + SIGKILL, what docker reports for a stopped container
MANAGED_LABEL = "craton.managed"


@dataclass(frozen=True)
class FakeOutcome:
    """What a fake container prints (``(stream, text)`` pairs), exits with, and runs for."""

    lines: list[tuple[str, str]] = field(default_factory=list)
    exit_code: int = 0
    delay: float = 0.0


Behaviour = Callable[[ContainerSpec], FakeOutcome]


def echo_last_argument(spec: ContainerSpec) -> FakeOutcome:
    """The default behaviour: print the payload (last argument) and succeed."""
    return FakeOutcome(lines=[("stdout", spec.command[-1] if spec.command else "")])


@dataclass
class _FakeContainer:
    id: str
    name: str
    spec: ContainerSpec
    labels: dict[str, str]
    state: ContainerState = ContainerState.CREATED
    lines: list[LogLine] = field(default_factory=list)
    ends_at: float | None = None  # monotonic time of the natural exit
    exit_code: int | None = None
    outcome_exit_code: int = 0


class FakeExecutor(Executor):
    """Thread-safe, in-memory containers driven by ``behaviour``."""

    name = "fake"

    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour: Behaviour = behaviour or echo_last_argument
        self.created: list[ContainerSpec] = []
        self.started: list[str] = []
        self.stopped: list[str] = []
        self.removed: list[str] = []
        self.reachable = True
        self._containers: dict[str, _FakeContainer] = {}  # by id
        self._ids_by_name: dict[str, str] = {}
        self._counter = itertools.count(1)
        self._changed = threading.Condition()

    def ping(self) -> None:
        if not self.reachable:
            raise ExecutorError("cannot reach the fake container runtime")

    def create(self, spec: ContainerSpec) -> Handle:
        with self._changed:
            if spec.name in self._ids_by_name:
                raise NameTaken(f"container name {spec.name} is already taken")
            container = _FakeContainer(
                id=f"fake{next(self._counter):060d}",
                name=spec.name,
                spec=spec,
                labels={**spec.labels, MANAGED_LABEL: "true"},
            )
            self._containers[container.id] = container
            self._ids_by_name[spec.name] = container.id
            self.created.append(spec)
            return self._handle(container)

    def find(self, name: str) -> Handle | None:
        with self._changed:
            container_id = self._ids_by_name.get(name)
            if container_id is None:
                return None
            return self._handle(self._containers[container_id])

    def managed(self) -> list[Handle]:
        with self._changed:
            return [
                self._handle(container)
                for container in self._containers.values()
                if RUN_UID_LABEL in container.labels
            ]

    def start(self, handle: Handle) -> None:
        with self._changed:
            container = self._get(handle)
            if container.state != ContainerState.CREATED:
                return  # docker: starting a started container is a no-op
        outcome = self.behaviour(container.spec)  # outside the lock: it may be slow
        with self._changed:
            started_at = datetime.now(UTC)
            container.lines = [
                LogLine(stream=stream, ts=started_at + timedelta(microseconds=i), text=text)
                for i, (stream, text) in enumerate(outcome.lines)
            ]
            container.outcome_exit_code = outcome.exit_code
            container.ends_at = time.monotonic() + max(outcome.delay, 0.0)
            container.state = ContainerState.RUNNING
            self.started.append(container.name)
            self._changed.notify_all()

    def logs(self, handle: Handle, since: datetime | None = None) -> Iterator[LogLine]:
        self._wait_for(handle, lambda c: c.state != ContainerState.CREATED, timeout=None)
        with self._changed:
            lines = list(self._get(handle).lines)
        for line in lines:
            if since is None or line.ts > since:
                yield line
        self._wait_until_exited(handle, timeout=None)  # follow: end when the container does

    def wait(self, handle: Handle, timeout: float | None = None) -> int | None:
        return self._wait_until_exited(handle, timeout)

    def stop(self, handle: Handle, grace_seconds: float = 10.0) -> None:
        with self._changed:
            container = self._containers.get(handle.id)
            if container is None:
                return
            self._refresh(container)
            if container.state == ContainerState.RUNNING:
                container.state = ContainerState.EXITED
                container.exit_code = KILLED_EXIT_CODE
                self.stopped.append(container.name)
                self._changed.notify_all()

    def remove(self, handle: Handle) -> None:
        with self._changed:
            container = self._containers.pop(handle.id, None)
            if container is None:
                return
            del self._ids_by_name[container.name]
            self.removed.append(container.name)
            self._changed.notify_all()

    def names(self) -> list[str]:
        """Names of the containers that exist now (created and not removed)."""
        with self._changed:
            return list(self._ids_by_name)

    def _wait_until_exited(self, handle: Handle, timeout: float | None) -> int | None:
        container = self._wait_for(
            handle, lambda c: c.state == ContainerState.EXITED, timeout=timeout
        )
        return None if container is None else container.exit_code

    def _wait_for(
        self, handle: Handle, done: Callable[[_FakeContainer], bool], timeout: float | None
    ) -> _FakeContainer | None:
        """The container once ``done(container)``, None if ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while True:
                container = self._get(handle)
                self._refresh(container)
                if done(container):
                    return container
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    return None
                self._changed.wait(self._sleep_for(container, now, deadline))

    @staticmethod
    def _sleep_for(container: _FakeContainer, now: float, deadline: float | None) -> float | None:
        wakeups = [t - now for t in (container.ends_at, deadline) if t is not None]
        return max(min(wakeups), 0.0) if wakeups else None

    @staticmethod
    def _refresh(container: _FakeContainer) -> None:
        """Let a running container exit once its delay has passed."""
        if (
            container.state == ContainerState.RUNNING
            and container.ends_at is not None
            and time.monotonic() >= container.ends_at
        ):
            container.state = ContainerState.EXITED
            container.exit_code = container.outcome_exit_code

    def _get(self, handle: Handle) -> _FakeContainer:
        container = self._containers.get(handle.id)
        if container is None:
            raise ContainerNotFound(f"container {handle.name} is gone")
        return container

    def _handle(self, container: _FakeContainer) -> Handle:
        self._refresh(container)
        return Handle(
            id=container.id, name=container.name, state=container.state, labels=container.labels
        )
