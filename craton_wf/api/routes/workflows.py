"""Workflows, under ``/v1/workflows`` and the spec's ``/v1/workflow``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from craton_wf.api.deps import Authorized, CurrentUser, PageDep, SessionDep, created, page_links
from craton_wf.api.openapi import API_ERRORS
from craton_wf.api.schemas import (
    WorkflowCheck,
    WorkflowCreate,
    WorkflowList,
    WorkflowRead,
    WorkflowUpdate,
    WorkflowVersionList,
    WorkflowVersionRead,
)
from craton_wf.services import workflows as workflow_service
from craton_wf.services.lookups import find_by_ref

router = APIRouter()


def workflow_read(session: Any, workflow: Any, version: int | None = None) -> WorkflowRead:
    row = workflow_service.get_version(session, workflow, version)
    return WorkflowRead(
        id=workflow.id,
        project_id=workflow.project_id,
        name=workflow.name,
        description=row.description,
        version=row.version,
        latest_version=workflow.latest_version,
        steps=row.steps,
        created_at=workflow.created_at,
        updated_at=workflow.updated_at,
    )


def _routes(base: str) -> APIRouter:
    sub = APIRouter(
        prefix="/v1", dependencies=[Authorized], tags=["workflows"], responses=API_ERRORS
    )
    plural = "workflows"

    @sub.get(base, name=f"list_{base.strip('/')}", response_model=WorkflowList)
    def list_workflows(
        request: Request,
        session: SessionDep,
        me: CurrentUser,
        page: PageDep,
        name: str | None = None,
    ) -> dict[str, Any]:
        result = workflow_service.list_workflows(session, me.project_id, page, {"name": name})
        return {
            plural: [workflow_read(session, w) for w in result.items],
            "links": page_links(request, result),
        }

    @sub.post(base + "/validate", name=f"validate_{base.strip('/')}", response_model=WorkflowCheck)
    def validate_workflow(
        body: WorkflowUpdate, session: SessionDep, me: CurrentUser
    ) -> dict[str, Any]:
        """Check a workflow as creating it would, and write nothing (a lint)."""
        return workflow_service.check_workflow(session, me.project_id, body, me)

    @sub.post(base, status_code=201, name=f"create_{base.strip('/')}")
    def create_workflow(
        body: WorkflowCreate,
        request: Request,
        response: Response,
        session: SessionDep,
        me: CurrentUser,
    ) -> WorkflowRead:
        workflow = workflow_service.create_workflow(session, me.project_id, me.user_id, body, me)
        created(response, request, f"{plural}/{workflow.id}")
        return workflow_read(session, workflow)

    @sub.get(base + "/{workflow_id}", name=f"show_{base.strip('/')}")
    def show_workflow(
        workflow_id: str, session: SessionDep, me: CurrentUser, version: int | None = None
    ) -> WorkflowRead:
        workflow = find_by_ref(
            session, workflow_service.Workflow, me.project_id, workflow_id, "workflow"
        )
        return workflow_read(session, workflow, version)

    @sub.put(base + "/{workflow_id}", name=f"update_{base.strip('/')}")
    def update_workflow(
        workflow_id: str, body: WorkflowUpdate, session: SessionDep, me: CurrentUser
    ) -> WorkflowRead:
        workflow = find_by_ref(
            session, workflow_service.Workflow, me.project_id, workflow_id, "workflow"
        )
        workflow_service.update_workflow(session, workflow, me.user_id, body, me)
        return workflow_read(session, workflow)

    @sub.delete(base + "/{workflow_id}", status_code=204, name=f"delete_{base.strip('/')}")
    def delete_workflow(workflow_id: str, session: SessionDep, me: CurrentUser) -> Response:
        workflow_service.delete_workflow(
            session,
            find_by_ref(session, workflow_service.Workflow, me.project_id, workflow_id, "workflow"),
        )
        return Response(status_code=204)

    @sub.get(
        base + "/{workflow_id}/versions",
        name=f"versions_{base.strip('/')}",
        response_model=WorkflowVersionList,
    )
    def list_versions(workflow_id: str, session: SessionDep, me: CurrentUser) -> dict[str, Any]:
        workflow = find_by_ref(
            session, workflow_service.Workflow, me.project_id, workflow_id, "workflow"
        )
        return {
            "versions": [
                WorkflowVersionRead.model_validate(v)
                for v in workflow_service.list_versions(session, workflow)
            ]
        }

    return sub


router.include_router(_routes("/workflows"))
router.include_router(_routes("/workflow"))
