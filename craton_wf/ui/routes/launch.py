"""Launching a job from the console: the form of a workflow (or of one task), and its post.

``POST /ui/jobs`` is ``POST /v1/jobs``: the same policy (``may_run_task`` and
the approvals are the service's), the same model checking the request
(``ui.launch_form``), the same service call with the same arguments, and the
same audit action (``job.create``). A refused launch shows the form again
with the service's message and everything that was typed, under the status
the API would answer; nothing of it is stored (the attempt runs in a
savepoint that is rolled back; the audit event of the refusal is kept). A
launch that succeeds leads to the new job's page.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from craton_wf.api.deps import SessionDep, SettingsDep, wake_runner
from craton_wf.errors import CratonError, InvalidInput
from craton_wf.services import jobs as job_service
from craton_wf.services import policy
from craton_wf.services import tasks as task_service
from craton_wf.services import workflows as workflow_service
from craton_wf.services.console import SignedIn
from craton_wf.services.inventory_tree import inventory_tree
from craton_wf.ui import PREFIX
from craton_wf.ui.deps import CheckedForm, ConsoleUser
from craton_wf.ui.launch_form import job_request, typed_fields
from craton_wf.ui.render import page
from craton_wf.ui.routes.workflows import steps_graph

router = APIRouter(prefix=PREFIX)
DEFAULTS = {"concurrency": "1", "max_failures": "0"}


def launch_page(
    request: Request,
    session: Any,
    user: SignedIn,
    fields: dict[str, str],
    error: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    """The launch form of the workflow or task ``fields`` name, filled with ``fields``."""
    me = user.principal
    context: dict[str, Any]
    if fields.get("workflow", "").strip():
        policy.authorize(me, "GET", "/v1/workflows/{workflow_id}")
        workflow = workflow_service.get_workflow(session, me.project_id, fields["workflow"].strip())
        wanted = fields.get("workflow_version", "").strip()
        version = (
            int(wanted) if wanted.isascii() and wanted.isdigit() and len(wanted) < 10 else None
        )
        shown = workflow_service.get_version(session, workflow, version)
        steps = shown.steps
        context = {"workflow": workflow, "shown": shown}
        fields = {**fields, "workflow": str(workflow.id), "workflow_version": str(shown.version)}
    elif fields.get("task", "").strip():
        policy.authorize(me, "GET", "/v1/tasks/{task_id}")
        task = task_service.get_visible_task(session, me, fields["task"].strip())
        steps = [{"name": task.name, "task_id": task.id, "task_name": task.name}]
        context = {"task": task}
        fields = {**fields, "task": str(task.id)}
    else:
        raise InvalidInput("give exactly one of workflow or task")
    tree = inventory_tree(session, me.project_id)
    regions = [region for cloud in tree for region in cloud.regions]
    return page(
        request,
        "workflow_launch.html",
        user,
        status_code=status_code,
        fields=fields,
        error=error,
        steps=steps,
        graph=steps_graph(steps),
        regions=sorted({region.name for region in regions}),
        cells=sorted({cell.name for region in regions for cell in region.cells}),
        **context,
    )


@router.get("/workflows/{workflow_id}/launch", response_class=HTMLResponse)
def workflow_launch_form(
    workflow_id: str,
    request: Request,
    session: SessionDep,
    user: ConsoleUser,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> HTMLResponse:
    policy.authorize(user.principal, "POST", "/v1/jobs")
    fields = {**DEFAULTS, "workflow": workflow_id, "workflow_version": str(version or "")}
    return launch_page(request, session, user, fields)


@router.get("/tasks/{task_id}/launch", response_class=HTMLResponse)
def task_launch_form(
    task_id: str, request: Request, session: SessionDep, user: ConsoleUser
) -> HTMLResponse:
    policy.authorize(user.principal, "POST", "/v1/jobs")
    return launch_page(request, session, user, {**DEFAULTS, "task": task_id})


@router.post("/jobs", response_model=None)
def launch(
    request: Request,
    response: Response,
    session: SessionDep,
    user: ConsoleUser,
    settings: SettingsDep,
    form: CheckedForm,
) -> Response:
    me = user.principal
    policy.authorize(me, "POST", "/v1/jobs")
    fields = typed_fields(form)
    try:
        with session.begin_nested():
            job = job_service.create_job(
                session,
                me.project_id,
                me.user_id,
                job_request(fields),
                principal=me,
                require_approval=settings.require_approval,
            )
    except CratonError as exc:
        if exc.status >= 500:  # the server's trouble, not the form's: the error page
            raise
        # The audit event, written with the request's transaction, reads the status
        # from ``response``, not from the page returned: a refusal is the refusal.
        response.status_code = exc.status
        return launch_page(request, session, user, fields, exc.message, exc.status)
    wake_runner(request)
    # The request's own answer names the job as the API's does: its audit event's object.
    response.status_code = 303
    response.headers["location"] = f"/ui/jobs/{job.id}"
    return RedirectResponse(response.headers["location"], status_code=303)
