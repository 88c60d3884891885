"""The audit trail: every state-changing call, who made it, on what, and how it ended.

Recorded once per request by the API (api.audit), after the answer is known,
in its own transaction, so a refused or failed call is recorded too. Rows are
only ever added. The action names the object type and what was done to it:
``host.create``, ``job.cancel``, ``task.approve``…

A call made with a task's ``CRATON_TOKEN`` (a run setting its host's
variables) is the run's doing, on behalf of the job's creator, not the
creator's own: its user is shown as ``alice (job 12 run 40, task audit-disk,
host web-3)``, the user id stays the creator's, and the detail holds the
run's ids as JSON. Filtering by ``user=alice`` finds both kinds.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from craton_wf.db.models import AuditEvent, JobHost, Run, Task
from craton_wf.errors import InvalidInput
from craton_wf.services.auth import Principal

_VERBS = {"POST": "create", "PUT": "update", "PATCH": "update", "DELETE": "delete"}
_SINGULAR = {
    "ansible-inventory": "inventory",
    "audit-events": "audit_event",
    "builds": "build",
    "cells": "cell",
    "clouds": "cloud",
    "hosts": "host",
    "jobs": "job",
    "labels": "labels",
    "projects": "project",
    "regions": "region",
    "runners": "runner",
    "secrets": "secret",
    "tasks": "task",
    "tokens": "token",
    "triggers": "trigger",
    "users": "user",
    "variables": "variables",
    "workflow": "workflow",
    "workflows": "workflow",
}
_ID = re.compile(r"^[0-9a-fA-F-]{1,64}$|^[\w.-]{1,64}$")


_CONSOLE_ACTIONS = {"/ui/sign-in": "console.sign_in", "/ui/sign-out": "console.sign_out"}


@dataclass(frozen=True)
class Described:
    action: str
    object_type: str | None
    object_id: str | None


def describe(method: str, path: str, location: str | None = None) -> Described:
    """``POST /v1/jobs/7/cancel`` → ``job.cancel`` on job 7; a new object's id from Location."""
    if path in _CONSOLE_ACTIONS:
        return Described(_CONSOLE_ACTIONS[path], "console", None)
    # A console form acts as the API call of the same path: /ui/jobs/7/cancel is job.cancel.
    parts = [p for p in path.split("/") if p][1:] if path.startswith(("/v1/", "/ui/")) else []
    if not parts:
        return Described(f"{method.lower()} {path}", None, None)
    object_type = _SINGULAR.get(parts[0], parts[0])
    object_id = parts[1] if len(parts) > 1 and _ID.match(parts[1]) else None
    verb = _VERBS.get(method, method.lower())
    if object_type == "trigger" and method == "POST":
        verb = "launch"  # a call to a template's trigger URL launches it
    if len(parts) > 2:
        sub = _SINGULAR.get(parts[2], parts[2])
        # /jobs/7/cancel → job.cancel; /hosts/3/variables → host.variables.update
        verb = sub if method == "POST" and sub not in ("build",) else f"{sub}.{verb}"
        if parts[2] == "builds" and method == "POST":
            verb = "build"
    if object_id is None and location:
        object_id = location.rstrip("/").rsplit("/", 1)[-1]
    return Described(f"{object_type}.{verb}", object_type, object_id)


def record(
    session: Session,
    *,
    principal: Principal | None,
    claimed_user: str | None,
    method: str,
    path: str,
    status: int,
    client: str | None,
    location: str | None = None,
    detail: str | None = None,
) -> AuditEvent:
    described = describe(method, path, location)
    user_name = principal.user_name if principal else claimed_user
    if principal is not None and principal.job_id is not None:
        user_name, detail = _acting_run(session, principal, detail)
    event = AuditEvent(
        user_id=principal.user_id if principal else None,
        user_name=user_name[:255] if user_name else None,
        project_id=principal.project_id if principal else None,
        action=described.action,
        object_type=described.object_type,
        object_id=described.object_id,
        method=method,
        path=path[:1024],
        status=status,
        outcome="success" if status < 400 else "failure",
        client=(client or "")[:64] or None,
        detail=detail,
    )
    session.add(event)
    session.flush()
    return event


def _acting_run(session: Session, principal: Principal, detail: str | None) -> tuple[str, str]:
    """The user shown for a task token's call, and the detail naming its run."""
    run = session.get(Run, principal.run_id) if principal.run_id is not None else None
    task = session.get(Task, run.task_id) if run is not None and run.task_id else None
    host = session.get(JobHost, run.job_host_id) if run is not None and run.job_host_id else None
    facts: dict[str, Any] = {
        "on_behalf_of": principal.user_name,
        "job_id": principal.job_id,
        "run_id": principal.run_id,
        "task": task.name if task is not None else (run.step_name if run is not None else None),
        "host": host.host_name if host is not None else None,
    }
    if detail:
        facts["detail"] = detail
    acting = f"job {principal.job_id} run {principal.run_id}"
    acting += "".join(f", {key} {facts[key]}" for key in ("task", "host") if facts[key])
    return f"{principal.user_name} ({acting})", json.dumps(facts)


def list_events(
    session: Session,
    me: Principal,
    *,
    limit: int,
    marker: int | None = None,
    user: str | None = None,
    action: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[list[AuditEvent], bool]:
    """Newest first. Root sees every project's events; an admin their project's."""
    if outcome is not None and outcome not in ("success", "failure"):
        raise InvalidInput("outcome must be success or failure")
    stmt = select(AuditEvent)
    if not me.is_root:
        stmt = stmt.where(AuditEvent.project_id == me.project_id)
    if user is not None:  # the user's own calls and their jobs' runs' calls
        stmt = stmt.where(
            (AuditEvent.user_name == user)
            | AuditEvent.user_name.startswith(f"{user} (job ", autoescape=True)
        )
    filters: dict[str, Any] = {
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "outcome": outcome,
    }
    for column, value in filters.items():
        if value is not None:
            stmt = stmt.where(getattr(AuditEvent, column) == value)
    if since is not None:
        stmt = stmt.where(AuditEvent.ts >= since)
    if until is not None:
        stmt = stmt.where(AuditEvent.ts < until)
    if marker is not None:
        stmt = stmt.where(AuditEvent.id < marker)
    rows = list(session.execute(stmt.order_by(AuditEvent.id.desc()).limit(limit + 1)).scalars())
    return rows[:limit], len(rows) > limit
