"""The engine: what runs next in a job's graph, and when a host or job is done.

Called in the same transaction as every change that can unblock work — job
creation, a run finishing, a cancel — with the job row locked, so two runners
never schedule one job at the same time. Work is incremental: a finished run
only looks at its own dependents and its own host, so a 2,000-host job does
not rescan its graph on every step.

Rules:
- a host starts when fewer than ``concurrency`` hosts are running and no more
  than ``max_failures`` hosts have failed; otherwise pending hosts are skipped;
- a run is queued when its host is running (or it is a once-per-job run) and
  every dependency succeeded or failed without being required;
- a required run failing fails its host; the host's remaining runs, and every
  run depending on a run that cannot succeed, are skipped;
- the job is done when no run is left to run;
- a job with rollout waves starts only hosts of the wave under way, and
  waits between waves (:mod:`craton_wf.engine.waves`).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Select, func, select, update
from sqlalchemy.orm import Session

from craton_wf.db.bulk import one_of, set_columns
from craton_wf.db.models import Job, JobHost, Run, RunDependency, utcnow
from craton_wf.domain.graph import step_dependencies
from craton_wf.domain.states import (
    ACTIVE_RUN_STATES,
    FINAL_HOST_STATES,
    FINAL_RUN_STATES,
    HostStatus,
    JobStatus,
    RunStatus,
    check_transition,
)
from craton_wf.engine import waves
from craton_wf.engine._staged import stage
from craton_wf.engine.events import record_event
from craton_wf.engine.leases import lock_rows
from craton_wf.engine.webhooks import enqueue_event, job_event_data
from craton_wf.engine.writes import in_a_batch
from craton_wf.errors import Conflict

log = logging.getLogger(__name__)

_FINAL_RUN_VALUES = [s.value for s in FINAL_RUN_STATES]
_ACTIVE_RUN_VALUES = [s.value for s in ACTIVE_RUN_STATES]
_OPEN_RUN_VALUES = [s.value for s in RunStatus if s not in FINAL_RUN_STATES]


def lock_job(session: Session, job_id: int) -> Job:
    """The job row, locked for update (a no-op lock on SQLite, whose writes serialize).

    ``FOR NO KEY UPDATE``: it excludes other schedulers of the job, but not the
    foreign-key checks of rows inserted meanwhile (events, log lines, leases of
    other runs), which a plain ``FOR UPDATE`` would queue behind this lock.
    """
    return session.execute(
        select(Job)
        .where(Job.id == job_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    ).scalar_one()


def check_run_transition(run: Run, status: RunStatus) -> None:
    check_transition(RunStatus(run.status), status, f"run {run.id}")


def set_run_status(run: Run, status: RunStatus) -> None:
    check_run_transition(run, status)
    log_run_status(run, status)
    run.status = status.value


def stage_run_status(session: Session, run: Run, status: RunStatus, **values: Any) -> None:
    """Move a locked run to ``status`` (an allowed transition), with ``values``:
    staged, written with the rest of the batch's runs (:mod:`craton_wf.engine._staged`)."""
    check_run_transition(run, status)
    log_run_status(run, status)
    stage(session, run, status=status.value, **values)


def log_run_status(run: Run, status: RunStatus) -> None:
    """The service log's line for a run changing state (one per change, at INFO)."""
    log.info(
        "run %s (job %s, step %s, attempt %s): %s -> %s",
        run.id, run.job_id, run.step_name, run.attempt, run.status, status.value,
    )  # fmt: skip


def _host_status_values(status: HostStatus, now: datetime) -> dict[str, Any]:
    values: dict[str, Any] = {"status": status.value}
    if status == HostStatus.RUNNING:
        values["started_at"] = now
    elif status in FINAL_HOST_STATES:
        values["finished_at"] = now
    return values


def set_host_status(host: JobHost, status: HostStatus, now: datetime) -> None:
    check_transition(HostStatus(host.status), status, f"host {host.host_name}")
    for key, value in _host_status_values(status, now).items():
        setattr(host, key, value)


def _set_hosts_status(
    session: Session, hosts: list[JobHost], status: HostStatus, now: datetime
) -> None:
    """As :func:`set_host_status` for each of ``hosts``, stored with one statement."""
    for host in hosts:
        check_transition(HostStatus(host.status), status, f"host {host.host_name}")
    set_columns(session, hosts, **_host_status_values(status, now))


def set_job_status(job: Job, status: JobStatus, now: datetime) -> None:
    check_transition(JobStatus(job.status), status, f"job {job.id}")
    log.info("job %s: %s -> %s", job.id, job.status, status.value)
    job.status = status.value
    if status == JobStatus.RUNNING and job.started_at is None:
        job.started_at = now
    if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
        job.finished_at = now


def has_edges(job: Job) -> bool:
    """Whether any run of the job waits for another. A one-step job (a task
    over a fleet) has no edges, and no dependency needs looking up."""
    return any(step_dependencies(job.steps).values())


def _dependencies_states(session: Session, runs: list[Run], edges: bool) -> dict[int, str]:
    """Per run: 'ready', 'waiting' or 'blocked' (a dependency can no longer succeed).

    ``edges``: whether the job's graph has any (else every run is ready)."""
    states = {run.id: "ready" for run in runs}
    if not runs or not edges:
        return states
    rows = session.execute(
        select(RunDependency.run_id, Run.status, Run.required)
        .join(Run, Run.id == RunDependency.depends_on_id)
        .where(one_of(session, RunDependency.run_id, states))
    ).all()
    for run_id, status, required in rows:
        if states[run_id] == "blocked" or status == RunStatus.SUCCEEDED.value:
            continue
        if status in (RunStatus.FAILED.value, RunStatus.TIMED_OUT.value) and not required:
            continue
        states[run_id] = "blocked" if status in _FINAL_RUN_VALUES else "waiting"
    return states


def _queue(session: Session, runs: list[Run], now: datetime) -> None:
    for run in runs:
        check_transition(RunStatus(run.status), RunStatus.QUEUED, f"run {run.id}")
        record_event(session, run.job_id, "run_queued", run.step_name, run_id=run.id)
    set_columns(session, runs, status=RunStatus.QUEUED.value, queued_at=now)


def _try_queue(
    session: Session,
    runs: list[Run],
    now: datetime,
    running_hosts: set[int] | None = None,
    edges: bool = True,
) -> None:
    """Queue those of ``runs`` that may start now, skip those that never can.

    ``runs`` must be locked (see :func:`_locked_runs`). Their hosts' statuses
    are read afresh: a host started by a concurrent transaction that committed
    while this one waited for the runs' locks counts. ``running_hosts``: the
    runs' hosts are known to run (this transaction started them).
    """
    pending = [run for run in runs if run.status == RunStatus.PENDING.value]
    host_ids = {run.job_host_id for run in pending if run.job_host_id is not None}
    if running_hosts is None:
        running_hosts = (
            set(
                session.execute(
                    select(JobHost.id).where(
                        one_of(session, JobHost.id, host_ids),
                        JobHost.status == HostStatus.RUNNING.value,
                    )
                ).scalars()
            )
            if host_ids
            else set()
        )
    candidates = [r for r in pending if r.job_host_id is None or r.job_host_id in running_hosts]
    states = _dependencies_states(session, candidates, edges)
    for run in candidates:
        if run.status == RunStatus.PENDING.value and states[run.id] == "blocked":
            _skip_from(session, [run])
    # Skipping follows dependents only: a ready run depends on none of those skipped.
    _queue(
        session,
        [r for r in candidates if r.status == RunStatus.PENDING.value and states[r.id] == "ready"],
        now,
    )


def _skip_from(session: Session, runs: list[Run]) -> None:
    """Skip these runs and, transitively, every not-yet-started run depending on them."""
    stack = list(runs)
    while stack:
        run = stack.pop()
        if run.status not in (RunStatus.PENDING.value, RunStatus.QUEUED.value):
            continue
        set_run_status(run, RunStatus.SKIPPED)
        stack.extend(_dependents(session, [run.id]))


def _dependents(session: Session, run_ids: list[int]) -> list[Run]:
    """The runs waiting for any of ``run_ids``, locked."""
    return _locked_runs(
        session,
        select(Run).where(
            Run.id.in_(
                select(RunDependency.run_id).where(
                    one_of(session, RunDependency.depends_on_id, run_ids)
                )
            )
        ),
    )


def _locked_runs(session: Session, stmt: Select[Any]) -> list[Run]:
    """The runs of ``stmt`` in id order, locked and freshly read.

    Finishing runs of one job do not hold the job's lock while they propagate
    through the graph (that would serialize every runner on one row); they lock
    the runs they may change instead, in id order, and read them after the
    lock is granted, so two transactions unblocking one run cannot both miss it.
    """
    return list(
        session.execute(
            stmt.order_by(Run.id)
            .with_for_update(of=Run, key_share=True)
            .execution_options(populate_existing=True)
        ).scalars()
    )


@in_a_batch
def start_job(session: Session, job: Job) -> None:
    """Called once when the job is created: start the first hosts and once-runs."""
    now = utcnow()
    once = _locked_runs(
        session,
        select(Run).where(
            Run.job_id == job.id, Run.job_host_id.is_(None), Run.status == RunStatus.PENDING.value
        ),
    )
    _try_queue(session, once, now, edges=has_edges(job))
    if not _fill_host_slots(session, job, now):
        _finish_job_if_done(session, job, now)


def after_runs_finished(session: Session, job: Job, runs: list[Run]) -> None:
    """Propagate final states of ``job``'s runs through the graph, all at once.

    Fails or cancels their hosts as the runs say, queues (or skips) the runs
    that waited for them, and finishes the hosts with nothing left to run. The
    job-wide part (starting more hosts, finishing the job) is :func:`settle_job`,
    called once after, with the job locked.
    """
    now = utcnow()
    runs = sorted(runs, key=lambda run: run.id)
    hosts = lock_rows(session, JobHost, [run.job_host_id for run in runs if run.job_host_id])
    for run in runs:
        host = hosts.get(run.job_host_id) if run.job_host_id else None
        failed_required = run.required and run.status in (
            RunStatus.FAILED.value,
            RunStatus.TIMED_OUT.value,
        )
        if host is not None and run.status == RunStatus.CANCELLED.value:
            if host.status == HostStatus.RUNNING.value:
                set_host_status(host, HostStatus.CANCELLED, now)
            _skip_from(session, _open_runs_of_host(session, host))
        elif host is not None and failed_required and host.status == HostStatus.RUNNING.value:
            set_host_status(host, HostStatus.FAILED, now)
            host.failed_step = run.step_name
            record_event(
                session,
                job.id,
                "host_failed",
                f"{host.host_name} failed at {run.step_name}",
                run_id=run.id,
            )
            _skip_from(session, _open_runs_of_host(session, host))
    if has_edges(job):
        _try_queue(session, _dependents(session, [run.id for run in runs]), now)
    running = [host for host in hosts.values() if host.status == HostStatus.RUNNING.value]
    _finish_hosts_if_done(session, job, running, now)


def settle_job(session: Session, job: Job, now: datetime | None = None) -> None:
    """Start as many pending hosts as the job admits; finish it when nothing is left."""
    now = now or utcnow()
    if not _fill_host_slots(session, job, now):
        _finish_job_if_done(session, job, now)


@in_a_batch
def resume_job(session: Session, job: Job, by: str) -> Job:
    """A job paused at a wave gate goes on with its next wave; ``job`` locked."""
    now = utcnow()
    if job.status != JobStatus.PAUSED.value:
        raise Conflict(f"job {job.id} is {job.status}, not PAUSED: only a paused job resumes")
    set_job_status(job, JobStatus.RUNNING, now)
    waves.next_wave_resumed(session, job, by)
    settle_job(session, job, now)
    session.flush()
    return job


@in_a_batch
def start_due_waves(session: Session) -> int:
    """Start the waves whose pause is over; how many jobs moved on."""
    started = 0
    for job_id in waves.due_wave_jobs(session, utcnow()):
        job = lock_job(session, job_id)
        if job.next_wave_at is None:
            continue  # another runner started it meanwhile
        if job.status not in (JobStatus.PENDING.value, JobStatus.RUNNING.value):
            job.next_wave_at = None  # cancelled (aborted) while it waited: no next wave
            continue
        settle_job(session, job)
        started += 1
    session.flush()
    return started


def _open_runs_of_host(session: Session, host: JobHost) -> list[Run]:
    return _locked_runs(
        session,
        select(Run).where(
            Run.job_host_id == host.id,
            Run.status.in_([RunStatus.PENDING.value, RunStatus.QUEUED.value]),
        ),
    )


def _finish_hosts_if_done(session: Session, job: Job, hosts: list[JobHost], now: datetime) -> None:
    """Finish those of the running ``hosts`` whose runs are all final."""
    if not hosts:
        return
    statuses: defaultdict[int | None, set[str]] = defaultdict(set)
    for host_id, status in session.execute(
        select(Run.job_host_id, Run.status)
        .where(one_of(session, Run.job_host_id, [host.id for host in hosts]))
        .distinct()
    ):
        statuses[host_id].add(status)
    done: defaultdict[HostStatus, list[JobHost]] = defaultdict(list)
    for host in sorted(hosts, key=lambda host: host.id):
        if statuses[host.id] - set(_FINAL_RUN_VALUES):
            continue
        cancelled = RunStatus.CANCELLED.value in statuses[host.id]
        final = HostStatus.CANCELLED if cancelled else HostStatus.SUCCEEDED
        done[final].append(host)
        record_event(session, job.id, f"host_{final.value.lower()}", host.host_name)
    for final, finished in done.items():
        _set_hosts_status(session, finished, final, now)


def _fill_host_slots(session: Session, job: Job, now: datetime) -> bool:
    """Start as many pending hosts as the job admits. True when a host it
    started has a run left to run (so the job is not done)."""
    if job.status in (
        JobStatus.CANCELLING.value,
        JobStatus.PAUSED.value,
        *[s.value for s in (JobStatus.CANCELLED, JobStatus.SUCCEEDED, JobStatus.FAILED)],
    ):
        return False
    # Only the running and failed hosts are counted (an index range each, as
    # long as the concurrency and the failures): counting every host of a
    # fleet's job, with every batch of its runs, cost the database more than
    # the rest of the batch. Whether any host is pending, the query for the
    # next ones tells.
    counts = Counter(
        dict(
            session.execute(
                select(JobHost.status, func.count())
                .where(
                    JobHost.job_id == job.id,
                    JobHost.status.in_([HostStatus.RUNNING.value, HostStatus.FAILED.value]),
                )
                .group_by(JobHost.status)
            ).all()
        )
    )
    if counts[HostStatus.FAILED.value] > job.max_failures:
        _skip_pending_hosts(session, job, now)
        return False
    admitted = select(JobHost).where(
        JobHost.job_id == job.id, JobHost.status == HostStatus.PENDING.value
    )
    if waves.has_waves(job):
        end = waves.hosts_admitted(session, job, now, set_job_status)
        if end is None:
            return True  # waiting for the next wave: hosts are left
        admitted = admitted.where(JobHost.position < end)
    free = job.concurrency - counts[HostStatus.RUNNING.value]
    if free <= 0:
        return False
    hosts = list(session.execute(admitted.order_by(JobHost.position).limit(free)).scalars())
    if not hosts:
        return False
    for host in hosts:
        record_event(session, job.id, "host_started", host.host_name)
    _set_hosts_status(session, hosts, HostStatus.RUNNING, now)
    started = {host.id for host in hosts}
    # Every run of a host that was pending is pending (or final: cancelled,
    # skipped). Asked by host alone, so the database looks them up by host,
    # not among all the pending runs of the job.
    runs = _locked_runs(session, select(Run).where(one_of(session, Run.job_host_id, started)))
    _try_queue(session, runs, now, running_hosts=started, edges=has_edges(job))
    # A host with a run left to run is not done; only the others need a look
    # (a host whose every run was skipped, or that has none).
    busy = {run.job_host_id for run in runs if run.status not in _FINAL_RUN_VALUES}
    _finish_hosts_if_done(session, job, [host for host in hosts if host.id not in busy], now)
    return bool(busy)


def _skip_pending_hosts(session: Session, job: Job, now: datetime) -> None:
    hosts = list(
        session.execute(
            select(JobHost).where(
                JobHost.job_id == job.id, JobHost.status == HostStatus.PENDING.value
            )
        ).scalars()
    )
    if not hosts:
        return
    record_event(
        session,
        job.id,
        "failure_budget_exhausted",
        f"more than {job.max_failures} host(s) failed: {len(hosts)} host(s) skipped",
    )
    for host in hosts:
        set_host_status(host, HostStatus.SKIPPED, now)
        _skip_from(session, _open_runs_of_host(session, host))


def _finish_job_if_done(session: Session, job: Job, now: datetime) -> None:
    if job.status in (JobStatus.SUCCEEDED.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value):
        return
    # Whether any run is left, not how many: one index entry, not one per run.
    left = session.execute(
        select(Run.id).where(Run.job_id == job.id, Run.status.in_(_OPEN_RUN_VALUES)).limit(1)
    ).first()
    if left is not None:
        return
    hosts = Counter(
        dict(
            session.execute(
                select(JobHost.status, func.count())
                .where(JobHost.job_id == job.id)
                .group_by(JobHost.status)
            ).all()
        )
    )
    failed_once = session.execute(
        select(func.count())
        .select_from(Run)
        .where(
            Run.job_id == job.id,
            Run.job_host_id.is_(None),
            Run.required.is_(True),
            Run.status.in_(
                [RunStatus.FAILED.value, RunStatus.TIMED_OUT.value, RunStatus.SKIPPED.value]
            ),
        )
    ).scalar_one()
    if job.status == JobStatus.CANCELLING.value:
        final = JobStatus.CANCELLED
    elif hosts[HostStatus.FAILED.value] or hosts[HostStatus.SKIPPED.value] or failed_once:
        final = JobStatus.FAILED
    else:
        final = JobStatus.SUCCEEDED
    counts = ", ".join(f"{count} {status.lower()}" for status, count in sorted(hosts.items()))
    # A cancelled job's message is why (cancel_job set it); the hosts' counts follow.
    reason = job.message if final == JobStatus.CANCELLED and job.message else None
    set_job_status(job, final, now)
    job.message = f"{reason}: {counts}" if reason else counts
    outcome = f"{final.value} ({reason})" if reason else final.value
    record_event(session, job.id, "job_finished", f"{outcome}: hosts {counts}")
    enqueue_event(session, job.project_id, f"job.{final.value.lower()}", job_event_data(job))


@in_a_batch
def cancel_job(session: Session, job: Job, reason: str = "cancelled by request") -> Job:
    """Cancel what has not started; running containers are stopped by their runners."""
    now = utcnow()
    if job.status in (JobStatus.SUCCEEDED.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value):
        return job
    if job.status != JobStatus.CANCELLING.value:
        set_job_status(job, JobStatus.CANCELLING, now)
        job.cancel_requested_at = now
        job.message = reason  # shown while it cancels, and leads the final message
        job.next_wave_at = None  # a wave pause ends with the job
        record_event(session, job.id, "cancel_requested", reason)
    cancelled = session.execute(
        update(Run)
        .where(
            Run.job_id == job.id, Run.status.in_([RunStatus.PENDING.value, RunStatus.QUEUED.value])
        )
        .values(status=RunStatus.CANCELLED.value, finished_at=now, error=job.message or reason)
        .execution_options(synchronize_session="fetch")
    )
    unstarted = cast(CursorResult[Any], cancelled).rowcount
    if unstarted:
        # One line for the runs cancelled together (a fleet's would be thousands).
        log.info("job %s: %s runs not started: PENDING|QUEUED -> CANCELLED", job.id, unstarted)
    session.execute(
        update(JobHost)
        .where(JobHost.job_id == job.id, JobHost.status == HostStatus.PENDING.value)
        .values(status=HostStatus.CANCELLED.value, finished_at=now)
        .execution_options(synchronize_session="fetch")
    )
    active = session.execute(
        select(func.count())
        .select_from(Run)
        .where(Run.job_id == job.id, Run.status.in_(_ACTIVE_RUN_VALUES))
    ).scalar_one()
    if not active:
        session.execute(
            update(JobHost)
            .where(JobHost.job_id == job.id, JobHost.status == HostStatus.RUNNING.value)
            .values(status=HostStatus.CANCELLED.value, finished_at=now)
            .execution_options(synchronize_session="fetch")
        )
        session.flush()
        _finish_job_if_done(session, job, now)
    session.flush()
    return job
