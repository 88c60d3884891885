"""Job templates under ``/v1/job-templates``: written by admins, launched (``…/launch``)
by operators, and by auditors when every task they run is an audit."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from craton_wf.api.deps import (
    Authorized,
    CurrentUser,
    PageDep,
    SessionDep,
    SettingsDep,
    created,
    page_links,
    wake_runner,
)
from craton_wf.api.openapi import API_ERRORS
from craton_wf.api.routes.jobs import job_read
from craton_wf.api.schemas import (
    JobRead,
    JobTemplateCreate,
    JobTemplateList,
    JobTemplateRead,
    JobTemplateUpdate,
    TemplateLaunch,
)
from craton_wf.db.models import JobTemplate
from craton_wf.services import templates as template_service

router = APIRouter(
    prefix="/v1", dependencies=[Authorized], tags=["templates"], responses=API_ERRORS
)


def template_read(session: Any, template: JobTemplate) -> JobTemplateRead:
    read = JobTemplateRead.model_validate(template)
    for name, value in template_service.names_of(session, template).items():
        setattr(read, name, value)
    return read


@router.post("/job-templates", status_code=201)
def create_template(
    body: JobTemplateCreate,
    request: Request,
    response: Response,
    session: SessionDep,
    me: CurrentUser,
) -> JobTemplateRead:
    template = template_service.create_template(session, me, body)
    created(response, request, f"job-templates/{template.id}")
    return template_read(session, template)


@router.get("/job-templates", response_model=JobTemplateList)
def list_templates(
    request: Request, session: SessionDep, me: CurrentUser, page: PageDep, name: str | None = None
) -> dict[str, Any]:
    result = template_service.list_templates(session, me.project_id, page, name)
    return {
        "job_templates": [template_read(session, t) for t in result.items],
        "links": page_links(request, result),
    }


@router.get("/job-templates/{template_id}")
def show_template(template_id: str, session: SessionDep, me: CurrentUser) -> JobTemplateRead:
    return template_read(
        session, template_service.get_template(session, me.project_id, template_id)
    )


@router.put("/job-templates/{template_id}")
def update_template(
    template_id: str, body: JobTemplateUpdate, session: SessionDep, me: CurrentUser
) -> JobTemplateRead:
    template = template_service.get_template(session, me.project_id, template_id)
    return template_read(session, template_service.update_template(session, me, template, body))


@router.delete("/job-templates/{template_id}", status_code=204)
def delete_template(template_id: str, session: SessionDep, me: CurrentUser) -> Response:
    template_service.delete_template(
        session, template_service.get_template(session, me.project_id, template_id)
    )
    return Response(status_code=204)


@router.post("/job-templates/{template_id}/launch", status_code=201)
def launch_template(
    template_id: str,
    body: TemplateLaunch,
    request: Request,
    response: Response,
    session: SessionDep,
    me: CurrentUser,
    settings: SettingsDep,
) -> JobRead:
    """A job from the template; ``params`` fill in its declared parameters."""
    template = template_service.get_template(session, me.project_id, template_id)
    job = template_service.launch(
        session, me, template, body, require_approval=settings.require_approval
    )
    created(response, request, f"jobs/{job.id}")
    read = job_read(session, job)
    wake_runner(request)
    return read
