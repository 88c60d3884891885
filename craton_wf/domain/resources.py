"""The resource limits of a task container: safe defaults, and what a task may ask for.

A task may ask for more memory, CPUs or processes than the defaults (its
``resources``), up to the maxima the platform's operator set. Requests are
checked when the task is saved and again when a container is made from the
job's snapshot, so a lowered maximum also caps jobs created before.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from craton_wf.errors import InvalidInput

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    memory_bytes: int | None = 512 * MIB
    nano_cpus: int | None = 1_000_000_000
    pids: int | None = 256
    tmpfs_bytes: int | None = 64 * MIB


@dataclass(frozen=True)
class ResourcePolicy:
    """Defaults and maxima, from the settings."""

    memory_mb: int = 512
    cpus: float = 1.0
    pids: int = 256
    tmpfs_mb: int = 64
    max_memory_mb: int = 4096
    max_cpus: float = 4.0
    max_pids: int = 4096


def check_resources(requested: Mapping[str, int | float], policy: ResourcePolicy) -> dict[str, Any]:
    """The resources a task asks for, each within the platform's maximum.

    Which keys there are, their types and that they are positive is the task's
    input model's to say (``services.inputs.Resources``); the maxima come from
    the settings, so they are checked here.
    """
    maxima = {"memory_mb": policy.max_memory_mb, "cpus": policy.max_cpus, "pids": policy.max_pids}
    checked: dict[str, Any] = {}
    for key, value in requested.items():
        if value > maxima[key]:
            raise InvalidInput(
                f"resources.{key} {value} is over the {maxima[key]} the platform allows"
            )
        checked[key] = float(value) if key == "cpus" else int(value)
    return checked


PLACEMENT_RULE = re.compile(
    r"^(node\.labels\.[A-Za-z0-9_./-]+|node\.role|node\.hostname)(==|!=)([A-Za-z0-9_.-]+)$"
)
PLACEMENT_MAX_RULES = 16


def check_placement(requested: Any) -> list[str]:
    """Where a task's containers may run, as Swarm-style constraints.

    ``node.labels.<key>==<value>`` (or ``!=``), ``node.role==manager|worker``,
    ``node.hostname==<name>``. The Swarm executor passes them on as service
    constraints; the Kubernetes executor turns node labels into node affinity
    and the hostname into ``kubernetes.io/hostname``; the local Docker engine
    is one node, so there they are recorded and ignored.
    """
    if requested in (None, []):
        return []
    if not isinstance(requested, list) or not all(isinstance(r, str) for r in requested):
        raise InvalidInput("placement must be a list of constraints like node.labels.zone==a")
    if len(requested) > PLACEMENT_MAX_RULES:
        raise InvalidInput(f"placement takes at most {PLACEMENT_MAX_RULES} constraints")
    checked = []
    for rule in requested:
        compact = rule.replace(" ", "")
        if not PLACEMENT_RULE.match(compact):
            raise InvalidInput(
                f"placement constraint {rule!r} is not node.labels.KEY==VALUE, "
                "node.role==manager|worker or node.hostname==NAME (== or !=)"
            )
        checked.append(compact)
    return checked


def parse_placement(rule: str) -> tuple[str, str, str]:
    """(attribute, operator, value) of a checked constraint."""
    match = PLACEMENT_RULE.match(rule)
    if match is None:
        raise InvalidInput(f"placement constraint {rule!r} is malformed")
    return match.group(1), match.group(2), match.group(3)


def container_limits(requested: dict[str, Any] | None, policy: ResourcePolicy) -> Limits:
    """The limits of one container: the defaults, raised where the task asked, capped."""
    requested = requested or {}
    memory = min(int(requested.get("memory_mb") or policy.memory_mb), policy.max_memory_mb)
    cpus = min(float(requested.get("cpus") or policy.cpus), policy.max_cpus)
    pids = min(int(requested.get("pids") or policy.pids), policy.max_pids)
    return Limits(
        memory_bytes=memory * MIB,
        nano_cpus=int(cpus * 1_000_000_000),
        pids=pids,
        tmpfs_bytes=policy.tmpfs_mb * MIB,
    )
