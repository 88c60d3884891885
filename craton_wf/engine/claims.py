"""What a runner does to take runs on: claim them, mark them started, give them back.

A claim takes a run's lease (:mod:`craton_wf.engine.leases`) and hands the
runner a :class:`RunAssignment`: everything needed to start the run's
container, or to adopt the container of a runner whose lease expired. What
the run's container then does is recorded by :mod:`craton_wf.engine.recording`.
Every call is one short transaction owned by the runner, checked against the
run's lease.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from craton_wf.db.bulk import one_of
from craton_wf.db.models import Job, JobHost, Run, RunDependency, RunLog, utcnow
from craton_wf.domain.labels import (
    ATTEMPT_LABEL,
    HOST_LABEL,
    JOB_LABEL,
    PROJECT_LABEL,
    RUN_LABEL,
    RUN_UID_LABEL,
    STEP_LABEL,
)
from craton_wf.domain.payload import build_payload, encode_payload
from craton_wf.domain.states import JobStatus, RunStatus
from craton_wf.engine import scheduling
from craton_wf.engine.events import record_event
from craton_wf.engine.leases import check_lease, claim_many, db_clock, db_now, take_lease
from craton_wf.engine.task_env import RunPreparation, run_environment
from craton_wf.errors import CratonError
from craton_wf.settings import Settings

RESUME_CHECK_LINES = 20  # stored lines at each end of a stream a takeover compares


@dataclass(frozen=True)
class StoredStream:
    """What the current attempt of a run stored of one stream of its container:
    how many lines, and its first and last few, as stored. A runner that takes
    the run over finds with them where to resume (:mod:`craton_wf.runner.resume`)."""

    count: int
    head: tuple[str, ...]
    tail: tuple[str, ...]


@dataclass(frozen=True)
class RunAssignment:
    """A claimed run: everything a runner needs to start its container."""

    run_id: int
    job_id: int
    project_id: str
    host_id: int | None
    host_name: str | None
    step_name: str
    attempt: int
    epoch: int
    image: str
    command: list[str]
    container_name: str
    labels: dict[str, str]
    timeout_seconds: int | None
    needs_network: bool
    # Set when this runner took the run over from one whose lease expired.
    adopted_from: str | None = None
    was_started: bool = False  # the previous owner had started the container
    log_seq: int = 0
    last_log_ts: datetime | None = None  # of the last line stored, for the takeover's note
    # What this attempt stored of stdout and stderr, when the run was taken over.
    stored: Mapping[str, StoredStream] = field(default_factory=dict)
    # The container's environment, limits and token, made with the claim of a
    # queued run (claim_runs with settings); None: the runner prepares it.
    prepared: RunPreparation | None = None


def container_name(run: Run, attempt: int | None = None) -> str:
    """Deterministic per attempt, and unique across databases sharing one runtime."""
    return f"craton-run-{run.id}-{run.attempt if attempt is None else attempt}-{run.uid}"


def claim_next_run(session: Session, owner: str, lease_seconds: float) -> RunAssignment | None:
    """Claim a queued run, or take over a started one whose runner's lease expired."""
    claimed = claim_runs(session, owner, lease_seconds, 1)
    return claimed[0] if claimed else None


def claim_runs(
    session: Session,
    owner: str,
    lease_seconds: float,
    limit: int,
    settings: Settings | None = None,
) -> list[RunAssignment]:
    """Claim up to ``limit`` runs in one query: queued ones, or started ones whose
    runner's lease expired (taken over). Runs of a job past its deadline are not
    claimed; their job is cancelled instead.

    With ``settings``, each queued run's container environment is made in the
    same transaction (``RunAssignment.prepared``); a run whose environment
    cannot be made (a secret that does not decrypt) is left to the runner,
    which records why it failed."""
    now = db_clock(session)
    queued = and_(
        Run.status == RunStatus.QUEUED.value,
        Run.queued_at <= now,
        Job.status.in_([JobStatus.PENDING.value, JobStatus.RUNNING.value]),
    )
    expired = and_(
        Run.status.in_([RunStatus.STARTING.value, RunStatus.RUNNING.value]),
        Run.lease_expires_at < now,
    )
    stmt = (
        select(Run)
        .join(Job, Job.id == Run.job_id)
        .where(or_(queued, expired))
        .order_by(Run.queued_at, Run.id)
    )
    claimed = claim_many(session, stmt, Run, limit)
    if not claimed:
        return []
    now = db_now(session)  # read with the claim
    runs = []
    for run in claimed:
        # The runner a started run is taken over from; None for a queued run.
        previous = None if run.status == RunStatus.QUEUED.value else run.lease_owner
        if _claim(session, run, owner, lease_seconds, now):
            runs.append((run, previous))
    if not runs:
        return []
    # What the assignments read, asked once for all of them.
    host_ids = [run.job_host_id for run, _ in runs if run.job_host_id]
    if host_ids:
        session.execute(
            select(JobHost).where(one_of(session, JobHost.id, host_ids))
        ).scalars().all()
    # Runs that wait for others get their outputs; no run of a job whose graph
    # has no edges (a task over a fleet) does, and that needs no question.
    edged = {j for j in {r.job_id for r, _ in runs} if scheduling.has_edges(_job(session, j))}
    graphed = [r.id for r, _ in runs if r.job_id in edged]
    waiting = (
        set(
            session.execute(
                select(RunDependency.run_id).where(one_of(session, RunDependency.run_id, graphed))
            ).scalars()
        )
        if graphed
        else set()
    )
    return [
        _assignment(
            session,
            run,
            previous,
            outputs=run.id in waiting,
            prepared=_prepare(session, run, settings) if settings and not previous else None,
        )
        for run, previous in runs
    ]


def _job(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    assert job is not None
    return job


def _prepare(session: Session, run: Run, settings: Settings) -> RunPreparation | None:
    job = _job(session, run.job_id)
    try:
        # Secrets are decrypted before anything is added: a failure adds nothing.
        return run_environment(session, run, job, settings)
    except CratonError:
        return None  # the runner prepares it again, and records the error


def _claim(session: Session, run: Run, owner: str, lease_seconds: float, now: datetime) -> bool:
    """Take the lease of a locked run; False when it is not to be claimed after all."""
    claimable = (RunStatus.QUEUED.value, RunStatus.STARTING.value, RunStatus.RUNNING.value)
    if run.status not in claimable:  # cancelled by a job timeout met earlier in this claim
        return False
    job = session.get(Job, run.job_id)
    assert job is not None
    if run.status == RunStatus.QUEUED.value and job.deadline is not None and job.deadline <= now:
        if job.status != JobStatus.CANCELLING.value:
            scheduling.cancel_job(
                session,
                scheduling.lock_job(session, job.id),
                f"job timed out after {job.timeout_seconds}s",
            )
        return False
    if job.status == JobStatus.PENDING.value:
        # The job's first run: the job row will change, so lock it and look
        # again, lest a cancel committed meanwhile be overwritten by RUNNING.
        job = scheduling.lock_job(session, job.id)
        if job.status == JobStatus.CANCELLING.value:
            scheduling.cancel_job(session, job)  # this queued run with the rest
            return False
    previous_owner = run.lease_owner
    take_lease(session, run, owner, lease_seconds, now)
    if run.status == RunStatus.QUEUED.value:
        attempt = run.attempt + 1
        scheduling.stage_run_status(
            session,
            run,
            RunStatus.STARTING,
            attempt=attempt,
            container_name=container_name(run, attempt),
            error=None,
            attempt_log_seq=run.log_seq,  # this attempt's lines come after
        )
    else:
        record_event(
            session,
            job.id,
            "run_adopted",
            f"{run.step_name} attempt {run.attempt}: taken over from {previous_owner}",
            run_id=run.id,
            runner_id=owner,
            previous_runner=previous_owner,
        )
    if job.status == JobStatus.PENDING.value:
        scheduling.set_job_status(job, JobStatus.RUNNING, now)
        record_event(session, job.id, "job_started", runner_id=owner)
    return True


def _assignment(
    session: Session,
    run: Run,
    adopted_from: str | None,
    *,
    outputs: bool,
    prepared: RunPreparation | None = None,
) -> RunAssignment:
    """What the runner needs of a claimed run; ``outputs``: it depends on other runs."""
    job = session.get(Job, run.job_id)
    assert job is not None
    host = session.get(JobHost, run.job_host_id) if run.job_host_id else None
    step = job.steps[run.step_index]
    payload = build_payload(
        job={"id": job.id, "name": job.name, "variables": job.variables},
        step=step,
        attempt=run.attempt,
        host=host.host if host else None,
        outputs=_earlier_outputs(session, run) if outputs else {},
    )
    last_ts: datetime | None = None
    stored: dict[str, StoredStream] = {}
    if adopted_from is not None and run.log_seq > run.attempt_log_seq:
        last_ts = session.execute(
            select(func.max(RunLog.ts)).where(RunLog.run_id == run.id, RunLog.stream != "system")
        ).scalar_one()
        stored = _stored_streams(session, run)
    return RunAssignment(
        run_id=run.id,
        job_id=job.id,
        project_id=job.project_id,
        host_id=host.host_id if host else None,
        host_name=host.host_name if host else None,
        step_name=run.step_name,
        attempt=run.attempt,
        epoch=run.lease_epoch,
        image=run.image,
        command=[*run.command, encode_payload(payload)],
        container_name=run.container_name or container_name(run),
        labels={
            PROJECT_LABEL: job.project_id,
            JOB_LABEL: str(job.id),
            HOST_LABEL: str(host.host_id) if host else "",
            RUN_LABEL: str(run.id),
            RUN_UID_LABEL: run.uid,
            ATTEMPT_LABEL: str(run.attempt),
            STEP_LABEL: run.step_name,
        },
        timeout_seconds=run.timeout_seconds,
        needs_network=bool(step.get("needs_network")),
        adopted_from=adopted_from,
        was_started=run.status == RunStatus.RUNNING.value,
        log_seq=run.log_seq,
        last_log_ts=last_ts,
        stored=stored,
        prepared=prepared,
    )


def _stored_streams(session: Session, run: Run) -> dict[str, StoredStream]:
    """Per stream, what the run's current attempt stored (count, first and last lines)."""
    of_attempt = (RunLog.run_id == run.id, RunLog.seq > run.attempt_log_seq)
    counts = session.execute(
        select(RunLog.stream, func.count())
        .where(*of_attempt, RunLog.stream.in_(("stdout", "stderr")))
        .group_by(RunLog.stream)
    ).all()
    stored: dict[str, StoredStream] = {}
    for stream, count in counts:
        lines = select(RunLog.line).where(*of_attempt, RunLog.stream == stream)
        head = session.execute(lines.order_by(RunLog.seq).limit(RESUME_CHECK_LINES)).scalars()
        tail = session.execute(
            lines.order_by(RunLog.seq.desc()).limit(RESUME_CHECK_LINES)
        ).scalars()
        stored[stream] = StoredStream(int(count), tuple(head), tuple(reversed(list(tail))))
    return stored


def _earlier_outputs(session: Session, run: Run) -> dict[str, dict[str, Any]]:
    """Outputs of the runs this run (transitively) depends on, by step name."""
    outputs: dict[str, dict[str, Any]] = {}
    frontier, seen = [run.id], {run.id}
    while frontier:
        rows = (
            session.execute(
                select(Run)
                .join(RunDependency, RunDependency.depends_on_id == Run.id)
                .where(one_of(session, RunDependency.run_id, frontier))
            )
            .scalars()
            .all()
        )
        frontier = []
        for dep in rows:
            if dep.id in seen:
                continue
            seen.add(dep.id)
            frontier.append(dep.id)
            if dep.status == RunStatus.SUCCEEDED.value or dep.outputs:
                outputs.setdefault(dep.step_name, dep.outputs or {})
    return outputs


def mark_started(
    session: Session, run_id: int, owner: str, epoch: int, container_id: str
) -> datetime | None:
    """The container runs; returns the run's deadline (absolute, stored)."""
    run = check_lease(session, Run, run_id, owner, epoch)
    if run.status == RunStatus.RUNNING.value:  # adopted: started before, deadline stands
        return run.deadline
    now = db_now(session)
    deadline = now + timedelta(seconds=run.timeout_seconds) if run.timeout_seconds else None
    scheduling.stage_run_status(
        session,
        run,
        RunStatus.RUNNING,
        container_id=container_id,
        started_at=now,
        deadline=deadline,
    )
    record_event(
        session,
        run.job_id,
        "run_started",
        f"{run.step_name} attempt {run.attempt}",
        run_id=run.id,
        runner_id=owner,
        container=run.container_name,
    )
    return run.deadline


def release_run(session: Session, run_id: int, owner: str, epoch: int, error: str) -> None:
    """Give a claimed run back before any container ran for it (e.g. the runner stops)."""
    run = check_lease(session, Run, run_id, owner, epoch)
    scheduling.set_run_status(run, RunStatus.QUEUED)
    run.lease_owner = None
    run.lease_expires_at = None
    run.attempt -= 1
    run.error = error


def runs_to_stop(session: Session, owner: str, run_ids: list[int]) -> dict[int, str]:
    """Of the runs this runner holds, those to stop now: job cancelled or deadline passed."""
    if not run_ids:
        return {}
    now = utcnow()
    rows = session.execute(
        select(Run.id, Run.deadline, Job.status, Job.deadline)
        .join(Job, Job.id == Run.job_id)
        .where(one_of(session, Run.id, run_ids), Run.lease_owner == owner)
    ).all()
    verdict: dict[int, str] = {}
    for run_id, deadline, job_status, job_deadline in rows:
        if job_status == JobStatus.CANCELLING.value:
            verdict[run_id] = "cancel"
        elif deadline is not None and deadline <= now:
            verdict[run_id] = "timeout"
        elif job_deadline is not None and job_deadline <= now:
            verdict[run_id] = "job_timeout"
    return verdict
