"""Rollout waves in the engine: which hosts may start, and what happens when a wave ends.

A job with waves (:mod:`craton_wf.domain.waves`) starts only hosts of the
wave under way: those whose position is below the wave's running total. The
concurrency limit and the failure budget apply inside the wave as without
waves (:mod:`craton_wf.engine.scheduling` checks the budget first: more than
``max_failures`` failed hosts skip every pending host, so no later wave
starts). The budget counts the job's failures, which include the wave's, so
it holds per wave and overall at once.

When no host of the wave is pending or running, the wave is over and the
next one starts: at once, after ``wave_pause_seconds`` (``next_wave_at``,
which runners look for, :func:`start_due_waves`), or, with the ``approve``
gate, when an operator resumes the job, which waits in ``PAUSED`` meanwhile.

Everything here runs with the job row locked, like the rest of the job-wide
scheduling, so one wave ends once and the next starts once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from craton_wf.db.models import Job, JobHost
from craton_wf.domain.states import HostStatus, JobStatus
from craton_wf.domain.waves import wave_end
from craton_wf.engine.events import record_event
from craton_wf.engine.webhooks import enqueue_event, job_event_data

_UNFINISHED_HOSTS = [HostStatus.PENDING.value, HostStatus.RUNNING.value]


def has_waves(job: Job) -> bool:
    return bool(job.wave_sizes)


def wave_label(job: Job) -> str:
    return f"wave {job.current_wave}/{len(job.wave_sizes or [])}"


def first_wave(session: Session, job: Job) -> None:
    """Open wave 1 of a job just created with waves."""
    job.current_wave = 1
    _record_wave_started(session, job)


SetStatus = Callable[[Job, JobStatus, datetime], None]


def hosts_admitted(session: Session, job: Job, now: datetime, set_status: SetStatus) -> int | None:
    """The position below which hosts may start now; None while the job waits
    between waves (a pause or a gate). Ends the wave under way when it is over,
    and starts the next one when nothing holds it back. ``set_status``: the
    scheduler's checked status change (a gate pauses the job)."""
    sizes = job.wave_sizes or []
    if job.status == JobStatus.PAUSED.value:
        return None
    if job.next_wave_at is not None:
        if now < job.next_wave_at:
            return None
        job.next_wave_at = None
        _start_next_wave(session, job)
    end = wave_end(sizes, job.current_wave)
    if job.current_wave >= len(sizes) or not _wave_is_over(session, job, end):
        return end
    _record_wave_event(session, job, "wave_finished", f"{wave_label(job)} finished", 0)
    following = f"wave {job.current_wave + 1}/{len(sizes)}"
    if job.wave_gate == "approve":
        set_status(job, JobStatus.PAUSED, now)
        message = f"waiting for job-resume before {following}"
        _record_wave_event(session, job, "job_paused", message, 1)
        paused = job_event_data(job)
        paused["job"]["next_wave"] = {"wave": job.current_wave + 1, "waves": len(sizes)}
        enqueue_event(session, job.project_id, "job.paused", paused)
        return None
    if job.wave_pause_seconds > 0:
        job.next_wave_at = now + timedelta(seconds=job.wave_pause_seconds)
        message = f"{following} starts in {job.wave_pause_seconds}s"
        starts_at = job.next_wave_at.isoformat()
        _record_wave_event(session, job, "wave_waiting", message, 1, starts_at=starts_at)
        return None
    _start_next_wave(session, job)
    return wave_end(sizes, job.current_wave)


def next_wave_resumed(session: Session, job: Job, by: str) -> None:
    """The next wave of a job resumed from its gate (the caller set it RUNNING)."""
    record_event(session, job.id, "job_resumed", f"resumed by {by}", by=by)
    _start_next_wave(session, job)


def due_wave_jobs(session: Session, now: datetime, limit: int = 50) -> list[int]:
    """Ids of jobs whose wave pause is over: the next wave is due to start."""
    return list(
        session.execute(
            select(Job.id).where(Job.next_wave_at <= now).order_by(Job.next_wave_at).limit(limit)
        ).scalars()
    )


def _wave_is_over(session: Session, job: Job, end: int) -> bool:
    left = session.execute(
        select(JobHost.id)
        .where(
            JobHost.job_id == job.id,
            JobHost.status.in_(_UNFINISHED_HOSTS),
            JobHost.position < end,
        )
        .limit(1)
    ).first()
    return left is None


def _start_next_wave(session: Session, job: Job) -> None:
    job.current_wave += 1
    _record_wave_started(session, job)


def _record_wave_started(session: Session, job: Job) -> None:
    size = (job.wave_sizes or [])[job.current_wave - 1]
    message = f"{wave_label(job)}: {size} host(s)"
    _record_wave_event(session, job, "wave_started", message, 0, hosts=size)


def _record_wave_event(
    session: Session, job: Job, kind: str, message: str, ahead: int, **data: Any
) -> None:
    """An event of the wave under way (``ahead`` 0) or of the next one (1)."""
    waves = len(job.wave_sizes or [])
    wave = job.current_wave + ahead
    record_event(session, job.id, kind, message, wave=wave, waves=waves, **data)
