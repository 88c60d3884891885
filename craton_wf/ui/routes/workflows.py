"""The workflows pages: the list, and a workflow's versions, steps and graph.

A workflow is read as ``GET /v1/workflows/{workflow_id}`` reads it (by id or
name, in the caller's project; another project's is 404). Each version is
immutable (``services.workflows``), so a version's page is a permanent
picture of what a job of that version ran; the graph is drawn server-side
(``ui.graph``). Launching is ``ui.routes.launch``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from craton_wf.api.deps import SessionDep
from craton_wf.services import policy
from craton_wf.services import workflows as workflow_service
from craton_wf.services.pagination import PageRequest
from craton_wf.ui import PREFIX
from craton_wf.ui.deps import ConsoleUser
from craton_wf.ui.graph import workflow_svg
from craton_wf.ui.render import page

router = APIRouter(prefix=PREFIX)
PAGE_SIZE = 50


def steps_graph(steps: list[dict[str, Any]]) -> Markup:
    """The steps drawn as a graph, each step leading to its task's page."""
    return workflow_svg(steps, link_of={s["name"]: f"/ui/tasks/{s['task_id']}" for s in steps})


@router.get("/workflows", response_class=HTMLResponse)
def workflow_list(
    request: Request,
    session: SessionDep,
    user: ConsoleUser,
    marker: Annotated[str, Query(max_length=20)] = "",
) -> HTMLResponse:
    policy.authorize(user.principal, "GET", "/v1/workflows")
    result = workflow_service.list_workflows(
        session,
        user.principal.project_id,
        PageRequest(limit=PAGE_SIZE, marker=marker or None, sort_keys=("name",)),
        {},
    )
    rows = [
        {"workflow": workflow, "latest": workflow_service.get_version(session, workflow, None)}
        for workflow in result.items
    ]
    return page(request, "workflows.html", user, rows=rows, next_marker=result.next_marker)


@router.get("/workflows/{workflow_id}", response_class=HTMLResponse)
def workflow_page(
    workflow_id: str,
    request: Request,
    session: SessionDep,
    user: ConsoleUser,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> HTMLResponse:
    me = user.principal
    policy.authorize(me, "GET", "/v1/workflows/{workflow_id}")
    workflow = workflow_service.get_workflow(session, me.project_id, workflow_id)
    shown = workflow_service.get_version(session, workflow, version)
    steps = shown.steps
    return page(
        request,
        "workflow.html",
        user,
        workflow=workflow,
        shown=shown,
        versions=workflow_service.list_versions(session, workflow),
        steps=steps,
        graph=workflow_svg(steps, link_of={s["name"]: f"/ui/tasks/{s['task_id']}" for s in steps}),
    )
