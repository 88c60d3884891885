"""Stored names a task's environment may no longer carry, found and reported.

Names that steer how a container's programs start (``BASH_ENV``,
``LD_PRELOAD``…, :mod:`craton_wf.domain.environment`) are refused when they
come in. Rows stored before that rule may hold them: a secret, a task's
declared secrets, a workflow version's step, a job not yet finished. They
are reported, never deleted: an operator decides what replaces them, and
meanwhile they are inert (a job naming one is refused when it is created,
and a runner refuses to start a container with one).

The migration that introduced the rule (0005) runs :func:`refused_rows` and
logs what it found; ``craton-wf check-environment`` reports it on demand.
The queries name only the few columns they read (lightweight tables, not
the ORM models), so the migration keeps working as the models change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from craton_wf.domain.environment import refused_names
from craton_wf.domain.states import FINAL_JOB_STATES, JobStatus

_secrets = sa.table("secrets", sa.column("id"), sa.column("project_id"), sa.column("name"))
_tasks = sa.table(
    "tasks",
    sa.column("id"),
    sa.column("project_id"),
    sa.column("name"),
    sa.column("secrets", sa.JSON),
)
_workflows = sa.table("workflows", sa.column("id"), sa.column("project_id"), sa.column("name"))
_versions = sa.table(
    "workflow_versions",
    sa.column("workflow_id"),
    sa.column("version"),
    sa.column("steps", sa.JSON),
)
_jobs = sa.table(
    "jobs",
    sa.column("id"),
    sa.column("project_id"),
    sa.column("status"),
    sa.column("steps", sa.JSON),
)
_UNFINISHED_JOBS = sorted(s.value for s in JobStatus if s not in FINAL_JOB_STATES)


@dataclass(frozen=True)
class RefusedRow:
    """One stored object that names a refused environment name."""

    project_id: str
    kind: str  # secret | task | workflow | job
    ref: str  # its name, or "name v3 step x", or the job id
    name: str  # the refused environment name
    reason: str

    def describe(self) -> str:
        return (
            f"project {self.project_id}: {self.kind} {self.ref} names {self.name!r}, "
            f"which it {self.reason}"
        )


def _step_secrets(steps: Any) -> list[tuple[str, list[str]]]:
    if not isinstance(steps, list):
        return []
    found = []
    for step in steps:
        if isinstance(step, dict) and isinstance(step.get("secrets"), list):
            found.append((str(step.get("name", "?")), step["secrets"]))
    return found


def refused_rows(connection: Connection) -> list[RefusedRow]:
    """Every stored secret, task, workflow version and unfinished job naming a refused name."""
    rows: list[RefusedRow] = []
    for secret in connection.execute(sa.select(_secrets.c.project_id, _secrets.c.name)):
        for name, reason in refused_names([secret.name]).items():
            rows.append(RefusedRow(secret.project_id, "secret", name, name, reason))
    for task in connection.execute(sa.select(_tasks.c.project_id, _tasks.c.name, _tasks.c.secrets)):
        declared = task.secrets if isinstance(task.secrets, list) else []
        for name, reason in refused_names(declared).items():
            rows.append(RefusedRow(task.project_id, "task", task.name, name, reason))
    versions = sa.select(
        _workflows.c.project_id, _workflows.c.name, _versions.c.version, _versions.c.steps
    ).join_from(_versions, _workflows, _versions.c.workflow_id == _workflows.c.id)
    for version in connection.execute(versions):
        for step, secrets in _step_secrets(version.steps):
            for name, reason in refused_names(secrets).items():
                ref = f"{version.name} v{version.version} step {step}"
                rows.append(RefusedRow(version.project_id, "workflow", ref, name, reason))
    jobs = sa.select(_jobs.c.id, _jobs.c.project_id, _jobs.c.steps).where(
        _jobs.c.status.in_(_UNFINISHED_JOBS)
    )
    for job in connection.execute(jobs):
        for step, secrets in _step_secrets(job.steps):
            for name, reason in refused_names(secrets).items():
                ref = f"{job.id} step {step}"
                rows.append(RefusedRow(job.project_id, "job", ref, name, reason))
    return rows
