"""What a runner does to builds: claim one, store its log, record the result."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from craton_wf.db.models import Build, BuildLog, Task, TaskApproval, TaskSource, utcnow
from craton_wf.domain.states import BuildStatus, check_transition
from craton_wf.engine.leases import check_lease, claim_one, db_now, take_lease
from craton_wf.engine.webhooks import enqueue_event
from craton_wf.engine.writes import in_a_batch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildAssignment:
    build_id: int
    task_id: int
    project_id: str
    task_name: str
    number: int
    epoch: int
    source_type: str
    location: str
    ref: str | None
    subdir: str | None
    dockerfile: str
    archive: bytes | None
    archive_sha256: str | None


def _set_status(build: Build, task: Task | None, status: BuildStatus) -> None:
    check_transition(BuildStatus(build.status), status, f"build {build.id}")
    log.info(
        "build %s (task %s, number %s): %s -> %s",
        build.id, build.task_id, build.number, build.status, status.value,
    )  # fmt: skip
    build.status = status.value
    if task is not None and task.current_build_id == build.id:
        task.status = status.value


@in_a_batch
def claim_next_build(session: Session, owner: str, lease_seconds: float) -> BuildAssignment | None:
    """Claim a pending build, or restart one whose runner's lease expired mid-build.

    A build has no container to adopt: it starts over (same tag, fresh
    workspace), with a line in its log saying so.
    """
    now = db_now(session)
    stmt = (
        select(Build)
        .where(
            or_(
                Build.status == BuildStatus.PENDING.value,
                and_(Build.status == BuildStatus.BUILDING.value, Build.lease_expires_at < now),
            )
        )
        .order_by(Build.created_at, Build.id)
    )
    build = claim_one(session, stmt, Build)
    if build is None:
        return None
    task = session.get(Task, build.task_id)
    assert task is not None
    previous_owner = build.lease_owner
    if build.status == BuildStatus.PENDING.value:
        _set_status(build, task, BuildStatus.BUILDING)
    else:
        build.log_seq += 1
        session.add(
            BuildLog(
                build_id=build.id,
                seq=build.log_seq,
                ts=now,
                line=f"[craton] runner {owner} restarts this build: "
                f"runner {previous_owner} stopped renewing its lease",
            )
        )
    epoch = take_lease(session, build, owner, lease_seconds, now)
    build.started_at = now
    source = session.get(TaskSource, build.source_id) if build.source_id else None
    session.flush()
    return BuildAssignment(
        build_id=build.id,
        task_id=task.id,
        project_id=task.project_id,
        task_name=task.name,
        number=build.number,
        epoch=epoch,
        source_type=task.source_type,
        location=task.location,
        ref=build.ref,
        subdir=task.subdir,
        dockerfile=task.dockerfile,
        archive=source.data if source else None,
        archive_sha256=source.sha256 if source else None,
    )


def append_build_logs(
    session: Session, build_id: int, owner: str, epoch: int, lines: list[tuple[datetime, str]]
) -> None:
    build = check_lease(session, Build, build_id, owner, epoch)
    seq = build.log_seq
    for ts, line in lines:
        seq += 1
        session.add(BuildLog(build_id=build.id, seq=seq, ts=ts, line=line))
    build.log_seq = seq


def record_commit(session: Session, build_id: int, owner: str, epoch: int, commit: str) -> None:
    build = check_lease(session, Build, build_id, owner, epoch)
    build.commit = commit


def finish_build(
    session: Session,
    build_id: int,
    owner: str,
    epoch: int,
    *,
    image: str | None = None,
    digest: str | None = None,
    error: str | None = None,
) -> BuildStatus:
    build = check_lease(session, Build, build_id, owner, epoch)
    task = session.get(Task, build.task_id)
    build.finished_at = utcnow()
    build.lease_owner = None
    build.lease_expires_at = None
    if error is None and image:
        _set_status(build, task, BuildStatus.READY)
        build.image, build.digest = image, digest
        if task is not None and (task.ready_build_id is None or task.ready_build_id < build.id):
            task.ready_build_id = build.id
        if task is not None and not _decided(session, task.id, digest):
            enqueue_event(session, task.project_id, "approval.requested", _build_data(build, task))
        return BuildStatus.READY
    _set_status(build, task, BuildStatus.FAILED)
    build.error = error or "the build produced no image"
    if task is not None:
        enqueue_event(session, task.project_id, "build.failed", _build_data(build, task))
    return BuildStatus.FAILED


def _decided(session: Session, task_id: int, digest: str | None) -> bool:
    """Whether an approval decision already names this image (a rebuild that changed
    nothing): then no new approval is asked for."""
    if not digest:
        return False
    return (
        session.execute(
            select(TaskApproval.id)
            .where(TaskApproval.task_id == task_id, TaskApproval.digest == digest)
            .limit(1)
        ).first()
        is not None
    )


def _build_data(build: Build, task: Task) -> dict[str, Any]:
    """What a build event's webhook document says of the build and its task."""
    return {
        "task": {"id": task.id, "name": task.name},
        "build": {
            "id": build.id,
            "number": build.number,
            "status": build.status,
            "digest": build.digest,
            "error": build.error,
        },
    }
