"""Docker Swarm as an executor: one replicated-job service per run attempt.

Each attempt becomes a service in ``replicated-job`` mode (one task, one
completion) with restart condition ``none``: the platform owns retries. The
service is named like the container the local executor would create (run,
attempt, run uid), so a runner that takes a run over finds it by name and
checks its ``craton.run-uid`` label before adopting it.

Hardening is the local executor's, as far as a service spec carries it on the
engines this targets (API 1.41, Docker 20.10): user nobody, all capabilities
dropped (the bounding set too, so a setuid binary gains nothing), read-only
root with a ``/tmp`` tmpfs, pids/memory/CPU limits, no mounts of the host and
never the engine's socket. A service spec carries ``no-new-privileges`` only
from API 1.44 (Docker 25) on, so it is set there and missing on older engines;
and swarm has no ``none`` network: a task that does not ask for the
network is attached only to an ``--internal`` overlay network of its project
(``craton-isolated-<project>``), which has no route off the cluster and which
other projects' tasks never join. A task that asks for the network joins its
project's overlay ``craton-net-<project>`` instead (never the ingress or
another project's network): other projects' tasks cannot reach it; the tasks
of its own project can, since an overlay has no switch to turn inter-container
traffic off (:mod:`craton_wf.executors.tasknet`). Swarm tasks reach the API
only at ``CRATON_WF_PUBLIC_URL`` (the node a task runs on is not the API's
host), and this executor installs no firewall.

A service starts as soon as it exists, so ``create`` starts it and ``start``
has nothing left to do. Service tasks log to json-file with the platform's
rotation (``CRATON_WF_CONTAINER_LOG_MAX_SIZE``/``_FILES``, as the docker
executor's containers).

Logs, when the task runs on this executor's engine (always on a single-node
swarm): its container's output, read as the docker executor reads its own
(:mod:`craton_wf.executors.container_output`), so that while a runner reads
it the stored log is exactly what the container printed, whatever the
rotation. ``create`` watches the engine's events from before the service
exists and attaches to the container as the engine makes it; if swarm
started it before the attach was in place, it is paused and what it logged
until then is read first (:mod:`craton_wf.executors.swarm_task_output`,
which says how that is told, and when a gap line stands at the start). A run
taken over from a runner that died is read like the docker executor's: the
container paused, its log replayed, attached, unpaused.

Logs, when the task runs on another node: the service's log (the engine
gathers it from that node's json-file log), as nothing else can be read
from here. Its follow stream does not end when the task does, so the log is
read again every half second from the last message seen until the task has
ended, then once more. What was rotated away between two reads is lost, and
a ``[craton] log gap`` line stands where
(:func:`~craton_wf.executors.container_output.frames_after`); lines rotated
away before the first read are lost without one (the engine does not say
that its log was cut). The exit code is the task's container status.
``managed`` lists the services labelled with a run uid; removing one takes
its task's container along (see below).

Stopping and removing: Docker before 24 leaves the task's container behind
when a replicated-job service is removed, running or not (moby/moby#44312).
So when the task ran on the engine this executor talks to, its container is
stopped directly (SIGTERM, then SIGKILL after the grace period) and removed
with the service. A task that ran on another node of such an old swarm keeps
its container until that node's engine is cleaned up; on Docker 24 and later,
removing the service stops and removes it (SIGTERM, then SIGKILL after the
stop grace period set at creation).
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import docker
import docker.errors
import requests
from docker.types import ContainerSpec as ServiceContainerSpec
from docker.types import DriverConfig, Mount, RestartPolicy, TaskTemplate
from docker.utils import version_gte

from craton_wf.domain.labels import PROJECT_LABEL
from craton_wf.errors import ContainerNotFound, ExecutorError, NameTaken
from craton_wf.executors.base import RUN_UID_LABEL, ContainerSpec, ContainerState, Handle, LogLine
from craton_wf.executors.container_output import (
    ContainerOutput,
    Frame,
    LogRereads,
    Output,
    raise_for_log_status,
    since_param,
)
from craton_wf.executors.docker import MANAGED_LABEL, USER, DockerExecutor, container_name
from craton_wf.executors.engine_errors import docker_errors
from craton_wf.executors.engine_time import engine_time_key
from craton_wf.executors.swarm_task_output import (
    ENDED_TASK_STATES,
    JsonFileRotation,
    TaskContainerWatch,
)
from craton_wf.executors.tasknet import (
    NETWORK_PREFIX,
    ensure_project_network,
    project_network_name,
)

if TYPE_CHECKING:
    from craton_wf.settings import Settings

LOG_POLL_SECONDS = 0.5
TMPFS_BYTES = 64 * 1024 * 1024
NO_EXIT_CODE = 125  # the task ended without running its command (e.g. its image was missing)
STOPPED_EXIT_CODE = 143  # the service was removed by stop(): its container got SIGTERM
ISOLATED_PREFIX = "craton-isolated-"


def isolated_network_name(project: str) -> str:
    return project_network_name(project, ISOLATED_PREFIX)


NO_NEW_PRIVILEGES_API = "1.44"  # the first API whose service spec carries it


def service_spec(
    spec: ContainerSpec,
    network: str | None,
    stop_grace_seconds: float,
    no_new_privileges: bool = False,
    log_max_size: str = "64m",
    log_max_files: int = 2,
) -> Any:
    """The task template of one run attempt: hardened, limited, restart condition none.

    ``no_new_privileges`` where the engine's API carries it (1.44 and later).
    The task's container logs to json-file with the platform's rotation, as
    the docker executor's containers do, whatever the node's default driver.
    """
    limits: dict[str, int] = {}
    if spec.limits.nano_cpus is not None:
        limits["NanoCPUs"] = spec.limits.nano_cpus
    if spec.limits.memory_bytes is not None:
        limits["MemoryBytes"] = spec.limits.memory_bytes
    if spec.limits.pids is not None:
        limits["Pids"] = spec.limits.pids
    container = ServiceContainerSpec(
        spec.image,
        command=list(spec.command),
        env=dict(spec.env),
        user=USER,
        labels={**spec.labels, MANAGED_LABEL: "true"},
        read_only=True,
        cap_drop=["ALL"],
        mounts=[
            Mount(
                target="/tmp",
                source=None,
                type="tmpfs",
                tmpfs_size=spec.limits.tmpfs_bytes or TMPFS_BYTES,
                tmpfs_mode=0o1777,
            )
        ],
        stop_grace_period=int(max(stop_grace_seconds, 0) * 1_000_000_000),
        tty=False,
        open_stdin=False,
        init=True,  # as the docker executor: SIGTERM reaches the task, not a deaf PID 1
    )
    if no_new_privileges:
        container["Privileges"] = {"NoNewPrivileges": True}
    return TaskTemplate(
        container,
        restart_policy=RestartPolicy(condition="none"),
        resources={"Limits": limits} if limits else None,
        placement={"Constraints": list(spec.placement)} if spec.placement else None,
        networks=[{"Target": network}] if network else None,
        log_driver=DriverConfig(
            "json-file", {"max-size": log_max_size, "max-file": str(log_max_files)}
        ),
    )


class SwarmExecutor(DockerExecutor):
    """Runs each attempt of a run as a replicated-job service of a swarm (via a manager)."""

    name = "swarm"

    def __init__(
        self,
        base_url: str | None = None,
        *,
        client: docker.DockerClient | None = None,
        stop_grace_seconds: float = 10.0,
        registry: str | None = None,
        registry_auth: dict[str, str] | None = None,
        log_max_size: str = "64m",
        log_max_files: int = 2,
    ) -> None:
        super().__init__(
            base_url, client=client, log_max_size=log_max_size, log_max_files=log_max_files
        )
        self.stop_grace_seconds = stop_grace_seconds
        self.registry = registry
        self.registry_auth = registry_auth
        self._stopped: set[str] = set()
        self._networks: set[str] = set()
        self._lock = threading.Lock()
        self._logged_in = False
        self._node_id: str | None = None
        # Watches for the containers of the services ``create`` made, by service id.
        self._watches: dict[str, TaskContainerWatch] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> SwarmExecutor:
        auth = None
        if settings.registry_username:
            password = (
                settings.registry_password.get_secret_value() if settings.registry_password else ""
            )
            auth = {"username": settings.registry_username, "password": password}
        return cls(
            settings.docker_base_url,
            stop_grace_seconds=settings.stop_grace_seconds,
            registry=settings.registry,
            registry_auth=auth,
            log_max_size=settings.container_log_max_size,
            log_max_files=settings.container_log_max_files,
        )

    # --- the swarm --------------------------------------------------------------------

    def ping(self) -> None:
        with docker_errors("reach the Docker engine"):
            info = self.client.info()
        swarm = info.get("Swarm") or {}
        if swarm.get("LocalNodeState") != "active":
            raise ExecutorError(
                "the Docker engine is not part of a swarm "
                f"(swarm state {swarm.get('LocalNodeState') or 'unknown'}); "
                "run `docker swarm init` or point docker_base_url at a manager"
            )
        if not swarm.get("ControlAvailable"):
            raise ExecutorError(
                "the Docker engine is a swarm worker, not a manager: services can only be "
                "created through a manager; point docker_base_url at one"
            )

    def _login(self) -> None:
        """Registry credentials for pulls, from the settings (never from a task)."""
        if self._logged_in or not (self.registry and self.registry_auth):
            return
        host = self.registry.split("/", 1)[0]
        with docker_errors(f"log in to the registry {host}"):
            self.client.api.login(registry=host, reauth=True, **self.registry_auth)
        self._logged_in = True

    def _project_network(self, project: str, needs_network: bool) -> str:
        """The project's overlay: ``craton-net-`` with the network, else the internal one."""
        prefix = NETWORK_PREFIX if needs_network else ISOLATED_PREFIX
        name = project_network_name(project, prefix)
        with self._lock:
            if name in self._networks:
                return name
            with docker_errors(f"prepare the network {name}"):
                ensure_project_network(
                    self.client.api,
                    project,
                    driver="overlay",
                    internal=not needs_network,
                    prefix=prefix,
                )
            self._networks.add(name)
            return name

    def firewall_status(self) -> str:
        return f"error: the {self.name} executor does not install the task network firewall"

    # --- one run attempt --------------------------------------------------------------

    def create(self, spec: ContainerSpec) -> Handle:
        name = container_name(spec.name)
        labels = {**spec.labels, MANAGED_LABEL: "true"}
        self._login()
        network = self._project_network(spec.labels.get(PROJECT_LABEL, ""), spec.network)
        template = service_spec(
            spec,
            network,
            self.stop_grace_seconds,
            no_new_privileges=version_gte(self.client.api.api_version, NO_NEW_PRIVILEGES_API),
            log_max_size=self.log_max_size,
            log_max_files=self.log_max_files,
        )
        # Subscribed before the service exists: its task's container is attached
        # the moment the engine makes it, if it makes it (swarm_task_output).
        watch = TaskContainerWatch(
            self.client.api,
            name,
            JsonFileRotation(self.log_max_size, self.log_max_files),
            self._task,
            self._this_node,
        )
        try:
            with docker_errors(f"create service {name}"):
                try:
                    created = self.client.api.create_service(
                        template,
                        name=name,
                        labels=labels,
                        mode={"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}},
                    )
                except docker.errors.APIError as exc:
                    if exc.status_code == 409:
                        raise NameTaken(f"service name {name} is already taken") from exc
                    raise
        except BaseException:
            watch.cancel()
            raise
        with self._lock:
            self._watches[created["ID"]] = watch
        watch.begin(created["ID"])
        return Handle(id=created["ID"], name=name, state=ContainerState.RUNNING, labels=labels)

    def find(self, name: str) -> Handle | None:
        name = container_name(name)
        with docker_errors(f"look for service {name}"):
            services = self.client.api.services(filters={"name": name})
        for service in services:
            if (service.get("Spec") or {}).get("Name") == name:
                return self._handle_of(service)
        return None

    def managed(self) -> list[Handle]:
        """The services of runs; one removed between the list and its task's read is skipped."""
        with docker_errors("list the services of runs"):
            services = self.client.api.services(filters={"label": RUN_UID_LABEL})
        handles: list[Handle] = []
        for service in services:
            try:
                handles.append(self._handle_of(service))
            except ContainerNotFound:
                continue
        return handles

    def _handle_of(self, service: dict[str, Any]) -> Handle:
        """A handle of a listed service, its state read from its task."""
        spec = service.get("Spec") or {}
        task = self._task(service["ID"])
        state = (
            ContainerState.EXITED
            if task is not None and task["Status"]["State"] in ENDED_TASK_STATES
            else ContainerState.RUNNING
        )
        return Handle(
            id=service["ID"],
            name=spec.get("Name", ""),
            state=state,
            labels=dict(spec.get("Labels") or {}),
        )

    def start(self, handle: Handle) -> None:
        """Nothing to do: a service's task is scheduled as soon as the service exists."""

    def _task(self, service_id: str) -> dict[str, Any] | None:
        """The service's task (the newest, should there ever be more than one)."""
        with docker_errors("list the tasks of a service"):
            tasks = self.client.api.tasks(filters={"service": service_id})
        if not tasks:
            return None
        return max(tasks, key=lambda task: engine_time_key(task.get("CreatedAt")))

    def _service_exists(self, handle: Handle) -> bool:
        try:
            with docker_errors(f"inspect service {handle.name}"):
                self.client.api.inspect_service(handle.id)
        except ContainerNotFound:
            return False
        return True

    def _exit_code_if_exited(self, handle: Handle) -> int | None:
        if not self._service_exists(handle):
            if handle.id in self._stopped:
                return STOPPED_EXIT_CODE
            raise ContainerNotFound(f"service {handle.name} is gone")
        task = self._task(handle.id)
        if task is None or task["Status"]["State"] not in ENDED_TASK_STATES:
            return None
        status = task["Status"]
        code = (status.get("ContainerStatus") or {}).get("ExitCode")
        if code is None:
            return STOPPED_EXIT_CODE if handle.id in self._stopped else NO_EXIT_CODE
        return int(code)

    def wait(self, handle: Handle, timeout: float | None = None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            code = self._exit_code_if_exited(handle)
            if code is not None:
                return code
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(0.25 if deadline is None else min(0.25, max(deadline - time.monotonic(), 0)))

    def task_error(self, handle: Handle) -> str | None:
        """Why the task ended without running, as swarm tells it (e.g. no such image)."""
        task = self._task(handle.id)
        return None if task is None else task["Status"].get("Err")

    # --- logs -------------------------------------------------------------------------

    def _output(self, handle: Handle, since_ns: int | None) -> Iterator[Output]:
        """The output of the service's task: its container's, if it runs on this
        engine, else the service's log. A service that ``stop`` removed ends it."""
        try:
            yield from self._task_output(handle, since_ns)
        except ContainerNotFound:
            if handle.id not in self._stopped:
                raise

    def _task_output(self, handle: Handle, since_ns: int | None) -> Iterator[Output]:
        with self._lock:  # left in place until it ends, so that ``remove`` can end it
            watch = self._watches.get(handle.id)
        if watch is not None:  # made by this executor: its watch found the container, or not
            found = watch.result()
            with self._lock:
                self._watches.pop(handle.id, None)
            if found is not None:
                try:
                    yield from found.items()
                finally:
                    found.close()
                return
        else:  # made elsewhere (a run taken over): the container, paused and replayed
            container = self._local_container(handle)
            if container is not None:
                output = ContainerOutput(self.client.api, container, handle.name)
                if since_ns is None:
                    yield from output.replayed_then_live()
                else:
                    yield from output.messages(since_ns)
                return
        yield from self._service_messages(handle, since_ns)

    def _service_messages(self, handle: Handle, since_ns: int | None) -> Iterator[Frame | LogLine]:
        """Each log message of the service once, until its task ended; a gap line
        where messages were rotated away between two reads (:func:`frames_after`)."""
        reads = LogRereads(since_ns)
        while True:
            try:
                ended = self._exit_code_if_exited(handle) is not None
            except ContainerNotFound:
                return
            try:
                with self._service_log_stream(handle, reads.opened_from()) as response:
                    yield from reads.frames(response.raw)
            except ContainerNotFound:
                if handle.id in self._stopped:
                    return
                raise
            if ended:
                return
            time.sleep(LOG_POLL_SECONDS)

    @contextmanager
    def _service_log_stream(
        self, handle: Handle, since_ns: int | None
    ) -> Iterator[requests.Response]:
        api = self.client.api
        params: dict[str, Any] = {"stdout": 1, "stderr": 1, "timestamps": 1}
        if since_ns is not None:
            params["since"] = since_param(since_ns)
        url = f"{api.base_url}/v{api.api_version}/services/{quote(handle.id, safe='')}/logs"
        with docker_errors(f"read the logs of service {handle.name}"):
            response = api.get(url, params=params, stream=True, timeout=60)
            try:
                raise_for_log_status(response, f"service {handle.name}")
                yield response
            finally:
                response.close()

    # --- ending -----------------------------------------------------------------------

    def _local_container(self, handle: Handle, patience: float = 10.0) -> str | None:
        """The id of the service task's container, if it ran on this executor's engine.

        A task still being prepared has no container yet, but will have one even
        if the service is removed meanwhile: wait for it (up to ``patience``).
        """
        deadline = time.monotonic() + patience
        while True:
            try:
                task = self._task(handle.id)
            except ContainerNotFound:
                return None
            if task is None and time.monotonic() < deadline:
                time.sleep(0.2)
                continue
            if task is None:
                return None
            status = task.get("Status", {})
            has_container = (status.get("ContainerStatus") or {}).get("ContainerID")
            if has_container or status.get("State") in ENDED_TASK_STATES:
                break
            if time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        container = (task.get("Status", {}).get("ContainerStatus") or {}).get("ContainerID")
        return container if container and task.get("NodeID") == self._this_node() else None

    def _this_node(self) -> str:
        """The swarm node id of this executor's engine."""
        if self._node_id is None:
            with docker_errors("ask the engine for its swarm node"):
                self._node_id = self.client.info()["Swarm"].get("NodeID") or ""
        return self._node_id

    def stop(self, handle: Handle, grace_seconds: float = 10.0) -> None:
        """SIGTERM, SIGKILL after the grace period, and the service removed."""
        self._stopped.add(handle.id)
        container = self._local_container(handle)
        if container is not None:
            action = f"stop the container of service {handle.name}"
            with contextlib.suppress(ContainerNotFound), docker_errors(action):
                self.client.api.stop(container, timeout=math.ceil(max(grace_seconds, 0)))
        self.remove(handle)

    def remove(self, handle: Handle) -> None:
        with self._lock:
            watch = self._watches.pop(handle.id, None)
        if watch is not None:  # its log was never read: let the container go
            watch.cancel()
        container = self._local_container(handle)
        try:
            with docker_errors(f"remove service {handle.name}"):
                self.client.api.remove_service(handle.id)
        except ContainerNotFound:
            pass
        if container is not None:
            action = f"remove the container of service {handle.name}"
            with contextlib.suppress(ContainerNotFound), docker_errors(action):
                self.client.api.remove_container(container, force=True, v=True)

    def close(self) -> None:
        with self._lock:
            watches, self._watches = list(self._watches.values()), {}
        for watch in watches:
            watch.cancel()
        super().close()
