"""Approving exactly the code that runs.

An approval names one build of a task and that build's image digest, and
holds for the digest: a rebuild that changes nothing reuses the image
(:mod:`craton_wf.builders.build_key`), gets the same digest and keeps the
decisions about it; a new commit, Dockerfile or base image gives a new digest,
which needs a new approval. The author of a build (who asked
for it) cannot approve it; a public task's builds need a root user's approval,
since they run in every project. Rejections and revocations are recorded the
same way, and the newest decision about a build is the one that holds.

A job may only be created (or retried) from approved builds; the job keeps
the approved digest in its snapshot of the steps.

An approval covers what runs, not only the image: a job also snapshots the
task's command, secrets, network and resources (:data:`EXECUTION_FIELDS`).
The task's secrets are every environment name its containers can get besides
the platform's own: a workflow step may only choose among them
(:func:`craton_wf.services.project_secrets.check_step_secrets`), and names
that steer how a program starts are never accepted
(:mod:`craton_wf.domain.environment`).
Changing any of them revokes the READY build's approval, recorded as a
revocation by whoever made the change with the reason "task changed: …"
(:func:`revoke_for_change`); an admin must approve again, and — as a build's
author — the one who made the change cannot. A job records the
:func:`execution_fingerprint` it was approved with, so a retry after such a
change is refused rather than running what is no longer approved.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from craton_wf.db.models import Build, Task, TaskApproval
from craton_wf.domain.states import BuildStatus
from craton_wf.errors import Conflict, Forbidden, InvalidInput, NotFound
from craton_wf.services import policy
from craton_wf.services.auth import Principal

APPROVED, REJECTED, REVOKED = "approved", "rejected", "revoked"
# What a job snapshots from the task besides the build: a change needs a new approval.
EXECUTION_FIELDS = ("command", "secrets", "needs_network", "resources")
TASK_CHANGED = "task changed"


def execution_fingerprint(task: Task) -> str:
    """A digest of the task's :data:`EXECUTION_FIELDS`, as a job snapshots them."""
    fields = {
        "command": list(task.command or []),
        "secrets": sorted(task.secrets or []),
        "needs_network": bool(task.needs_network),
        "resources": dict(task.resources or {}),
    }
    return "sha256:" + hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def revoke_for_change(
    session: Session, me: Principal | None, task: Task, changed: list[str]
) -> TaskApproval | None:
    """Revoke the READY build's approval: the ``changed`` execution fields changed.

    Recorded whatever the build's newest decision was, so that the one who made
    the change may not approve it afterwards (see :func:`decide`).
    """
    build = session.get(Build, task.ready_build_id) if task.ready_build_id else None
    if not changed or build is None or not build.digest:
        return None
    row = TaskApproval(
        task_id=task.id,
        build_id=build.id,
        digest=build.digest,
        decision=REVOKED,
        user_id=me.user_id if me else None,
        user_name=me.user_name if me else "system",
        by_root=bool(me and me.is_root),
        reason=f"{TASK_CHANGED}: {', '.join(changed)}",
    )
    session.add(row)
    session.flush()
    return row


def _changed_by(session: Session, build: Build, user_id: int) -> bool:
    return (
        session.execute(
            select(TaskApproval.id)
            .where(
                TaskApproval.task_id == build.task_id,
                TaskApproval.digest == build.digest,
                TaskApproval.user_id == user_id,
                TaskApproval.decision == REVOKED,
                TaskApproval.reason.like(f"{TASK_CHANGED}:%"),
            )
            .limit(1)
        ).first()
        is not None
    )


@dataclass(frozen=True)
class ApprovalState:
    status: str  # approved | rejected | revoked | pending
    build_number: int | None
    digest: str | None
    by: str | None
    at: datetime | None
    reason: str | None


def latest_decision(session: Session, build: Build) -> TaskApproval | None:
    """The newest decision about ``build``'s digest, made on any build of its task."""
    if not build.digest:
        return None
    return session.execute(
        select(TaskApproval)
        .where(TaskApproval.task_id == build.task_id, TaskApproval.digest == build.digest)
        .order_by(TaskApproval.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def state_of(session: Session, task: Task) -> ApprovalState:
    """The approval of the build a job would run now (the task's READY build)."""
    build = session.get(Build, task.ready_build_id) if task.ready_build_id else None
    if build is None:
        return ApprovalState("pending", None, None, None, None, None)
    decision = latest_decision(session, build)
    if decision is None:
        return ApprovalState("pending", build.number, build.digest, None, None, None)
    if decision.decision == APPROVED and task.public and not decision.by_root:
        reason = "public: needs a root user's approval"
        return ApprovalState("pending", build.number, build.digest, None, None, reason)
    return ApprovalState(
        decision.decision,
        build.number,
        decision.digest,
        decision.user_name,
        decision.created_at,
        decision.reason,
    )


def _build(session: Session, task: Task, number: int | None) -> Build:
    if number is None:
        if task.ready_build_id is None:
            raise Conflict(f"task {task.name} has no READY build to decide on")
        build = session.get(Build, task.ready_build_id)
    else:
        build = session.execute(
            select(Build).where(Build.task_id == task.id, Build.number == number)
        ).scalar_one_or_none()
    if build is None:
        raise NotFound(f"task {task.name} has no build {number}")
    if build.status != BuildStatus.READY.value or not build.digest:
        raise Conflict(f"build {build.number} of task {task.name} is {build.status}, not READY")
    return build


def decide(
    session: Session,
    me: Principal,
    task: Task,
    decision: str,
    *,
    build_number: int | None = None,
    digest: str | None = None,
    reason: str | None = None,
) -> TaskApproval:
    if decision not in (APPROVED, REJECTED, REVOKED):
        raise InvalidInput("decision must be approved, rejected or revoked")
    if not policy.has_role(me, "admin"):
        raise Forbidden("approving, rejecting or revoking a build needs the admin role")
    if task.public and not me.is_root:
        raise Forbidden(f"task {task.name} is public: only a root user may decide on its builds")
    build = _build(session, task, build_number)
    if digest is not None and digest != build.digest:
        raise Conflict(
            f"build {build.number} of task {task.name} has digest {build.digest}, not {digest}"
        )
    if decision == APPROVED and build.requested_by == me.user_id:
        raise Forbidden(
            f"you asked for build {build.number} of task {task.name}: another admin must approve it"
        )
    if decision == APPROVED and (
        task.execution_changed_by == me.user_id or _changed_by(session, build, me.user_id)
    ):
        raise Forbidden(
            f"you changed what build {build.number} of task {task.name} runs: "
            "another admin must approve it"
        )
    latest = latest_decision(session, build)
    if decision == REVOKED and (latest is None or latest.decision != APPROVED):
        raise Conflict(f"build {build.number} of task {task.name} is not approved")
    if (
        decision == APPROVED
        and latest is not None
        and latest.decision == APPROVED
        and (latest.by_root or not task.public)
    ):
        raise Conflict(f"build {build.number} of task {task.name} is already approved")
    row = TaskApproval(
        task_id=task.id,
        build_id=build.id,
        digest=build.digest,
        decision=decision,
        user_id=me.user_id,
        user_name=me.user_name,
        by_root=me.is_root,
        reason=reason,
    )
    session.add(row)
    session.flush()
    return row


def require_approved(
    session: Session, task_name: str, build_id: int, digest: str | None, *, public: bool = False
) -> None:
    """Conflict unless the build's newest decision approves exactly ``digest``.

    A public task's build counts as approved only by a root user (a task made
    public after an admin approved it needs root's approval again).
    """
    build = session.get(Build, build_id)
    decision = None if build is None or build.digest != digest else latest_decision(session, build)
    if decision is not None and decision.decision == APPROVED:
        if public and not decision.by_root:
            raise Conflict(
                f"task {task_name} is public: its build needs a root user's approval, "
                f"not only {decision.user_name}'s"
            )
        return
    number = build.number if build else "?"
    state = "not approved" if decision is None else decision.decision
    raise Conflict(
        f"build {number} of task {task_name} ({digest}) is {state}: "
        f"an admin other than its author must approve it (craton task-approve {task_name})"
    )
