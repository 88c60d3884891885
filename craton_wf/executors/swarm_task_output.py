"""A swarm service task's container, found on this engine as it is made, and attached.

Swarm creates and starts a service task's container itself, so the swarm
executor cannot attach before ``start`` as the docker executor does. It comes
as close as it can: a :class:`TaskContainerWatch` subscribes to the engine's
container events before the service exists (``since`` a second before, as the
engine answers before its subscription is in place), and the moment the
container is created sends an attach and, right behind it, a pause (the
engine holds a container while it starts it, so a pause sent then takes
effect as soon as the start is done). Then:

- the pause is refused, and once the attach is in place the container is
  still ``created``: the engine answers an inspect only between starts, so
  the start came after the attach, which gets the output from its first byte;
- it is paused (or, having started since, paused now): the engine logs the
  attach (an ``attach`` event, once the attach is in place) and, while it
  starts the container, the network the container joins (a ``connect``
  event, before its process runs). If the attach came first, it has all the
  output: the container is unpaused and the attach read. Otherwise the
  output began before the attach: what the engine logged until the pause is
  read, and the container unpaused
  (:meth:`ContainerOutput.drained_while_paused`), so that log and the attach
  meet exactly. If that log may have rotated lines away before its first
  line (:func:`json_file_may_have_lost_lines`), a gap line at the start says
  they may be missing;
- it had exited already: its log is what there is, with the same gap line.
  (A container that runs but would not pause is read as one taken over:
  :meth:`ContainerOutput.replayed_then_live`.)

Events are compared by the engine's stamps, not by the order they arrive in,
and the engine's record of past events (the last 256) is checked to reach
back to the container's creation before the absence of a ``connect`` is
believed.

The engine's events are only this engine's: a task placed on another node is
never seen here. Each second without the container the watch asks swarm for
the task: on another node, or ended without a container (its image could not
be pulled), the watch ends empty-handed and the executor reads the service's
log instead. Every wait has an end: an events stream is opened with an
``until`` a second ahead (the engine closes it then) and closed by
:meth:`TaskContainerWatch.cancel` from another thread; the engine calls have
the SDK's timeout.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from craton_wf.domain.logmarks import GAP_PREFIX
from craton_wf.errors import CratonError, ExecutorError
from craton_wf.executors.base import ContainerState, LogLine
from craton_wf.executors.container_output import (
    ContainerOutput,
    Drained,
    Frame,
    Output,
    close_quietly,
    frame_stamp_ns,
    json_file_may_have_lost_lines,
    since_param,
    stamp_of_ns,
    state_of,
)
from craton_wf.executors.engine_errors import docker_errors

log = logging.getLogger(__name__)

SERVICE_ID_LABEL = "com.docker.swarm.service.id"  # set by swarm on its tasks' containers
SERVICE_NAME_LABEL = "com.docker.swarm.service.name"
EVENTS_WINDOW_SECONDS = 1
ATTACH_EVENT_PATIENCE_SECONDS = 3.0
ATTACH_HEAD_START_SECONDS = 0.005  # the attach is sent this much before the pause
ENDED_TASK_STATES = {"complete", "failed", "rejected", "shutdown", "orphaned", "remove"}


def start_gap_marker(first: datetime) -> str:
    """The gap line before the first line of a log that may have lost lines before it.

    "May": the engine's log cannot tell a start it still has from one it
    rotated away (:func:`json_file_may_have_lost_lines`).
    """
    return (
        f"{GAP_PREFIX}: an unknown number of lines of the container's output "
        f"(before {first.isoformat()}) may be missing: it printed them before a runner "
        "could attach, and the runtime's log may have rotated them away"
    )


@dataclass(frozen=True)
class JsonFileRotation:
    """The json-file options a service's task logs with (``max-size``, ``max-file``)."""

    max_size: str
    max_files: int


@dataclass
class TaskContainerOutput:
    """How the output of a task's container is read, as its watch found the container."""

    output: ContainerOutput
    rotation: JsonFileRotation
    attached: Any = None  # made before the container's process ran: all of its output
    replayed: list[Frame] | None = None  # what was logged before the container was paused
    drained: Drained | None = None  # what the attach got until then

    def items(self) -> Iterator[Output]:
        if self.attached is not None:
            yield from self.output.live(self.attached)
            return
        if self.replayed is None or self.drained is None:  # it would not pause
            if state_of(self.output.status()) == ContainerState.EXITED:
                yield from self._gap_if_lost(list(self.output.history()))
                yield from self.output.history()
            else:
                yield from self.output.replayed_then_live()
            return
        yield from self._gap_if_lost(self.replayed)
        yield from self.replayed
        yield from self.output.after_replay(self.drained)

    def _gap_if_lost(self, frames: list[Frame]) -> Iterator[LogLine]:
        """A gap line before ``frames``, the start of the log, if lines may be gone before."""
        rotation = self.rotation
        if not json_file_may_have_lost_lines(frames, rotation.max_size, rotation.max_files):
            return
        first_ns = frame_stamp_ns(frames[0][1]) if frames else None
        first = datetime.now(UTC) if first_ns is None else stamp_of_ns(first_ns)
        yield LogLine("system", first, start_gap_marker(first))

    def close(self) -> None:
        close_quietly(self.attached)
        if self.drained is not None:
            close_quietly(self.drained.rest)


class TaskContainerWatch:
    """Finds the container of a service's task on this engine as it is made, and attaches.

    Made before the service (it subscribes to the events then), given the
    service's id with :meth:`begin`; :meth:`result` waits for what it found.
    """

    def __init__(
        self,
        api: Any,
        service_name: str,
        rotation: JsonFileRotation,
        newest_task: Callable[[str], dict[str, Any] | None],
        node_id: Callable[[], str],
    ) -> None:
        self.api = api
        self.service_name = service_name
        self.rotation = rotation
        self._newest_task = newest_task
        self._node_id = node_id
        self._service_id = ""
        self._found: TaskContainerOutput | None = None
        self._done = threading.Event()
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._events: Any = None
        # A second back: the engine answers before its subscription is in place.
        self._since = int(time.time()) - 1
        self._events = self._subscribe()

    def begin(self, service_id: str) -> None:
        """Watch for the container of the task of ``service_id`` (on a thread of its own)."""
        self._service_id = service_id
        name = f"swarm-watch-{self.service_name}"
        threading.Thread(target=self._watch, name=name, daemon=True).start()

    def result(self) -> TaskContainerOutput | None:
        """What the watch found, once it ended: None to read the service's log instead."""
        self._done.wait()
        with self._lock:
            found, self._found = self._found, None
        return found

    def cancel(self) -> None:
        """End the watch; the attach it made, if nobody took it, is closed."""
        self._cancelled.set()
        with self._lock:
            events, found, self._found = self._events, self._found, None
        if events is not None:
            events.close()
        if found is not None:
            found.close()
        if not self._service_id:  # never begun
            self._done.set()

    def _subscribe(self) -> Any:
        """The container events of the service's task from ``since`` on, for a second."""
        filters = {
            "type": "container",
            "event": ["create", "start", "attach"],
            "label": [f"{SERVICE_NAME_LABEL}={self.service_name}"],
        }
        until = int(time.time()) + EVENTS_WINDOW_SECONDS
        with docker_errors(f"watch the engine's events for service {self.service_name}"):
            return self.api.events(since=self._since, until=until, filters=filters, decode=True)

    def _next_event(self, actions: set[str]) -> dict[str, Any] | None:
        """The next of these events of the task's container, within a window; None if none."""
        for event in self._events or ():
            attributes = (event.get("Actor") or {}).get("Attributes") or {}
            if event.get("Action") in actions and (
                attributes.get(SERVICE_ID_LABEL) == self._service_id
            ):
                return dict(event)
        with self._lock:
            if not self._cancelled.is_set():
                self._events = self._subscribe()
        return None

    def _watch(self) -> None:
        try:
            container_id = self._container_id()
            if container_id is not None and not self._cancelled.is_set():
                found = self._read_start(container_id)
                with self._lock:
                    self._found = found
        except CratonError as exc:
            log.info("service %s: its container is not read: %s", self.service_name, exc)
        finally:
            with self._lock:
                events, self._events = self._events, None
                abandoned = self._found if self._cancelled.is_set() else None
                if abandoned is not None:
                    self._found = None
            if events is not None:
                events.close()
            if abandoned is not None:
                abandoned.close()
            self._done.set()

    def _container_id(self) -> str | None:
        """The id of the task's container once the engine made it; None if it never will here."""
        while not self._cancelled.is_set():
            event = self._next_event({"create", "start"})
            if event is not None:
                return str(event["id"])
            task = self._newest_task(self._service_id)
            if task is None:
                continue
            status = task.get("Status") or {}
            node = task.get("NodeID")
            if node and node != self._node_id():
                return None  # placed on another node
            container = (status.get("ContainerStatus") or {}).get("ContainerID")
            if container:
                return str(container)
            if status.get("State") in ENDED_TASK_STATES:
                return None  # ended before it had a container
        return None

    def _read_start(self, container_id: str) -> TaskContainerOutput:
        """Attach and pause; replay what was logged if the output began before the attach."""
        output = ContainerOutput(self.api, container_id, self.service_name)
        found = TaskContainerOutput(output, self.rotation)
        attached, paused = self._attach_and_pause(output)
        try:
            if not paused:
                status = output.status()  # once a start under way is done
                if status == "created":
                    return self._attached_first(found, attached, "before it started")
                if status != "running" or not output.pause():  # exited, or would not pause
                    close_quietly(attached)
                    log.info("service %s: its container was %s", self.service_name, status)
                    return found
            try:
                attached_first = self._attached_before_start(container_id)
            except BaseException:
                output.unpause()
                raise
            if attached_first:
                output.unpause()
                return self._attached_first(found, attached, "as it started")
            with output.drained_while_paused(attached) as drained:
                found.drained = drained
                found.replayed = list(output.history())
        except BaseException:
            close_quietly(attached)
            found.close()
            raise
        log.info(
            "service %s: attached after its output began: paused, %d messages replayed",
            self.service_name,
            len(found.replayed),
        )
        return found

    def _attached_first(
        self, found: TaskContainerOutput, attached: Any, when: str
    ) -> TaskContainerOutput:
        log.info("service %s: attached %s", self.service_name, when)
        found.attached = attached
        return found

    def _attach_and_pause(self, output: ContainerOutput) -> tuple[Any, bool]:
        """An attach to the container, and whether it is paused now.

        Both wait while the engine starts the container (it holds the
        container for the whole start): sent together, the attach first, the
        pause takes effect as soon as the start is done, so little is logged
        that would have to be replayed. Should the pause come first, the
        engine refuses the attach (not to a paused container): it is
        unpaused, attached and paused again.
        """
        paused: list[bool] = []

        def pause_after_the_attach() -> None:
            time.sleep(ATTACH_HEAD_START_SECONDS)
            paused.append(output.pause())

        pauser = threading.Thread(target=pause_after_the_attach, name="pause", daemon=True)
        pauser.start()
        try:
            attached = output.attach()
        except ExecutorError:
            pauser.join()  # the SDK's timeout bounds it
            if not any(paused):
                raise
            output.unpause()  # the pause came first
            attached = output.attach()
            return attached, output.pause()
        pauser.join()
        return attached, any(paused)

    def _attached_before_start(self, container_id: str) -> bool:
        """Whether the engine logged the attach before the container joined a network
        (which it does while it starts it, before its process runs)."""
        deadline = time.monotonic() + ATTACH_EVENT_PATIENCE_SECONDS
        attach = None
        while attach is None and time.monotonic() < deadline and not self._cancelled.is_set():
            attach = self._next_event({"attach"})
        if attach is None:
            return False
        attached_ns = int(attach["timeNano"])
        filters = {"type": ["container", "network"], "event": ["create", "connect"]}
        created = connected = False
        with docker_errors(f"read the engine's events for service {self.service_name}"):
            # Past events only: the stream ends once it has sent them.
            past = self.api.events(
                since=self._since, until=since_param(attached_ns), filters=filters, decode=True
            )
            try:
                for event in past:
                    attributes = (event.get("Actor") or {}).get("Attributes") or {}
                    if event.get("Type") == "container" and event.get("id") == container_id:
                        created = True
                    elif attributes.get("container") == container_id:
                        connected = connected or int(event["timeNano"]) < attached_ns
            finally:
                past.close()
        log.debug(
            "service %s: attach event at %d; creation seen: %s; network joined before: %s",
            self.service_name,
            attached_ns,
            created,
            connected,
        )
        return created and not connected
