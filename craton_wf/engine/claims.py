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
from typing import Any, cast

from sqlalchemy import String, Table, and_, func, literal, or_, select, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session

from craton_wf.db.bulk import one_of
from craton_wf.db.models import Job, JobHost, Run, RunDependency, RunLog, utcnow
from craton_wf.domain.graph import step_dependencies
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
from craton_wf.domain.states import JobStatus, RunStatus, check_transition
from craton_wf.engine import scheduling
from craton_wf.engine.events import record_event
from craton_wf.engine.leases import check_lease, claim_rows, db_clock, db_now
from craton_wf.engine.task_env import RunPreparation, run_environment
from craton_wf.engine.webhooks import enqueue_job_event
from craton_wf.engine.writes import in_a_batch
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


def _container_name(attempt: Any) -> Any:
    """The SQL for the container name of a run's ``attempt``: deterministic per
    attempt, and unique across databases sharing one runtime (the run's uid)."""
    return (
        literal("craton-run-")
        + sql_cast(_RUNS.c.id, String)
        + "-"
        + sql_cast(attempt, String)
        + "-"
        + _RUNS.c.uid
    )


@dataclass(frozen=True)
class _Claimed:
    """A run as its claim found it (locked), with its host's snapshot."""

    id: int
    uid: str
    job_id: int
    job_host_id: int | None
    step_index: int
    step_name: str
    image: str
    command: list[str]
    status: str
    attempt: int
    lease_owner: str | None
    lease_epoch: int
    timeout_seconds: int | None
    container_name: str | None
    log_seq: int
    attempt_log_seq: int
    job_status: str
    job_deadline: datetime | None
    host_id: int | None
    host_name: str | None
    host: dict[str, Any] | None


@dataclass(frozen=True)
class _Job:
    """What the assignments of a claim read of a job, asked once per job."""

    id: int
    project_id: str
    name: str | None
    variables: dict[str, Any]
    steps: list[dict[str, Any]]
    created_by: int | None


_RUNS = cast(Table, Run.__table__)
_JOBS = cast(Table, Job.__table__)
_HOSTS = cast(Table, JobHost.__table__)
_DEPENDENCIES = cast(Table, RunDependency.__table__)
_CLAIMED_COLUMNS = (
    *(
        _RUNS.c[name]
        for name in (
            "id",
            "uid",
            "job_id",
            "job_host_id",
            "step_index",
            "step_name",
            "image",
            "command",
            "status",
            "attempt",
            "lease_owner",
            "lease_epoch",
            "timeout_seconds",
            "container_name",
            "log_seq",
            "attempt_log_seq",
        )
    ),  # fmt: skip
    _JOBS.c.status.label("job_status"),
    _JOBS.c.deadline.label("job_deadline"),
    _HOSTS.c.host_id,
    _HOSTS.c.host_name,
    _HOSTS.c.host,
)


def claim_next_run(session: Session, owner: str, lease_seconds: float) -> RunAssignment | None:
    """Claim a queued run, or take over a started one whose runner's lease expired."""
    claimed = claim_runs(session, owner, lease_seconds, 1)
    return claimed[0] if claimed else None


@in_a_batch
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

    In SQL statements on the tables, no ORM object of a run, host or job: one
    query locks the runs (``SKIP LOCKED``) with their jobs' state and their
    hosts' snapshots; one reads the jobs' steps and variables; one UPDATE
    takes the queued runs' leases and starts their attempts (and one those
    taken over), its values computed by the database (epoch + 1, the attempt's
    container name, the expiry from its clock); one recursive query reads the
    outputs of the runs the claimed ones depend on, when any do.

    With ``settings``, each queued run's container environment is made in the
    same transaction (``RunAssignment.prepared``); a run whose environment
    cannot be made (a secret that does not decrypt) is left to the runner,
    which records why it failed."""
    clock = db_clock(session)
    queued = and_(
        _RUNS.c.status == RunStatus.QUEUED.value,
        _RUNS.c.queued_at <= clock,
        _JOBS.c.status.in_([JobStatus.PENDING.value, JobStatus.RUNNING.value]),
    )
    expired = and_(
        _RUNS.c.status.in_([RunStatus.STARTING.value, RunStatus.RUNNING.value]),
        _RUNS.c.lease_expires_at < clock,
    )
    stmt = (
        select(*_CLAIMED_COLUMNS)
        .select_from(
            _RUNS.join(_JOBS, _JOBS.c.id == _RUNS.c.job_id).outerjoin(
                _HOSTS, _HOSTS.c.id == _RUNS.c.job_host_id
            )
        )
        .where(or_(queued, expired))
        .order_by(_RUNS.c.queued_at, _RUNS.c.id)
    )
    found = [
        _Claimed(*row[: len(_CLAIMED_COLUMNS)]) for row in claim_rows(session, stmt, _RUNS, limit)
    ]
    if not found:
        return []
    now = db_now(session)  # read with the claim
    claimed = _decide(session, found, owner, now)
    if not claimed:
        return []
    expires = now + timedelta(seconds=lease_seconds)
    leases = _take_leases(session, claimed, owner, expires)
    jobs = _jobs(session, {run.job_id for run in claimed})
    edged = {job.id for job in jobs.values() if any(step_dependencies(job.steps).values())}
    outputs = _earlier_outputs(session, [run.id for run in claimed if run.job_id in edged])
    assignments = []
    for run in claimed:
        job, lease = jobs[run.job_id], leases[run.id]
        started = lease.started if settings is not None else None
        prepared = _prepare(session, started, job, settings) if started and settings else None
        assignments.append(
            _assignment(
                session, run, job, lease, outputs=outputs.get(run.id, {}), prepared=prepared
            )
        )
    return assignments


def _decide(session: Session, found: list[_Claimed], owner: str, now: datetime) -> list[_Claimed]:
    """Which of the locked runs are claimed: not those of a job past its
    deadline (the job is cancelled instead) or cancelled meanwhile. A job's
    first claim starts it (locked, and looked at again: a cancel committed
    meanwhile must not be overwritten by RUNNING)."""
    job_status = {run.job_id: run.job_status for run in found}
    claimed = []
    for run in found:
        status = job_status[run.job_id]
        if run.status == RunStatus.QUEUED.value:
            if status == JobStatus.CANCELLING.value:
                continue  # cancelled by a job timeout met earlier in this claim
            if run.job_deadline is not None and run.job_deadline <= now:
                job = scheduling.lock_job(session, run.job_id)
                scheduling.cancel_job(session, job, f"job timed out after {job.timeout_seconds}s")
                job_status[run.job_id] = job.status
                continue
        if status == JobStatus.PENDING.value:
            status = job_status[run.job_id] = _start_job(session, run.job_id, owner, now)
            if status == JobStatus.CANCELLING.value:
                continue
        claimed.append(run)
    return claimed


def _start_job(session: Session, job_id: int, owner: str, now: datetime) -> str:
    """The job's first claim: RUNNING, unless it was cancelled meanwhile (then
    its queued runs are cancelled with the rest); the job's status after."""
    status = session.execute(
        select(_JOBS.c.status).where(_JOBS.c.id == job_id).with_for_update(key_share=True)
    ).scalar_one()
    if status == JobStatus.CANCELLING.value:
        scheduling.cancel_job(session, scheduling.lock_job(session, job_id))
        return status
    if status == JobStatus.PENDING.value:
        check_transition(JobStatus(status), JobStatus.RUNNING, f"job {job_id}")
        scheduling.log.info("job %s: %s -> %s", job_id, status, JobStatus.RUNNING.value)
        session.execute(
            update(_JOBS)
            .where(_JOBS.c.id == job_id)
            .values(
                status=JobStatus.RUNNING.value,
                started_at=func.coalesce(_JOBS.c.started_at, now),
            )
        )
        record_event(session, job_id, "job_started", runner_id=owner)
        enqueue_job_event(session, job_id, "job.started")
        return JobStatus.RUNNING.value
    return str(status)


@dataclass(frozen=True)
class _Lease:
    """A claimed run's lease and attempt, as the claim's UPDATE left them."""

    epoch: int
    attempt: int
    container_name: str | None
    # The attempt the claim started (a queued run), None for a run taken over.
    started: _Attempt | None = None


@dataclass(frozen=True)
class _Attempt:
    """What a started attempt's environment is made from (task_env.AttemptFacts)."""

    id: int
    step_index: int
    attempt: int
    timeout_seconds: int | None


def _take_leases(
    session: Session, runs: list[_Claimed], owner: str, expires: datetime
) -> dict[int, _Lease]:
    """``owner``'s leases on the (locked) runs, at their next epoch, by run id:
    a queued run's next attempt starts (STARTING, its container name, its log
    lines from here on); a started one is taken over as it stands."""
    queued = [run for run in runs if run.status == RunStatus.QUEUED.value]
    adopted = [run for run in runs if run.status != RunStatus.QUEUED.value]
    lease = {
        "lease_owner": owner,
        "lease_epoch": func.coalesce(_RUNS.c.lease_epoch, 0) + 1,
        "lease_expires_at": expires,
    }
    returning = (_RUNS.c.id, _RUNS.c.lease_epoch, _RUNS.c.attempt, _RUNS.c.container_name)
    leases: dict[int, _Lease] = {}
    by_id = {run.id: run for run in runs}
    if queued:
        for run in queued:
            check_transition(RunStatus(run.status), RunStatus.STARTING, f"run {run.id}")
        rows = session.execute(
            update(_RUNS)
            .where(one_of(session, _RUNS.c.id, [run.id for run in queued]))
            .values(
                **lease,
                status=RunStatus.STARTING.value,
                attempt=_RUNS.c.attempt + 1,
                container_name=_container_name(_RUNS.c.attempt + 1),
                error=None,
                attempt_log_seq=_RUNS.c.log_seq,  # this attempt's lines come after
            )
            .returning(*returning)
        ).all()
        for run_id, epoch, attempt, name in rows:
            run = by_id[run_id]
            scheduling.log.info(  # the service log's line, as scheduling.log_run_status's
                "run %s (job %s, step %s, attempt %s): %s -> %s",
                run_id, run.job_id, run.step_name, run.attempt, run.status, "STARTING",
            )  # fmt: skip
            started = _Attempt(run_id, run.step_index, attempt, run.timeout_seconds)
            leases[run_id] = _Lease(epoch, attempt, name, started)
    if adopted:
        rows = session.execute(
            update(_RUNS)
            .where(one_of(session, _RUNS.c.id, [run.id for run in adopted]))
            .values(**lease)
            .returning(*returning)
        ).all()
        for run_id, epoch, attempt, name in rows:
            leases[run_id] = _Lease(epoch, attempt, name)
        for run in adopted:
            record_event(
                session,
                run.job_id,
                "run_adopted",
                f"{run.step_name} attempt {run.attempt}: taken over from {run.lease_owner}",
                run_id=run.id,
                runner_id=owner,
                previous_runner=run.lease_owner,
            )
    return leases


def _jobs(session: Session, job_ids: set[int]) -> dict[int, _Job]:
    rows = session.execute(
        select(*(_JOBS.c[name] for name in _Job.__dataclass_fields__)).where(
            one_of(session, _JOBS.c.id, sorted(job_ids))
        )
    )
    return {row.id: _Job(*row) for row in rows}


def _prepare(
    session: Session, attempt: _Attempt, job: _Job, settings: Settings
) -> RunPreparation | None:
    try:
        # Secrets are decrypted before anything is added: a failure adds nothing.
        return run_environment(session, attempt, job, settings)
    except CratonError:
        return None  # the runner prepares it again, and records the error


def _assignment(
    session: Session,
    run: _Claimed,
    job: _Job,
    lease: _Lease,
    *,
    outputs: dict[str, dict[str, Any]],
    prepared: RunPreparation | None = None,
) -> RunAssignment:
    """What the runner needs of a claimed run; ``outputs``: those of the runs it depends on."""
    step = job.steps[run.step_index]
    payload = build_payload(
        job={"id": job.id, "name": job.name, "variables": job.variables},
        step=step,
        attempt=lease.attempt,
        host=run.host,
        outputs=outputs,
    )
    adopted_from = None if lease.started is not None else run.lease_owner
    last_ts: datetime | None = None
    stored: dict[str, StoredStream] = {}
    if adopted_from is not None and run.log_seq > run.attempt_log_seq:
        last_ts = session.execute(
            select(func.max(RunLog.ts)).where(RunLog.run_id == run.id, RunLog.stream != "system")
        ).scalar_one()
        stored = _stored_streams(session, run.id, run.attempt_log_seq)
    assert lease.container_name is not None  # named by the claim that started the attempt
    return RunAssignment(
        run_id=run.id,
        job_id=job.id,
        project_id=job.project_id,
        host_id=run.host_id,
        host_name=run.host_name,
        step_name=run.step_name,
        attempt=lease.attempt,
        epoch=lease.epoch,
        image=run.image,
        command=[*run.command, encode_payload(payload)],
        container_name=lease.container_name,
        labels={
            PROJECT_LABEL: job.project_id,
            JOB_LABEL: str(job.id),
            HOST_LABEL: str(run.host_id) if run.host_id is not None else "",
            RUN_LABEL: str(run.id),
            RUN_UID_LABEL: run.uid,
            ATTEMPT_LABEL: str(lease.attempt),
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


def _stored_streams(session: Session, run_id: int, attempt_log_seq: int) -> dict[str, StoredStream]:
    """Per stream, what the run's current attempt stored (count, first and last lines)."""
    of_attempt = (RunLog.run_id == run_id, RunLog.seq > attempt_log_seq)
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


def _earlier_outputs(session: Session, run_ids: list[int]) -> dict[int, dict[str, dict[str, Any]]]:
    """Per run of ``run_ids``, the outputs of the runs it (transitively) depends
    on, by step name, the nearest first: one recursive query for all of them."""
    if not run_ids:
        return {}
    edges = _DEPENDENCIES.c
    reached = (
        select(edges.run_id, edges.depends_on_id.label("dep_id"), literal(1).label("depth"))
        .where(one_of(session, edges.run_id, run_ids))
        .cte("reached", recursive=True)
    )
    reached = reached.union(
        select(reached.c.run_id, edges.depends_on_id, reached.c.depth + 1).join(
            _DEPENDENCIES, edges.run_id == reached.c.dep_id
        )
    )
    rows = session.execute(
        select(reached.c.run_id, _RUNS.c.id, _RUNS.c.step_name, _RUNS.c.status, _RUNS.c.outputs)
        .join(_RUNS, _RUNS.c.id == reached.c.dep_id)
        .order_by(reached.c.run_id, reached.c.depth, _RUNS.c.id)
    )
    outputs: dict[int, dict[str, dict[str, Any]]] = {}
    seen: set[tuple[int, int]] = set()
    for run_id, dep_id, step_name, status, dep_outputs in rows:
        if (run_id, dep_id) in seen:
            continue
        seen.add((run_id, dep_id))
        if status == RunStatus.SUCCEEDED.value or dep_outputs:
            outputs.setdefault(run_id, {}).setdefault(step_name, dep_outputs or {})
    return outputs


@in_a_batch
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
