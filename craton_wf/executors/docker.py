"""The local Docker engine as an executor: one hardened container per run attempt.

Containers are created from a :class:`ContainerSpec` with the hardening the
task contract promises (no capabilities, no new privileges, user nobody,
read-only root with a small ``/tmp`` tmpfs, pid/memory/cpu limits, no network
unless the task asks for it, never the engine's socket) and carry the spec's
labels plus ``craton.managed=true`` so cleanup finds them by label. A task that
asks for the network joins its project's bridge, never the default one, with
``host.docker.internal`` naming that bridge's gateway, where the API answers
(:mod:`craton_wf.executors.tasknet`).

A run's output is read through an attach (``POST /containers/{id}/attach``,
stream, no logs) that ``start`` opens before it starts the container. The
engine copies the container's output to each attached reader through a pipe
that blocks when the reader is behind (about 1 MB), so a slow runner slows
the container down instead of losing lines, whatever the json-file log's
rotation (``log_max_size``/``log_max_files`` then only bound its disk): while
its runner reads, a run's stored log is exactly what the container printed.
An attach carries no engine stamps; its lines are stamped when read. When the
attach ends the container has exited (the engine closes it then); if it ends
while the container still runs, a gap line says so and the engine's log is
followed from then on.

A container started elsewhere (a run taken over from a runner that died) is
read from the engine's log, everything it still has, then attached: it is
paused between the attach and the read so the two meet exactly (see
:meth:`DockerExecutor._replayed_then_live`); the runner finds where its stored
lines end by counting them (:mod:`craton_wf.runner.resume`). What rotated away
while no runner read is lost; a ``[craton] log gap`` line stands there.

The engine's log is read from the raw ``GET /containers/{id}/logs`` stream
rather than through the SDK's ``logs()``, which drops the stream id of each
frame: a non-TTY container's output comes as frames with an 8-byte header
(stream id, length), and with ``timestamps=1`` every frame is one log message
starting with the engine's RFC 3339 timestamp. Docker splits lines over 16 KiB
into several messages without newlines, so lines are reassembled per stream
and stamped with the time of the message that completed them. Within a
stream the order is exact; across streams it is the engine's (it copies
stdout and stderr in separate goroutines, so a line written to stderr just
after one on stdout may come first). The engine (seen with 20.10) may end a
follow stream before it has sent the last messages; the log is then read
again after the last message seen, and if that message was rotated away
meanwhile a gap line says so (:func:`frames_after`).

``managed`` answers from one list call: the engine's summaries carry each
container's name, state and labels, so there is no inspect per container to
race a removal. Containers of swarm tasks (labelled with their service) are
left out, even on an engine that is also a swarm node: their service is what
the swarm executor lists and removes.

The client is created on first use, never at import time nor in the
constructor, because the SDK asks the engine for its API version as soon as
a client exists.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import docker
import docker.errors
import requests
import urllib3.exceptions

from craton_wf.domain.labels import PROJECT_LABEL
from craton_wf.domain.logmarks import log_gap_marker
from craton_wf.domain.task_network import API_HOSTNAME
from craton_wf.errors import ContainerNotFound, ExecutorError, NameTaken
from craton_wf.executors.base import (
    RUN_UID_LABEL,
    ContainerSpec,
    ContainerState,
    Executor,
    Handle,
    LogLine,
)
from craton_wf.executors.tasknet import ProjectNetworks, TaskNetworkOptions

if TYPE_CHECKING:
    from craton_wf.settings import Settings

log = logging.getLogger(__name__)

MANAGED_LABEL = "craton.managed"
SWARM_SERVICE_LABEL = "com.docker.swarm.service.id"  # set by swarm on its tasks' containers
USER = "65534:65534"
TMPFS = {"/tmp": "rw,size=64m,mode=1777"}
MAX_MESSAGE_CHARS = 2000
MAX_LINE_BYTES = 1024 * 1024  # a "line" that never ends is cut here
LOG_REOPEN_SECONDS = 0.5
QUIET_SECONDS = 0.05  # a paused container's log has settled when it did not grow this long
QUIET_PATIENCE_SECONDS = 2.0
LIVE_EXIT_PATIENCE_SECONDS = 5.0  # between an attach's end and the exit being recorded

_FRAME_HEADER = struct.Struct(">BxxxL")
_STREAMS = {1: "stdout", 2: "stderr"}
_INVALID_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_.-]")
_TIMESTAMP = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d) ")
_RUNNING_STATES = {"running", "paused", "restarting"}


def _truncate(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def container_name(name: str) -> str:
    """``name`` made valid for Docker (``[a-zA-Z0-9][a-zA-Z0-9_.-]*``), deterministically."""
    cleaned = _INVALID_NAME_CHARS.sub("-", name)
    return cleaned if cleaned[:1].isalnum() else f"craton-{cleaned}"


def _docker_message(exc: Exception) -> str:
    if isinstance(exc, docker.errors.APIError):
        explanation = exc.explanation or str(exc)
        if isinstance(explanation, bytes):
            explanation = explanation.decode("utf-8", "replace")
        return _truncate(f"{exc.status_code}: {explanation}")
    return _truncate(str(exc) or type(exc).__name__)


@contextmanager
def docker_errors(action: str) -> Iterator[None]:
    """Translate SDK and transport errors raised while doing ``action``."""
    try:
        yield
    except docker.errors.ImageNotFound as exc:
        raise ExecutorError(f"could not {action}: image not found: {_docker_message(exc)}") from exc
    except docker.errors.NotFound as exc:
        raise ContainerNotFound(f"could not {action}: {_docker_message(exc)}") from exc
    except (
        docker.errors.DockerException,
        requests.exceptions.RequestException,
        urllib3.exceptions.HTTPError,
    ) as exc:
        raise ExecutorError(f"could not {action}: {_docker_message(exc)}") from exc


def parse_docker_timestamp(match: re.Match[bytes]) -> datetime:
    """An aware UTC datetime from a matched RFC 3339 stamp (nanoseconds cut to micro)."""
    seconds, fraction, zone = (g.decode() if g else "" for g in match.groups())
    stamp = datetime.fromisoformat(seconds + ("+00:00" if zone == "Z" else zone))
    micros = int((fraction or "0").ljust(6, "0")[:6])
    return (stamp + timedelta(microseconds=micros)).astimezone(UTC)


def _state_of(status: str) -> ContainerState:
    if status == "created":
        return ContainerState.CREATED
    if status in _RUNNING_STATES:
        return ContainerState.RUNNING
    return ContainerState.EXITED  # exited, dead, removing


def _handle_of(summary: dict[str, Any], name: str) -> Handle:
    """A handle from a container's list summary (``GET /containers/json``)."""
    return Handle(
        id=summary["Id"],
        name=name,
        state=_state_of(summary.get("State", "")),
        labels=dict(summary.get("Labels") or {}),
    )


def _tmpfs(spec: ContainerSpec) -> dict[str, str]:
    if spec.limits.tmpfs_bytes is None:
        return dict(TMPFS)
    return {"/tmp": f"rw,size={max(1, spec.limits.tmpfs_bytes // (1024 * 1024))}m,mode=1777"}


def host_config_options(
    spec: ContainerSpec,
    log_max_size: str = "64m",
    log_max_files: int = 2,
    *,
    network: str | None = None,
    api_gateway: str | None = None,
) -> dict[str, Any]:
    """The hardening and limits of a task container, as ``create_host_config`` options.

    ``network``: the project network a task that needs the network joins
    (never the default bridge); ``api_gateway``: the address
    ``host.docker.internal`` names in it.
    """
    if spec.network and not network:
        raise ExecutorError(f"{spec.name} needs the network but was given no project network")
    options: dict[str, Any] = {
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "read_only": True,
        "tmpfs": _tmpfs(spec),
        "network_mode": network if spec.network else "none",
        "auto_remove": False,
        "privileged": False,
        # An init (the engine's docker-init) as PID 1 forwards SIGTERM and
        # reaps: a script as PID 1 ignores signals it installs no handler
        # for, so a cancel would wait out the whole grace period.
        "init": True,
        # The engine's own copy of the output is bounded too (the stored log is
        # capped by the runner); rotation past it shows as a gap marker.
        "log_config": {
            "type": "json-file",
            "config": {"max-size": log_max_size, "max-file": str(log_max_files)},
        },
    }
    if spec.network and api_gateway:
        options["extra_hosts"] = {API_HOSTNAME: api_gateway}
    if spec.limits.pids is not None:
        options["pids_limit"] = spec.limits.pids
    if spec.limits.memory_bytes is not None:
        options["mem_limit"] = spec.limits.memory_bytes
        options["memswap_limit"] = spec.limits.memory_bytes  # no swap on top
    if spec.limits.nano_cpus is not None:
        options["nano_cpus"] = spec.limits.nano_cpus
    return options


def _read_exactly(raw: Any, size: int) -> bytes:
    """``size`` bytes from the response, fewer only at the end of the stream."""
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        chunk = raw.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def iter_frames(raw: Any) -> Iterator[tuple[str, bytes]]:
    """(stream, payload) of each frame of a multiplexed (non-TTY) log stream."""
    while header := _read_exactly(raw, _FRAME_HEADER.size):
        if len(header) < _FRAME_HEADER.size:
            return
        stream_id, length = _FRAME_HEADER.unpack(header)
        payload = _read_exactly(raw, length)
        if payload:
            yield _STREAMS.get(stream_id, "stdout"), payload


Frame = tuple[str, bytes]
CROSSING_NS = 1_000_000_000  # how far stamps of stdout and stderr may cross in a log


def frames_after(frames: Iterator[Frame], last: Frame) -> Iterator[Frame | LogLine]:
    """The frames of a log read again that come after ``last``, the last frame seen.

    The log was reopened from a second before ``last`` (stamps of stdout and
    stderr may cross by that much), so ``last`` comes first unless the runtime
    rotated it away meanwhile. Then every frame read is new, lines between
    ``last`` and them may be gone, and a ``system`` gap line says so before
    them. Frames stamped after ``last`` are held until ``last`` is found (they
    were seen before it) or cannot come any more (a frame stamped past the
    crossing, or the end of the log).
    """
    last_ns = _frame_stamp_ns(last[1]) or 0
    held: list[Frame] = []
    for frame in frames:
        if frame == last:
            yield from frames
            return
        stamp = _frame_stamp_ns(frame[1])
        if stamp is None or stamp <= last_ns:
            continue  # seen before ``last``
        held.append(frame)
        if stamp > last_ns + CROSSING_NS:
            break
    if not held:
        return
    yield LogLine(
        "system",
        _stamp_of_ns(_frame_stamp_ns(held[0][1]) or last_ns),
        log_gap_marker(_stamp_of_ns(last_ns), _stamp_of_ns(_frame_stamp_ns(held[0][1]) or 0)),
    )
    yield from held
    yield from frames


def _stamp_of_ns(stamp_ns: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=stamp_ns // 1000)


def _frame_stamp_ns(message: bytes) -> int | None:
    match = _TIMESTAMP.match(message)
    if match is None:
        return None
    stamp = parse_docker_timestamp(match)
    nanos = int((match.group(2) or b"0").ljust(9, b"0")[:9]) % 1000
    return _epoch_micros(stamp) * 1000 + nanos


@dataclass
class _PendingLine:
    data: bytearray = field(default_factory=bytearray)
    ts: datetime | None = None
    live: bool = False


@dataclass(frozen=True)
class _Live:
    """A chunk of an attach's output, stamped when it was read."""

    stream: str
    data: bytes
    ts: datetime


# What a log source yields: a frame of the logs API (its payload led by the
# engine's stamp), a chunk of an attach, or a line of the executor's own (a gap).
_Output = Frame | _Live | LogLine


class LineAssembler:
    """Turns timestamped log messages into whole lines, per stream.

    A message that ends without a newline (docker's 16 KiB split, or output
    read before its newline arrived) is kept until the rest of its line comes.
    """

    def __init__(self, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self.max_line_bytes = max_line_bytes
        self._pending: dict[str, _PendingLine] = {}

    def feed(
        self, stream: str, message: bytes, ts: datetime | None = None, live: bool = False
    ) -> Iterator[LogLine]:
        """The lines ``message`` completes; ``ts`` stamps an attach's output, which
        carries no stamp of the engine's (``live``)."""
        pending = self._pending.setdefault(stream, _PendingLine())
        match = None if ts is not None else _TIMESTAMP.match(message)
        if ts is not None:
            pending.ts = ts
        elif match:
            pending.ts = parse_docker_timestamp(match)
            message = message[match.end() :]
        elif pending.ts is None:  # no stamp at all: not expected from the engine
            pending.ts = datetime.now(UTC)
        pending.live = live
        pending.data += message
        if b"\n" in message:  # split once: a chunk of an attach holds thousands of lines
            *complete, rest = bytes(pending.data).split(b"\n")
            for data in complete:
                yield self._line(stream, pending, data)
            pending.data = bytearray(rest)
        if len(pending.data) >= self.max_line_bytes:
            yield self._line(stream, pending, bytes(pending.data))
            pending.data.clear()

    def flush(self) -> Iterator[LogLine]:
        """The unterminated last line of each stream, oldest first."""
        leftovers = [
            self._line(stream, pending, bytes(pending.data))
            for stream, pending in self._pending.items()
            if pending.data
        ]
        self._pending.clear()
        yield from sorted(leftovers, key=lambda line: line.ts)

    @staticmethod
    def _line(stream: str, pending: _PendingLine, data: bytes) -> LogLine:
        assert pending.ts is not None
        text = data.decode("utf-8", "replace")
        return LogLine(stream=stream, ts=pending.ts, text=text, live=pending.live)


def _epoch_micros(stamp: datetime) -> int:
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    delta = stamp - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _since_param(stamp_ns: int) -> str:
    """A Docker ``since`` value: Unix seconds with nanoseconds."""
    seconds, nanos = divmod(max(stamp_ns, 0), 1_000_000_000)
    return f"{seconds}.{nanos:09d}"


def _close_quietly(attached: Any) -> None:
    """Close an attach socket; the engine then stops holding the container for it."""
    if attached is None:
        return
    with contextlib.suppress(OSError):
        attached.close()
    raw = getattr(attached, "_sock", None)  # the SDK hands out the socket's file object
    if raw is not None:
        with contextlib.suppress(OSError):
            raw.close()


def _drain(attached: Any) -> tuple[bytes, Any]:
    """What an attach socket received so far (until it has been quiet a moment),
    and a reader of what comes after.

    Read through the HTTP response's buffer, which may hold output that came
    with the attach's headers; the socket's own file object is spent by the
    timeout, so the rest is read through a new one.
    """
    response = getattr(attached, "_response", None)
    buffered = response.raw._fp.fp if response is not None else attached
    sock = attached._sock
    received = bytearray()
    sock.settimeout(QUIET_SECONDS * 2)
    try:
        while chunk := buffered.read1(65536):
            received += chunk
    except (TimeoutError, OSError):
        pass
    finally:
        sock.settimeout(None)
    rest = sock.makefile("rb", buffering=0)
    rest._response = response  # the socket lives as long as its response
    return bytes(received), rest


def _split_frames(data: bytes) -> tuple[list[Frame], bytes]:
    """The whole frames in ``data``, and what is left of a frame cut short."""
    frames: list[Frame] = []
    offset = 0
    while offset + _FRAME_HEADER.size <= len(data):
        stream_id, length = _FRAME_HEADER.unpack_from(data, offset)
        end = offset + _FRAME_HEADER.size + length
        if end > len(data):
            break
        frames.append((_STREAMS.get(stream_id, "stdout"), data[offset + _FRAME_HEADER.size : end]))
        offset = end
    return frames, data[offset:]


def _unfinished_lines(frames: list[Frame]) -> dict[str, bytes]:
    """Per stream, what follows the last newline of the frames: not logged yet."""
    joined: dict[str, bytearray] = {}
    for stream, payload in frames:
        joined.setdefault(stream, bytearray()).extend(payload)
    return {
        stream: bytes(data[data.rfind(b"\n") + 1 :])
        for stream, data in joined.items()
        if not data.endswith(b"\n")
    }


class _Prefixed:
    """A reader that returns ``prefix`` before what ``rest`` reads."""

    def __init__(self, prefix: bytes, rest: Any) -> None:
        self.prefix, self.rest = prefix, rest

    def read(self, size: int) -> bytes:
        if self.prefix:
            chunk, self.prefix = self.prefix[:size], self.prefix[size:]
            return chunk
        return bytes(self.rest.read(size) or b"")

    def close(self) -> None:
        _close_quietly(self.rest)


def _raise_for_log_status(handle: Handle, response: requests.Response) -> None:
    if response.status_code == 404:
        raise ContainerNotFound(f"container {handle.name} is gone")
    if response.status_code >= 400:
        raise ExecutorError(
            f"could not read the logs of container {handle.name}: "
            f"{response.status_code}: {_truncate(response.text)}"
        )


class DockerExecutor(Executor):
    """Runs each attempt of a run as a container of the local (or DOCKER_HOST) engine."""

    name = "docker"

    def __init__(
        self,
        base_url: str | None = None,
        *,
        client: docker.DockerClient | None = None,
        max_line_bytes: int = MAX_LINE_BYTES,
        log_max_size: str = "64m",
        log_max_files: int = 2,
        task_network: TaskNetworkOptions | None = None,
    ) -> None:
        self.base_url = base_url
        self.networks = ProjectNetworks(task_network or TaskNetworkOptions())
        self.max_line_bytes = max_line_bytes
        self.log_max_size = log_max_size
        self.log_max_files = log_max_files
        self._client = client
        self._client_lock = threading.Lock()
        self._attach_lock = threading.Lock()
        # Attach sockets opened by ``start``, read by ``logs``, by container id.
        self._attached: dict[str, Any] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> DockerExecutor:
        return cls(
            settings.docker_base_url,
            log_max_size=settings.container_log_max_size,
            log_max_files=settings.container_log_max_files,
            task_network=TaskNetworkOptions.from_settings(settings),
        )

    @property
    def client(self) -> docker.DockerClient:
        with self._client_lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> docker.DockerClient:
        where = self.base_url or "DOCKER_HOST or the local socket"
        try:
            if self.base_url:
                return docker.DockerClient(base_url=self.base_url)
            return docker.from_env()
        except docker.errors.DockerException as exc:
            raise ExecutorError(
                f"cannot reach the Docker engine at {where}: {_docker_message(exc)}"
            ) from exc

    def ping(self) -> None:
        with docker_errors("reach the Docker engine"):
            self.client.ping()

    def create(self, spec: ContainerSpec) -> Handle:
        name = container_name(spec.name)
        labels = {**spec.labels, MANAGED_LABEL: "true"}
        try:
            created = self._create_container(spec, name, labels)
        except ContainerNotFound as exc:
            # The project network chosen was a duplicate its maker removed
            # meanwhile (executors.tasknet): choose again, once.
            if not spec.network or "network" not in exc.message:
                raise
            created = self._create_container(spec, name, labels)
        return Handle(id=created["Id"], name=name, state=ContainerState.CREATED, labels=labels)

    def _create_container(
        self, spec: ContainerSpec, name: str, labels: dict[str, str]
    ) -> dict[str, Any]:
        api = self.client.api
        network = gateway = None
        if spec.network:
            project = spec.labels.get(PROJECT_LABEL, "")
            with docker_errors(f"prepare the network of project {project or '(none)'}"):
                joined = self.networks.attach(api, project)
            network, gateway = joined.id, joined.gateway  # by id: names may be duplicated
        with docker_errors(f"create container {name}"):
            try:
                created: dict[str, Any] = api.create_container(
                    image=spec.image,
                    command=list(spec.command),
                    name=name,
                    labels=labels,
                    environment=dict(spec.env),
                    user=USER,
                    tty=False,
                    stdin_open=False,
                    host_config=api.create_host_config(
                        **host_config_options(
                            spec,
                            self.log_max_size,
                            self.log_max_files,
                            network=network,
                            api_gateway=gateway,
                        )
                    ),
                )
            except docker.errors.APIError as exc:
                if exc.status_code == 409:
                    raise NameTaken(f"container name {name} is already taken") from exc
                raise
        return created

    def find(self, name: str) -> Handle | None:
        name = container_name(name)
        with docker_errors(f"look for container {name}"):
            found = self.client.api.containers(all=True, filters={"name": f"^/{re.escape(name)}$"})
        for summary in found:
            if f"/{name}" in summary.get("Names", []):
                return _handle_of(summary, name)
        return None

    def managed(self) -> list[Handle]:
        with docker_errors("list the containers of runs"):
            found = self.client.api.containers(all=True, filters={"label": RUN_UID_LABEL})
        return [
            _handle_of(summary, (summary.get("Names") or ["/"])[0].lstrip("/"))
            for summary in found
            if SWARM_SERVICE_LABEL not in (summary.get("Labels") or {})
        ]

    def start(self, handle: Handle) -> None:
        """Attach to the container, then start it: ``logs`` reads the attach.

        Attached before it starts, the reader gets the output from its first
        byte through the engine's pipe, which holds the container back when the
        reader is behind instead of dropping lines; the json-file copy and its
        rotation do not matter while the attach is read.
        """
        with self._attach_lock:
            stale = self._attached.pop(handle.id, None)
        _close_quietly(stale)
        attached = self._attach(handle)
        try:
            with docker_errors(f"start container {handle.name}"):
                self.client.api.start(handle.id)
        except BaseException:
            _close_quietly(attached)
            raise
        with self._attach_lock:
            self._attached[handle.id] = attached

    def logs(self, handle: Handle, since: datetime | None = None) -> Iterator[LogLine]:
        assembler = LineAssembler(self.max_line_bytes)
        # The engine filters whole messages; a second's margin keeps the start of
        # a line split into several messages, the exact cut is made on lines.
        since_ns = None if since is None else (_epoch_micros(since) - 1_000_000) * 1000
        for item in self._output(handle, since_ns):
            if isinstance(item, LogLine):
                lines: Iterator[LogLine] = iter((item,))
            elif isinstance(item, _Live):
                lines = assembler.feed(item.stream, item.data, item.ts, live=True)
            else:
                lines = assembler.feed(*item)
            for line in lines:
                if since is None or line.ts > since:
                    yield line
        for line in assembler.flush():
            if since is None or line.ts > since:
                yield line

    def _output(self, handle: Handle, since_ns: int | None) -> Iterator[_Output]:
        """The container's output: the attach ``start`` opened; else, for a
        container started elsewhere (a run taken over), what the engine logged
        and then an attach (:meth:`_replayed_then_live`)."""
        with self._attach_lock:
            attached = self._attached.pop(handle.id, None)
        if attached is not None:
            yield from self._live(handle, attached)
        elif since_ns is None:
            yield from self._replayed_then_live(handle)
        else:
            yield from self._messages(handle, since_ns)

    def _attach(self, handle: Handle) -> Any:
        """An attach socket to the container's stdout and stderr, from now on."""
        params = {"stdout": 1, "stderr": 1, "stream": 1}
        with docker_errors(f"attach to container {handle.name}"):
            return self.client.api.attach_socket(handle.id, params=params)

    def _live(self, handle: Handle, attached: Any) -> Iterator[_Output]:
        """The attach's output, stamped as it is read, until the container exited.

        Should the stream end while the container still runs (the engine
        restarted), the engine's log is followed from then on, after a gap line.
        """
        stamp = datetime.now(UTC)
        try:
            for stream, data in iter_frames(attached):
                stamp = max(stamp, datetime.now(UTC))  # non-decreasing, whatever the clock does
                yield _Live(stream, data, stamp)
        finally:
            _close_quietly(attached)
        # The engine closes an attach when the container exits, just before it
        # records the exit: give it a moment to.
        if self.wait(handle, timeout=LIVE_EXIT_PATIENCE_SECONDS) is not None:
            return
        broke = datetime.now(UTC)
        yield LogLine("system", broke, log_gap_marker(stamp, None))
        yield from self._messages(handle, _epoch_micros(broke) * 1000)

    def _replayed_then_live(self, handle: Handle) -> Iterator[_Output]:
        """What the engine still has of a container started elsewhere, then its attach.

        The engine refuses to attach to a paused container, so the attach is
        opened first and the container paused right after: what the attach got
        until then (drained once the engine's log of it settled) is in the
        stored log as well, and is dropped, but for a line not finished yet
        (the engine logs a line once it ends). The stored log is read while
        the container is paused, so it and the attach meet exactly. The reader
        (the runner taking the run over) finds where its stored lines end
        among the replayed ones. A container that cannot be paused is
        followed through the engine's log instead.
        """
        with docker_errors(f"inspect container {handle.name}"):
            status = self.client.api.inspect_container(handle.id)["State"].get("Status", "")
        if status == "paused":  # by a runner that died while taking it over
            self._unpause(handle)
        elif status != "running":
            yield from self._history(handle)
            return
        attached = self._attach(handle)
        try:
            with docker_errors(f"pause container {handle.name}"):
                self.client.api.pause(handle.id)
        except ExecutorError:
            _close_quietly(attached)
            yield from self._messages(handle, None)
            return
        try:
            self._await_quiet(handle)
            overlap, rest = _drain(attached)
            yield from self._history(handle)
        finally:
            self._unpause(handle)
        frames, unread = _split_frames(overlap)
        now = datetime.now(UTC)
        for stream, unfinished in _unfinished_lines(frames).items():
            yield _Live(stream, unfinished, now)
        yield from self._live(handle, _Prefixed(unread, rest))

    def _history(self, handle: Handle) -> Iterator[Frame]:
        """Every message the engine has stored of the container, once, without follow."""
        with self._log_stream(handle, None, follow=False) as response:
            yield from iter_frames(response.raw)

    def _await_quiet(self, handle: Handle) -> None:
        """Wait until the engine logged what the paused container had already written."""
        newest = None
        deadline = time.monotonic() + QUIET_PATIENCE_SECONDS
        while time.monotonic() < deadline:
            with self._log_stream(handle, None, follow=False, tail=1) as response:
                now = response.raw.read()
            if now == newest:
                return
            newest = now
            time.sleep(QUIET_SECONDS)

    def _unpause(self, handle: Handle) -> None:
        try:
            with docker_errors(f"unpause container {handle.name}"):
                self.client.api.unpause(handle.id)
        except ExecutorError as exc:  # gone, or stopped meanwhile: nothing to resume
            log.info("could not unpause %s: %s", handle.name, exc)

    def _messages(self, handle: Handle, since_ns: int | None) -> Iterator[Frame | LogLine]:
        """Each log message of the container once, following it until it exited.

        The engine may end a follow stream before it has sent the container's
        last messages, and a stream can drop while the container runs: either
        way the log is opened again and read on after the last message seen
        (:func:`frames_after`: a gap line if it was rotated away meanwhile).
        """
        last: Frame | None = None
        follow = True
        while True:
            opened_from = since_ns
            last_ns = None if last is None else _frame_stamp_ns(last[1])
            if last_ns is not None:  # a second back: stamps of stdout and stderr may cross
                opened_from = last_ns - 1_000_000_000
            with self._log_stream(handle, opened_from, follow) as response:
                frames: Iterator[Frame | LogLine] = iter_frames(response.raw)
                if last is not None:
                    frames = frames_after(iter_frames(response.raw), last)
                for frame in frames:
                    if not isinstance(frame, LogLine):
                        last = frame
                    yield frame
            if not follow:
                return
            if self._exit_code_if_exited(handle) is not None:
                follow = False  # one last read, without follow, for what the stream missed
            else:
                time.sleep(LOG_REOPEN_SECONDS)

    @contextmanager
    def _log_stream(
        self, handle: Handle, since_ns: int | None, follow: bool, tail: int | None = None
    ) -> Iterator[requests.Response]:
        api = self.client.api
        params: dict[str, Any] = {"stdout": 1, "stderr": 1, "timestamps": 1}
        if follow:
            params["follow"] = 1
        if since_ns is not None:
            params["since"] = _since_param(since_ns)
        if tail is not None:
            params["tail"] = tail
        url = f"{api.base_url}/v{api.api_version}/containers/{quote(handle.id, safe='')}/logs"
        with docker_errors(f"read the logs of container {handle.name}"):
            # A follow stream is open as long as the container runs: no read timeout.
            response = api.get(url, params=params, stream=True, timeout=None)
            try:
                _raise_for_log_status(handle, response)
                yield response
            finally:
                response.close()

    def wait(self, handle: Handle, timeout: float | None = None) -> int | None:
        try:
            with docker_errors(f"wait for container {handle.name}"):
                result = self.client.api.wait(handle.id, timeout=timeout)
        except ExecutorError as exc:
            if timeout is None or not isinstance(
                exc.__cause__, requests.exceptions.RequestException
            ):
                raise
            # The unix-socket adapter reports a read timeout as a ConnectionError:
            # ask the engine whether the container is still running instead.
            return self._exit_code_if_exited(handle)
        return int(result["StatusCode"])

    def _exit_code_if_exited(self, handle: Handle) -> int | None:
        with docker_errors(f"inspect container {handle.name}"):
            state = self.client.api.inspect_container(handle.id)["State"]
        if _state_of(state.get("Status", "")) == ContainerState.EXITED:
            return int(state["ExitCode"])
        return None

    def stop(self, handle: Handle, grace_seconds: float = 10.0) -> None:
        # No unpause first: the engine stops a paused container itself (moby
        # unpauses it to deliver the signal).
        try:
            with docker_errors(f"stop container {handle.name}"):
                self.client.api.stop(handle.id, timeout=math.ceil(max(grace_seconds, 0)))
        except ContainerNotFound:
            return

    def remove(self, handle: Handle) -> None:
        with self._attach_lock:
            attached = self._attached.pop(handle.id, None)
        _close_quietly(attached)  # started, but its log never read: let it go
        try:
            with docker_errors(f"remove container {handle.name}"):
                try:
                    self.client.api.remove_container(handle.id, force=True, v=True)
                except docker.errors.APIError as exc:
                    # 409 "removal already in progress": someone else is removing it.
                    if exc.status_code != 409:
                        raise
        except ContainerNotFound:
            return

    def firewall_status(self) -> str:
        """``ok``, ``disabled``, or what of the task network firewall is not in place."""
        try:
            with docker_errors("list the project networks"):
                return self.networks.firewall_status(self.client.api)
        except ExecutorError as exc:
            return f"error: {exc.message}"

    def close(self) -> None:
        self.networks.close()
        with self._attach_lock:
            attached, self._attached = list(self._attached.values()), {}
        for socket in attached:
            _close_quietly(socket)
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None
