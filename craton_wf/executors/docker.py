"""The local Docker engine as an executor: one hardened container per run attempt.

Containers are created from a :class:`ContainerSpec` with the hardening the
task contract promises (no capabilities, no new privileges, user nobody,
read-only root with a small ``/tmp`` tmpfs, pid/memory/cpu limits, no network
unless the task asks for it, never the engine's socket) and carry the spec's
labels plus ``craton.managed=true`` so cleanup finds them by label. A task that
asks for the network joins its project's bridge, never the default one, with
``host.docker.internal`` naming that bridge's gateway, where the API answers
(:mod:`craton_wf.executors.tasknet`).

A run's output is read through an attach that ``start`` opens before it
starts the container, so the stored log is exactly what the container
printed, whatever the json-file log's rotation (``log_max_size``/
``log_max_files`` then only bound its disk); a container started elsewhere
(a run taken over from a runner that died) is paused, replayed from the
engine's log and attached. How, and what a gap line then stands for, is
:mod:`craton_wf.executors.container_output`; the runner finds where its
stored lines end by counting them (:mod:`craton_wf.runner.resume`).

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
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import docker
import docker.errors

from craton_wf.domain.labels import PROJECT_LABEL
from craton_wf.domain.task_network import API_HOSTNAME
from craton_wf.errors import ContainerNotFound, ExecutorError, NameTaken
from craton_wf.executors.base import (
    RUN_UID_LABEL,
    ContainerSpec,
    ContainerState,
    Executor,
    Handle,
    LineBlock,
    LogLine,
)
from craton_wf.executors.container_output import (
    MAX_LINE_BYTES,
    ContainerOutput,
    Output,
    blocks_of,
    close_quietly,
    epoch_micros,
    lines_of,
    state_of,
)
from craton_wf.executors.engine_errors import docker_errors, docker_message
from craton_wf.executors.tasknet import ProjectNetworks, TaskNetworkOptions

if TYPE_CHECKING:
    from craton_wf.settings import Settings

MANAGED_LABEL = "craton.managed"
SWARM_SERVICE_LABEL = "com.docker.swarm.service.id"  # set by swarm on its tasks' containers
USER = "65534:65534"
TMPFS = {"/tmp": "rw,size=64m,mode=1777"}

_INVALID_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_.-]")


def container_name(name: str) -> str:
    """``name`` made valid for Docker (``[a-zA-Z0-9][a-zA-Z0-9_.-]*``), deterministically."""
    cleaned = _INVALID_NAME_CHARS.sub("-", name)
    return cleaned if cleaned[:1].isalnum() else f"craton-{cleaned}"


def _handle_of(summary: dict[str, Any], name: str) -> Handle:
    """A handle from a container's list summary (``GET /containers/json``)."""
    return Handle(
        id=summary["Id"],
        name=name,
        state=state_of(summary.get("State", "")),
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
                f"cannot reach the Docker engine at {where}: {docker_message(exc)}"
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
        close_quietly(stale)
        attached = self._output_of(handle).attach()
        try:
            with docker_errors(f"start container {handle.name}"):
                self.client.api.start(handle.id)
        except BaseException:
            close_quietly(attached)
            raise
        with self._attach_lock:
            self._attached[handle.id] = attached

    def logs(self, handle: Handle, since: datetime | None = None) -> Iterator[LogLine]:
        return lines_of(self._output(handle, _since_ns(since)), since, self.max_line_bytes)

    def log_blocks(self, handle: Handle, since: datetime | None = None) -> Iterator[LineBlock]:
        """The lines of each chunk the attach (or each message the engine's log)
        gives, as one block."""
        return blocks_of(self._output(handle, _since_ns(since)), since, self.max_line_bytes)

    def _output(self, handle: Handle, since_ns: int | None) -> Iterator[Output]:
        """The container's output: the attach ``start`` opened; else, for a
        container started elsewhere (a run taken over), what the engine logged
        and then an attach (:meth:`ContainerOutput.replayed_then_live`)."""
        with self._attach_lock:
            attached = self._attached.pop(handle.id, None)
        output = self._output_of(handle)
        if attached is not None:
            yield from output.live(attached)
        elif since_ns is None:
            yield from output.replayed_then_live()
        else:
            yield from output.messages(since_ns)

    def _output_of(self, handle: Handle) -> ContainerOutput:
        return ContainerOutput(self.client.api, handle.id, handle.name)

    def wait(self, handle: Handle, timeout: float | None = None) -> int | None:
        return self._output_of(handle).wait(timeout)

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
        close_quietly(attached)  # started, but its log never read: let it go
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
            close_quietly(socket)
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def _since_ns(since: datetime | None) -> int | None:
    """Where to open the engine's log for lines after ``since``: the engine filters
    whole messages, and a second's margin keeps the start of a line split into
    several; the exact cut is made on lines."""
    return None if since is None else (epoch_micros(since) - 1_000_000) * 1000
