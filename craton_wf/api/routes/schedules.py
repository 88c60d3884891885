"""Schedules under ``/v1/schedules``: a job template on a cron expression; written,
paused and resumed by admins; each lists its next fire times and what its fires gave."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from craton_wf.api.deps import Authorized, CurrentUser, PageDep, SessionDep, created, page_links
from craton_wf.api.openapi import API_ERRORS
from craton_wf.api.schemas import (
    ScheduleCreate,
    ScheduleFireList,
    ScheduleFireRead,
    ScheduleList,
    ScheduleRead,
    ScheduleUpdate,
)
from craton_wf.db.models import JobTemplate, Schedule
from craton_wf.services import schedules as schedule_service

router = APIRouter(
    prefix="/v1", dependencies=[Authorized], tags=["schedules"], responses=API_ERRORS
)


def schedule_read(session: Any, schedule: Schedule) -> ScheduleRead:
    read = ScheduleRead.model_validate(schedule)
    read.next_fires = schedule_service.next_fires(schedule)
    template = session.get(JobTemplate, schedule.template_id)
    read.template_name = template.name if template else None
    return read


@router.post("/schedules", status_code=201)
def create_schedule(
    body: ScheduleCreate, request: Request, response: Response, session: SessionDep, me: CurrentUser
) -> ScheduleRead:
    schedule = schedule_service.create_schedule(session, me.project_id, me.user_id, body)
    created(response, request, f"schedules/{schedule.id}")
    return schedule_read(session, schedule)


@router.get("/schedules", response_model=ScheduleList)
def list_schedules(
    request: Request, session: SessionDep, me: CurrentUser, page: PageDep, name: str | None = None
) -> dict[str, Any]:
    result = schedule_service.list_schedules(session, me.project_id, page, name)
    return {
        "schedules": [schedule_read(session, s) for s in result.items],
        "links": page_links(request, result),
    }


@router.get("/schedules/{schedule_id}")
def show_schedule(schedule_id: str, session: SessionDep, me: CurrentUser) -> ScheduleRead:
    return schedule_read(
        session, schedule_service.get_schedule(session, me.project_id, schedule_id)
    )


@router.put("/schedules/{schedule_id}")
def update_schedule(
    schedule_id: str, body: ScheduleUpdate, session: SessionDep, me: CurrentUser
) -> ScheduleRead:
    schedule = schedule_service.get_schedule(session, me.project_id, schedule_id)
    return schedule_read(session, schedule_service.update_schedule(session, schedule, body))


@router.delete("/schedules/{schedule_id}", status_code=204)
def delete_schedule(schedule_id: str, session: SessionDep, me: CurrentUser) -> Response:
    schedule_service.delete_schedule(
        session, schedule_service.get_schedule(session, me.project_id, schedule_id)
    )
    return Response(status_code=204)


@router.post("/schedules/{schedule_id}/pause")
def pause_schedule(schedule_id: str, session: SessionDep, me: CurrentUser) -> ScheduleRead:
    schedule = schedule_service.get_schedule(session, me.project_id, schedule_id)
    return schedule_read(session, schedule_service.set_paused(session, schedule, True))


@router.post("/schedules/{schedule_id}/resume")
def resume_schedule(schedule_id: str, session: SessionDep, me: CurrentUser) -> ScheduleRead:
    """Resumed from now: fires that came due while paused are not made up."""
    schedule = schedule_service.get_schedule(session, me.project_id, schedule_id)
    return schedule_read(session, schedule_service.set_paused(session, schedule, False))


@router.get("/schedules/{schedule_id}/fires", response_model=ScheduleFireList)
def list_fires(schedule_id: str, session: SessionDep, me: CurrentUser) -> dict[str, Any]:
    schedule = schedule_service.get_schedule(session, me.project_id, schedule_id)
    return {
        "fires": [
            ScheduleFireRead.model_validate(f)
            for f in schedule_service.list_fires(session, schedule)
        ]
    }
