"""The project networks of task containers that asked for the network.

A task that needs the network never joins the engine's default bridge, where
every container of the host (other projects' tasks, the platform's own
services) can reach it. It joins its project's network, made on first use:

- Docker: a bridge ``craton-net-<project>`` with inter-container
  communication off (``com.docker.network.bridge.enable_icc=false``), so two
  containers on it cannot reach each other either. Docker itself drops
  traffic between two user bridges (its ``DOCKER-ISOLATION`` chains), so
  one project's tasks never reach another's. ICC is a property of the whole
  bridge, not of a container: a task cannot ask for it without a second
  bridge per project, so it is always off.
- Swarm: an overlay ``craton-net-<project>``. Overlays have no ICC switch: the
  tasks of one project can reach each other on it; other projects' overlays
  are separate networks with no route between them, and the node's
  ``docker_gwbridge`` (their way out) has ICC off.

Every such network is labelled ``craton.managed=true`` and with its project,
and a network of the expected name that lacks those labels is refused rather
than joined: it is not the platform's.

Runners create these networks concurrently. The name is deterministic and
creation asks the engine to refuse a duplicate name (``CheckDuplicate``, a 409
when it sees one), but Docker 20.10 checks before it creates, so runners
starting at once still make several networks of one name (seen with six).
So after creating, a runner lists the networks of that name until two
listings a moment apart agree (a duplicate whose creation began earlier can
become visible after this runner's own), takes the oldest (then lowest id;
creation times compared as times, not as strings, since the engine drops
trailing zeros of the nanoseconds), which every runner that lists later also
takes, and removes its own if that is not the one; the engine refuses to remove a
network a container uses, so a duplicate someone attached to meanwhile stays
(its containers are as isolated as on the chosen one). Containers join a
network by id, never by the ambiguous name, and a runner whose network was
removed between its choice and its container's creation chooses again
(:meth:`craton_wf.executors.docker.DockerExecutor.create`).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import docker.errors

from craton_wf.domain.labels import PROJECT_LABEL
from craton_wf.domain.task_network import task_api_url, url_port
from craton_wf.errors import ExecutorError
from craton_wf.executors.engine_time import engine_time_key
from craton_wf.executors.firewall import TaskFirewall
from craton_wf.executors.forwarder import ApiForwarder, forward_target

if TYPE_CHECKING:
    from craton_wf.settings import Settings

log = logging.getLogger(__name__)

MANAGED_LABEL = "craton.managed"
NETWORK_PREFIX = "craton-net-"
ICC_OPTION = "com.docker.network.bridge.enable_icc"
BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"
_NOT_IN_NAME = re.compile(r"[^a-zA-Z0-9_.-]")


def project_network_name(project: str, prefix: str = NETWORK_PREFIX) -> str:
    """The network of a project's tasks: deterministic, valid for Docker."""
    return prefix + (_NOT_IN_NAME.sub("-", project)[:40] or "default")


@dataclass(frozen=True)
class ProjectNetwork:
    """A project's network as the engine made it."""

    name: str
    id: str
    project: str
    bridge: str | None = None  # the Linux bridge (bridge driver only)
    subnet: str | None = None
    gateway: str | None = None


def network_of(inspected: dict[str, Any]) -> ProjectNetwork:
    """A :class:`ProjectNetwork` from ``GET /networks/{id}``."""
    config = ((inspected.get("IPAM") or {}).get("Config") or [{}])[0] or {}
    options = inspected.get("Options") or {}
    bridge = None
    if inspected.get("Driver") == "bridge":
        bridge = options.get(BRIDGE_NAME_OPTION) or "br-" + inspected["Id"][:12]
    return ProjectNetwork(
        name=inspected["Name"],
        id=inspected["Id"],
        project=(inspected.get("Labels") or {}).get(PROJECT_LABEL, ""),
        bridge=bridge,
        subnet=config.get("Subnet"),
        gateway=config.get("Gateway"),
    )


def _named(api: Any, name: str) -> list[dict[str, Any]]:
    """The networks called exactly ``name`` (the engine's filter matches parts of names)."""
    return [found for found in api.networks(names=[name]) if found.get("Name") == name]


SETTLE_INTERVAL = 0.25  # seconds between listings while duplicates may still appear
SETTLE_LIMIT = 5.0


def _oldest(found: list[dict[str, Any]]) -> dict[str, Any]:
    return min(found, key=lambda network: (engine_time_key(network.get("Created")), network["Id"]))


def _settled(api: Any, name: str, seen: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The networks of that name once two listings ``SETTLE_INTERVAL`` apart agree."""
    deadline = time.monotonic() + SETTLE_LIMIT
    while time.monotonic() < deadline:
        time.sleep(SETTLE_INTERVAL)
        again = _named(api, name)
        if {network["Id"] for network in again} == {network["Id"] for network in seen}:
            return again
        seen = again
    return seen


def _remove_quietly(api: Any, network_id: str) -> None:
    """Remove a duplicate this runner made; in use or gone already, it is left alone."""
    try:
        api.remove_network(network_id)
    except docker.errors.APIError as exc:
        log.info("left the duplicate network %s: %s", network_id[:12], exc)


def ensure_project_network(
    api: Any,
    project: str,
    *,
    driver: str,
    internal: bool = False,
    prefix: str = NETWORK_PREFIX,
) -> ProjectNetwork:
    """The project's network, created if missing; safe against other runners doing the same.

    ``api`` is the SDK's low-level client; SDK errors propagate (the caller
    wraps them). Raises ``ExecutorError`` if a network of that name is not the
    platform's network of this project.
    """
    name = project_network_name(project, prefix)
    found = _named(api, name)
    created = None
    if not found:
        options = {ICC_OPTION: "false"} if driver == "bridge" else None
        try:
            created = api.create_network(
                name,
                driver=driver,
                internal=internal,
                options=options,
                labels={MANAGED_LABEL: "true", PROJECT_LABEL: project},
                check_duplicate=True,
            )["Id"]
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # 409: another runner created it meanwhile
                raise
        found = _settled(api, name, _named(api, name))
        if not found:
            raise ExecutorError(f"the network {name} was created but is not listed")
    chosen = api.inspect_network(_oldest(found)["Id"])
    if created is not None and created != chosen["Id"]:
        _remove_quietly(api, created)
    labels = chosen.get("Labels") or {}
    if labels.get(MANAGED_LABEL) != "true" or labels.get(PROJECT_LABEL) != project:
        raise ExecutorError(
            f"a network named {name} exists but is not the platform's network of project "
            f"{project} (labels {labels}); remove or rename it"
        )
    # A swarm overlay shows no driver until the swarm has allocated it, just after creation.
    known_driver = chosen.get("Driver") or driver
    if known_driver != driver or bool(chosen.get("Internal")) != internal:
        raise ExecutorError(
            f"the network {name} is a {chosen.get('Driver')} network"
            f"{' (internal)' if chosen.get('Internal') else ''}, not the {driver} network "
            "the platform makes; remove it to have it made again"
        )
    if driver == "bridge" and (chosen.get("Options") or {}).get(ICC_OPTION) != "false":
        raise ExecutorError(
            f"the network {name} lets its containers reach each other ({ICC_OPTION} is not "
            "false); remove it to have it made again"
        )
    return network_of(chosen)


@dataclass(frozen=True)
class TaskNetworkOptions:
    """How the Docker executor wires a networked task to the API, from the settings.

    ``api_port`` is the port of the task's ``CRATON_URL``: the one port of the
    host the firewall lets a task reach, and where the forwarder listens.
    ``forward_to`` is the API's own address for the forwarder; None when no
    forwarder is needed (the operator set a public URL, or the API listens on
    every address).
    """

    api_port: int = 7780
    forward_to: str | None = "127.0.0.1"
    firewall: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> TaskNetworkOptions:
        url = task_api_url(settings.public_url, settings.api_port)
        return cls(
            api_port=url_port(url),
            forward_to=None if settings.public_url else forward_target(settings.api_host),
            firewall=settings.task_network_firewall,
        )


class ProjectNetworks:
    """The Docker executor's project bridges, with the forwarder and firewall of each."""

    def __init__(self, options: TaskNetworkOptions) -> None:
        self.options = options
        self.firewall = TaskFirewall(options.api_port) if options.firewall else None
        self.forwarder = (
            ApiForwarder(options.forward_to, options.api_port)
            if options.forward_to is not None
            else None
        )
        self._unforwarded: set[str] = set()

    def attach(self, api: Any, project: str) -> ProjectNetwork:
        """The bridge a task of ``project`` joins, ready: forwarded to, firewalled."""
        network = ensure_project_network(api, project, driver="bridge")
        if self.firewall is not None and network.bridge:
            self.firewall.install(network.bridge)
        if self.forwarder is not None and network.gateway:
            try:
                self.forwarder.listen_on(network.gateway)
            except OSError as exc:  # e.g. the engine is on another host
                if network.gateway not in self._unforwarded:
                    self._unforwarded.add(network.gateway)
                    log.warning(
                        "cannot relay the API to tasks on %s (%s:%s: %s); set "
                        "CRATON_WF_PUBLIC_URL to a URL tasks can reach",
                        network.name,
                        network.gateway,
                        self.forwarder.port,
                        exc,
                    )
        return network

    def occupied_bridges(self, api: Any) -> list[str]:
        """The Linux bridges of the project networks that have containers now."""
        found = api.networks(filters={"label": f"{MANAGED_LABEL}=true", "driver": "bridge"})
        bridges = []
        for summary in found:
            if not summary.get("Name", "").startswith(NETWORK_PREFIX):
                continue
            try:
                inspected = api.inspect_network(summary["Id"])
            except docker.errors.NotFound:
                continue  # removed meanwhile
            network = network_of(inspected)
            if inspected.get("Containers") and network.bridge:
                bridges.append(network.bridge)
        return bridges

    def firewall_status(self, api: Any) -> str:
        """``ok``, ``disabled``, or what of the firewall is not in place.

        Judged on the bridges with containers: the runner installs a bridge's
        rules before it attaches a container, so an empty bridge (one left from
        before a reboot, say) has nothing to protect until then.
        """
        if self.firewall is None:
            return "disabled"
        bridges = self.occupied_bridges(api)
        if not bridges:
            return "ok"
        try:
            missing = self.firewall.missing(bridges)
        except ExecutorError as exc:
            return f"error: {exc.message}"
        return "ok" if not missing else "error: " + "; ".join(missing)

    def close(self) -> None:
        if self.forwarder is not None:
            self.forwarder.close()
