"""Schedule firing: exactly one job per due fire time, whatever the number of runners.

Every runner calls :func:`fire_due_schedules` every few seconds. A schedule is
fired only by the runner that moves it on: ``UPDATE schedules SET
next_fire_at = <next> WHERE id = ? AND next_fire_at = <due>`` is a
compare-and-set (on PostgreSQL the row lock makes a second runner wait, then
find the row moved and touch nothing). The same transaction writes the fire's
row (unique on schedule and fire time) and makes the job, so a runner killed
between claim and job loses nothing (its transaction never committed: the
schedule is still due) and doubles nothing (a second job for the fire would
break the unique key).

Jobs are made by a ``launch`` function handed in by whoever starts the runner
(``services.schedules.launch_scheduled``): the engine does not reach up into
the API's use cases.

Missed fires (nothing ran when they were due; older than ``grace``): with
``skip`` the schedule goes on with its next future fire and records that it
missed some; with ``run-once`` one job stands for all of them, then it goes
on. A fire within ``grace`` of its time is on time.

Overlap, while the schedule's last job has not finished: ``allow`` launches
anyway; ``skip-if-running`` records the fire as skipped; ``queue`` keeps the
latest such fire and launches it when that job finishes.

``now`` is a parameter so tests drive the clock: five minutes of an
every-minute schedule are fired in milliseconds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from craton_wf.db.engine import transaction
from craton_wf.db.models import Job, Schedule, ScheduleFire, utcnow
from craton_wf.domain.cron import fire_times
from craton_wf.domain.states import FINAL_JOB_STATES
from craton_wf.errors import CratonError

log = logging.getLogger(__name__)

Launch = Callable[[Session, Schedule], int]  # makes the schedule's job; answers its id
GRACE = timedelta(seconds=60)
BATCH = 100  # due schedules looked at per call
FINAL = frozenset(state.value for state in FINAL_JOB_STATES)


def fire_due_schedules(
    sessions: sessionmaker[Session],
    launch: Launch,
    now: datetime | None = None,
    grace: timedelta = GRACE,
) -> int:
    """Fire what is due at ``now`` (default: the clock); answers the jobs made."""
    now = now or utcnow()
    with transaction(sessions) as session:
        due = session.execute(
            select(Schedule.id, Schedule.next_fire_at)
            .where(Schedule.paused.is_(False), Schedule.next_fire_at <= now)
            .order_by(Schedule.next_fire_at)
            .limit(BATCH)
        ).all()
        queued = session.execute(
            select(Schedule.id, Schedule.queued_fire_at)
            .where(Schedule.paused.is_(False), Schedule.queued_fire_at.is_not(None))
            .limit(BATCH)
        ).all()
    made = 0
    for schedule_id, due_at in due:
        assert due_at is not None  # the query asked for it <= now
        with transaction(sessions) as session:
            made += _fire(session, schedule_id, due_at, now, launch, grace)
    for schedule_id, queued_at in queued:
        assert queued_at is not None
        with transaction(sessions) as session:
            made += _fire_queued(session, schedule_id, queued_at, launch)
    return made


def _fire(
    session: Session,
    schedule_id: int,
    due_at: datetime,
    now: datetime,
    launch: Launch,
    grace: timedelta,
) -> int:
    schedule = session.get(Schedule, schedule_id)
    if schedule is None:
        return 0
    times = [due_at]
    upcoming = fire_times(schedule.cron, schedule.timezone, due_at)
    following = next(upcoming)
    while following <= now:
        times.append(following)
        following = next(upcoming)
    claimed = session.execute(
        update(Schedule)
        .where(Schedule.id == schedule_id, Schedule.next_fire_at == due_at)
        .values(next_fire_at=following)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if claimed != 1:
        return 0  # another runner moved it on: its fire
    session.refresh(schedule)
    missed = [t for t in times if now - t > grace]
    on_time = [t for t in times if now - t <= grace]
    made = 0
    if missed and schedule.missed_policy == "run-once":
        made += _launch_or_hold(session, schedule, missed[-1], launch, f"for {len(missed)} missed")
    elif missed:
        _record(session, schedule, missed[-1], "missed", None, f"{len(missed)} fire(s) missed")
    for fire_time in on_time:
        made += _launch_or_hold(session, schedule, fire_time, launch)
    return made


def _launch_or_hold(
    session: Session, schedule: Schedule, fire_time: datetime, launch: Launch, note: str = ""
) -> int:
    running = _last_job_running(session, schedule)
    if running is not None and schedule.overlap_policy == "skip-if-running":
        _record(session, schedule, fire_time, "skipped", None, f"job {running} still running")
        return 0
    if running is not None and schedule.overlap_policy == "queue":
        _record(session, schedule, fire_time, "queued", None, f"after job {running}")
        schedule.queued_fire_at = fire_time
        return 0
    fire = _record(session, schedule, fire_time, "launching", None, note or None)
    return _launch(session, schedule, fire, launch)


def _fire_queued(session: Session, schedule_id: int, queued_at: datetime, launch: Launch) -> int:
    schedule = session.get(Schedule, schedule_id)
    if schedule is None or _last_job_running(session, schedule) is not None:
        return 0
    claimed = session.execute(
        update(Schedule)
        .where(Schedule.id == schedule_id, Schedule.queued_fire_at == queued_at)
        .values(queued_fire_at=None)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if claimed != 1:
        return 0
    session.refresh(schedule)
    fire = session.execute(
        select(ScheduleFire).where(
            ScheduleFire.schedule_id == schedule_id, ScheduleFire.fire_time == queued_at
        )
    ).scalar_one()
    return _launch(session, schedule, fire, launch)


def _launch(session: Session, schedule: Schedule, fire: ScheduleFire, launch: Launch) -> int:
    """The fire's job, in a savepoint: a launch the platform refuses (a task not
    READY, a creator without the role any more) is recorded, and the schedule goes on."""
    try:
        with session.begin_nested():
            job_id = launch(session, schedule)
    except CratonError as exc:
        fire.outcome, fire.message = "failed", exc.message[:2000]
        log.warning("schedule %s: fire at %s failed: %s", schedule.id, fire.fire_time, exc)
        session.flush()
        return 0
    fire.outcome, fire.job_id = "launched", job_id
    schedule.last_job_id, schedule.last_fire_at = job_id, fire.fire_time
    session.flush()
    return 1


def _record(
    session: Session,
    schedule: Schedule,
    fire_time: datetime,
    outcome: str,
    job_id: int | None,
    message: str | None,
) -> ScheduleFire:
    fire = ScheduleFire(
        schedule_id=schedule.id,
        fire_time=fire_time,
        outcome=outcome,
        job_id=job_id,
        message=message,
    )
    session.add(fire)
    session.flush()  # the unique key: a second row for this fire fails the whole fire
    return fire


def _last_job_running(session: Session, schedule: Schedule) -> int | None:
    if schedule.last_job_id is None:
        return None
    status = session.execute(
        select(Job.status).where(Job.id == schedule.last_job_id)
    ).scalar_one_or_none()
    return schedule.last_job_id if status is not None and status not in FINAL else None
