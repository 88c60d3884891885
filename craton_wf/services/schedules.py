"""Schedules: a job template launched on a cron expression in a time zone.

Written by admins. The schedule keeps the parameters every launch gets; they
are checked against the template when the schedule is written, as a launch
would check them. Each fire is launched as the schedule's author, judged at
fire time (``launch_scheduled``): an author who lost the role, or a task no
longer READY, fails that fire (recorded on the fire, ``list_fires``), not the
schedule. Firing itself is the engine's (``engine.schedule_firing``).

``next_fire_at`` is computed when the schedule is written or resumed, from
now: resuming never fires what came due while it was paused.
"""

from __future__ import annotations

from datetime import datetime
from itertools import islice
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from craton_wf.db.models import JobTemplate, Schedule, ScheduleFire, User, utcnow
from craton_wf.domain.cron import check_cron, fire_times, zone
from craton_wf.errors import Conflict
from craton_wf.services import templates as template_service
from craton_wf.services.auth import authenticate_user
from craton_wf.services.inputs import ScheduleCreate, ScheduleUpdate, TemplateLaunch
from craton_wf.services.lookups import check_name, find_by_ref, flush_unique
from craton_wf.services.pagination import Page, PageRequest, paginate, scoped

SCHEDULE_SORT_KEYS = ("id", "name", "next_fire_at", "created_at")
SHOWN_FIRES = 3  # next fire times a schedule's reading lists


def create_schedule(
    session: Session, project_id: str, user_id: int | None, data: ScheduleCreate
) -> Schedule:
    schedule = Schedule(project_id=project_id, created_by=user_id)
    _apply(
        session, schedule, data, data.model_fields_set | {"cron", "timezone", "template", "params"}
    )
    schedule.missed_policy, schedule.overlap_policy = data.missed_policy, data.overlap_policy
    schedule.paused = data.paused
    _plan(schedule)
    session.add(schedule)
    flush_unique(session, "schedule", schedule.name)
    return schedule


def update_schedule(session: Session, schedule: Schedule, data: ScheduleUpdate) -> Schedule:
    given = data.model_fields_set
    _apply(session, schedule, data, given)
    for field in ("missed_policy", "overlap_policy", "paused"):
        if field in given and getattr(data, field) is not None:
            setattr(schedule, field, getattr(data, field))
    if given & {"cron", "timezone", "paused"}:
        _plan(schedule)
    flush_unique(session, "schedule", schedule.name)
    return schedule


def _apply(
    session: Session, schedule: Schedule, data: ScheduleCreate | ScheduleUpdate, given: set[str]
) -> None:
    if "name" in given and data.name is not None:
        schedule.name = check_name(data.name, "schedule")
    if "template" in given and data.template is not None:
        schedule.template_id = template_service.get_template(
            session, schedule.project_id, data.template
        ).id
    if "cron" in given and data.cron is not None:
        schedule.cron = check_cron(data.cron)
    if "timezone" in given and data.timezone is not None:
        zone(data.timezone)
        schedule.timezone = data.timezone
    if "params" in given and data.params is not None:
        schedule.params = data.params
    if given & {"template", "params"}:
        template = session.get(JobTemplate, schedule.template_id)
        assert template is not None
        template_service.launch_values(template, schedule.params or {})  # 422 naming a parameter


def _plan(schedule: Schedule, now: datetime | None = None) -> None:
    """The next fire time from now; none while paused."""
    schedule.queued_fire_at = None if schedule.paused else schedule.queued_fire_at
    schedule.next_fire_at = (
        None
        if schedule.paused
        else next(fire_times(schedule.cron, schedule.timezone, now or utcnow()))
    )


def set_paused(session: Session, schedule: Schedule, paused: bool) -> Schedule:
    schedule.paused = paused
    _plan(schedule)
    session.flush()
    return schedule


def next_fires(schedule: Schedule, count: int = SHOWN_FIRES) -> list[datetime]:
    if schedule.paused or schedule.next_fire_at is None:
        return []
    first = schedule.next_fire_at
    later = islice(fire_times(schedule.cron, schedule.timezone, first), count - 1)
    return [first, *later]


def get_schedule(session: Session, project_id: str, ref: Any) -> Schedule:
    return find_by_ref(session, Schedule, project_id, ref, "schedule")


def list_schedules(
    session: Session, project_id: str, page: PageRequest, name: str | None = None
) -> Page[Schedule]:
    stmt = scoped(Schedule, project_id)
    if name:
        stmt = stmt.where(Schedule.name == name)
    return paginate(session, stmt, Schedule, page, SCHEDULE_SORT_KEYS)


def delete_schedule(session: Session, schedule: Schedule) -> None:
    session.delete(schedule)
    session.flush()


def list_fires(session: Session, schedule: Schedule, limit: int = 100) -> list[ScheduleFire]:
    return list(
        session.execute(
            select(ScheduleFire)
            .where(ScheduleFire.schedule_id == schedule.id)
            .order_by(ScheduleFire.fire_time.desc())
            .limit(limit)
        ).scalars()
    )


def launch_scheduled(session: Session, schedule: Schedule, require_approval: bool = True) -> int:
    """The job of one fire, launched as the schedule's author would launch it now."""
    author = session.get(User, schedule.created_by) if schedule.created_by else None
    if author is None:
        raise Conflict(f"schedule {schedule.name}: its author no longer exists")
    me = authenticate_user(session, user_name=author.name, project_id=schedule.project_id)
    template = session.get(JobTemplate, schedule.template_id)
    assert template is not None  # deleting a template deletes its schedules
    job = template_service.launch(
        session, me, template, TemplateLaunch(params=schedule.params or {}), require_approval
    )
    return job.id
