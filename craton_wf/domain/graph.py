"""Workflow steps and the job graph built from them.

A workflow is a list of steps. Without any ``depends_on`` the steps form a
plain sequence; once a step names ``depends_on``, every step's dependencies
are exactly what it names (steps without it are roots). A step is run for
every target host, or once per job when ``once`` is set — a once-step waits
for its dependencies on every host, and a host step depending on it waits for
that single run. So the job is a DAG of runs, each run one (step, host), and
cross-host edges need no special engine.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from craton_wf.errors import InvalidInput

STEP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class StepSpec:
    name: str
    task: str | int
    args: dict[str, Any] = field(default_factory=dict)
    timeout: int | None = None
    retries: int = 0
    retry_delay: float = 5.0
    required: bool = True
    once: bool = False
    depends_on: tuple[str, ...] | None = None


def name_steps(raw_steps: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fill in missing step names from the task name, unique within the workflow."""
    seen: dict[str, int] = {}
    named: list[dict[str, Any]] = []
    for raw in raw_steps:
        step = dict(raw)
        base = str(step.get("name") or step.get("task_name") or step.get("task"))
        if step.get("name"):
            name = base
        else:
            count = seen.get(base, 0) + 1
            name = base if count == 1 else f"{base}-{count}"
        seen[base] = seen.get(base, 0) + 1
        step["name"] = name
        named.append(step)
    return named


def validate_steps(steps: Sequence[dict[str, Any]]) -> None:
    """Names unique and well formed, dependencies known, no cycle."""
    if not steps:
        raise InvalidInput("a workflow needs at least one step")
    names = [step["name"] for step in steps]
    for name in names:
        if not STEP_NAME.match(name):
            raise InvalidInput(
                f"invalid step name {name!r}: use letters, digits, '.', '_' or '-' (max 128)"
            )
    duplicates = {name for name in names if names.count(name) > 1}
    if duplicates:
        raise InvalidInput(f"duplicate step names: {', '.join(sorted(duplicates))}")
    known = set(names)
    for step in steps:
        for dep in step.get("depends_on") or []:
            if dep not in known:
                raise InvalidInput(f"step {step['name']!r} depends on unknown step {dep!r}")
            if dep == step["name"]:
                raise InvalidInput(f"step {step['name']!r} depends on itself")
    dependencies = step_dependencies(steps)
    _check_acyclic(names, dependencies)


def uses_graph(steps: Sequence[dict[str, Any]]) -> bool:
    return any(step.get("depends_on") is not None for step in steps)


def step_dependencies(steps: Sequence[dict[str, Any]]) -> dict[str, list[str]]:
    """Each step's direct dependencies by name (the sequence when no step names any)."""
    if uses_graph(steps):
        return {step["name"]: list(step.get("depends_on") or []) for step in steps}
    deps: dict[str, list[str]] = {}
    previous: str | None = None
    for step in steps:
        deps[step["name"]] = [previous] if previous else []
        previous = step["name"]
    return deps


def _check_acyclic(names: list[str], dependencies: dict[str, list[str]]) -> None:
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = " -> ".join([*trail[trail.index(name) :], name])
            raise InvalidInput(f"the steps form a cycle: {cycle}")
        state[name] = 1
        for dep in dependencies[name]:
            visit(dep, [*trail, name])
        state[name] = 2

    for name in names:
        visit(name, [])


@dataclass(frozen=True)
class PlannedRun:
    """One node of the job graph before it is stored."""

    key: tuple[str, int | None]  # (step name, host position or None for once-steps)
    step_index: int
    host_position: int | None
    depends_on: tuple[tuple[str, int | None], ...]


def plan_runs(steps: Sequence[dict[str, Any]], host_count: int) -> list[PlannedRun]:
    """The runs of a job over ``host_count`` hosts, in a stable order (host by host)."""
    deps = step_dependencies(steps)
    once = {step["name"] for step in steps if step.get("once")}

    def dep_keys(step_name: str, position: int | None) -> tuple[tuple[str, int | None], ...]:
        keys: list[tuple[str, int | None]] = []
        for dep in deps[step_name]:
            if dep in once:
                keys.append((dep, None))
            elif position is None:
                keys.extend((dep, other) for other in range(host_count))
            else:
                keys.append((dep, position))
        return tuple(keys)

    planned: list[PlannedRun] = []
    for position in range(host_count):
        for index, step in enumerate(steps):
            if step["name"] in once:
                continue
            planned.append(
                PlannedRun(
                    key=(step["name"], position),
                    step_index=index,
                    host_position=position,
                    depends_on=dep_keys(step["name"], position),
                )
            )
    for index, step in enumerate(steps):
        if step["name"] in once:
            planned.append(
                PlannedRun(
                    key=(step["name"], None),
                    step_index=index,
                    host_position=None,
                    depends_on=dep_keys(step["name"], None),
                )
            )
    return planned
