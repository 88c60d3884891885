"""The local Docker engine as an executor: one hardened container per run attempt.

Containers are created from a :class:`ContainerSpec` with the hardening the
task contract promises (no capabilities, no new privileges, user nobody,
read-only root with a small ``/tmp`` tmpfs, pid/memory/cpu limits, no network
unless the task asks for it, never the engine's socket) and carry the spec's
labels plus ``craton.managed=true`` so cleanup finds them by label. A task that
asks for the network joins its project's bridge, never the default one, with
``host.docker.internal`` naming that bridge's gateway, where the API answers
(:mod:`craton_wf.executors.tasknet`).

Logs are read from the raw ``GET /containers/{id}/logs`` stream rather than
through the SDK's ``logs()``, which drops the stream id of each frame: a
non-TTY container's output comes as frames with an 8-byte header (stream id,
length), and with ``timestamps=1`` every frame is one log message starting
with the engine's RFC 3339 timestamp. Docker splits lines over 16 KiB into
several messages without newlines, so lines are reassembled per stream and
stamped with the time of the message that completed them; that keeps stamps
non-decreasing in the order lines are yielded, which ``since`` relies on.
Within a stream the order is exact; across streams it is the engine's (it
stamps stdout and stderr in separate readers, so a line written to stderr
just after one on stdout may come first).

The engine (seen with 20.10) may end a follow stream at the container's exit
before it has sent the last messages; the log is then read once more without
follow, starting after the last message seen, so nothing is lost.

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

MANAGED_LABEL = "craton.managed"
SWARM_SERVICE_LABEL = "com.docker.swarm.service.id"  # set by swarm on its tasks' containers
USER = "65534:65534"
TMPFS = {"/tmp": "rw,size=64m,mode=1777"}
MAX_MESSAGE_CHARS = 2000
MAX_LINE_BYTES = 1024 * 1024  # a "line" that never ends is cut here
LOG_REOPEN_SECONDS = 0.5

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


def frames_after(
    frames: Iterator[tuple[str, bytes]], last: tuple[str, bytes]
) -> Iterator[tuple[str, bytes]]:
    """The frames that come after ``last`` (nothing if ``last`` never comes)."""
    for frame in frames:
        if frame == last:
            break
    yield from frames


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


class LineAssembler:
    """Turns timestamped log messages into whole lines, per stream.

    A message that ends without a newline (docker's 16 KiB split, or output
    read before its newline arrived) is kept until the rest of its line comes.
    """

    def __init__(self, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self.max_line_bytes = max_line_bytes
        self._pending: dict[str, _PendingLine] = {}

    def feed(self, stream: str, message: bytes) -> Iterator[LogLine]:
        pending = self._pending.setdefault(stream, _PendingLine())
        match = _TIMESTAMP.match(message)
        if match:
            pending.ts = parse_docker_timestamp(match)
            message = message[match.end() :]
        elif pending.ts is None:  # no stamp at all: not expected from the engine
            pending.ts = datetime.now(UTC)
        pending.data += message
        while (newline := pending.data.find(b"\n")) >= 0:
            yield self._line(stream, pending, bytes(pending.data[:newline]))
            del pending.data[: newline + 1]
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
        return LogLine(stream=stream, ts=pending.ts, text=data.decode("utf-8", "replace"))


def _epoch_micros(stamp: datetime) -> int:
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    delta = stamp - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _since_param(stamp_ns: int) -> str:
    """A Docker ``since`` value: Unix seconds with nanoseconds."""
    seconds, nanos = divmod(max(stamp_ns, 0), 1_000_000_000)
    return f"{seconds}.{nanos:09d}"


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
        with docker_errors(f"start container {handle.name}"):
            self.client.api.start(handle.id)

    def logs(self, handle: Handle, since: datetime | None = None) -> Iterator[LogLine]:
        assembler = LineAssembler(self.max_line_bytes)
        # The engine filters whole messages; a second's margin keeps the start of
        # a line split into several messages, the exact cut is made on lines.
        since_ns = None if since is None else (_epoch_micros(since) - 1_000_000) * 1000
        for stream, message in self._messages(handle, since_ns):
            for line in assembler.feed(stream, message):
                if since is None or line.ts > since:
                    yield line
        for line in assembler.flush():
            if since is None or line.ts > since:
                yield line

    def _messages(self, handle: Handle, since_ns: int | None) -> Iterator[tuple[str, bytes]]:
        """Each log message of the container once, following it until it exited.

        The engine may end a follow stream before it has sent the container's
        last messages, and a stream can drop while the container runs: either
        way the log is opened again and read on after the last message seen.
        """
        last: tuple[str, bytes] | None = None
        follow = True
        while True:
            opened_from = since_ns
            last_ns = None if last is None else _frame_stamp_ns(last[1])
            if last_ns is not None:  # a second back: stamps of stdout and stderr may cross
                opened_from = last_ns - 1_000_000_000
            with self._log_stream(handle, opened_from, follow) as response:
                frames = iter_frames(response.raw)
                if last is not None:
                    frames = frames_after(frames, last)
                for frame in frames:
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
        self, handle: Handle, since_ns: int | None, follow: bool
    ) -> Iterator[requests.Response]:
        api = self.client.api
        params: dict[str, Any] = {"stdout": 1, "stderr": 1, "timestamps": 1}
        if follow:
            params["follow"] = 1
        if since_ns is not None:
            params["since"] = _since_param(since_ns)
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
        try:
            with docker_errors(f"stop container {handle.name}"):
                self.client.api.stop(handle.id, timeout=math.ceil(max(grace_seconds, 0)))
        except ContainerNotFound:
            return

    def remove(self, handle: Handle) -> None:
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
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None
