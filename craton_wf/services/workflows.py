"""Workflows: named, versioned lists of steps.

Each PUT that changes the steps or description stores a new immutable
``WorkflowVersion``; jobs copy the version they start with, so editing a
workflow never changes a running job.

A step's ``secrets`` choose among the secrets its task declares, never more:
what a task's container gets in its environment is part of what its
approval covered (:mod:`craton_wf.services.approvals`), and a workflow is
written by an admin alone, with no second pair of eyes. A step naming a
secret its task does not declare is refused (422 naming the step and the
secret); the way to give a task another secret is to change the task, which
needs a new approval.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from craton_wf.db.models import Job, Task, Workflow, WorkflowVersion
from craton_wf.domain.graph import name_steps, validate_steps
from craton_wf.domain.states import FINAL_JOB_STATES
from craton_wf.errors import Conflict, InvalidInput, NotFound
from craton_wf.services.auth import Principal
from craton_wf.services.inputs import StepIn, WorkflowCreate, WorkflowUpdate
from craton_wf.services.lookups import check_name, find_by_ref, flush_unique
from craton_wf.services.pagination import Page, PageRequest, paginate, scoped
from craton_wf.services.project_secrets import check_step_secrets


def normalize_steps(
    session: Session,
    project_id: str,
    steps: Sequence[StepIn | str],
    me: Principal | None = None,
) -> list[dict[str, Any]]:
    """Resolve each step's task and fill in defaults; validate the whole graph.

    A step given as a string names its task. ``StepIn`` bounds each field
    (timeout, retries, retry delay, the types of args and depends_on); what
    is left is what needs the database (the task, its declared secrets) and
    the graph as a whole. With ``me`` (an API caller) a step may name a public
    task of another project, and only tasks the caller may see.
    """
    from craton_wf.services.tasks import find_runnable_task

    resolved = []
    declared: dict[int, list[str]] = {}  # each step's task: the secrets it declares
    for position, given in enumerate(steps, start=1):
        step = StepIn(task=given) if isinstance(given, str) else given
        ref = step.task if step.task is not None else step.task_id
        if ref is None:
            raise InvalidInput(f"step {position} names no task")
        if me is None:
            task = find_by_ref(session, Task, project_id, ref, "task")
        else:
            task = find_runnable_task(session, me, ref)
        resolved.append({**step.model_dump(), "task_id": task.id, "task_name": task.name})
        declared[task.id] = list(task.secrets or [])
    normalized = [
        {
            "name": step["name"],
            "task_id": step["task_id"],
            "task_name": step["task_name"],
            "args": step["args"],
            "timeout": step["timeout"],
            "retries": step["retries"],
            "retry_delay": step["retry_delay"],
            "required": step["required"],
            "once": step["once"],
            "depends_on": step["depends_on"],
            "secrets": check_step_secrets(
                step["name"], step["task_name"], step["secrets"], declared[step["task_id"]]
            ),
        }
        for step in name_steps(resolved)
    ]
    validate_steps(normalized)
    return normalized


def check_workflow(
    session: Session, project_id: str, spec: WorkflowUpdate, me: Principal | None = None
) -> dict[str, Any]:
    """A workflow checked as :func:`create_workflow` checks it (its name if given, its
    tasks, graph and secrets), written nowhere: what it would store, and whether a
    workflow of that name exists already (an update of it, then)."""
    name = check_name(spec.name, "workflow") if spec.name is not None else None
    steps = normalize_steps(session, project_id, spec.steps or [], me)
    exists = name is not None and (
        session.execute(
            select(Workflow.id).where(Workflow.project_id == project_id, Workflow.name == name)
        ).first()
        is not None
    )
    return {
        "valid": True,
        "name": name,
        "description": spec.description,
        "exists": exists,
        "steps": steps,
    }


def create_workflow(
    session: Session,
    project_id: str,
    user_id: int | None,
    spec: WorkflowCreate,
    me: Principal | None = None,
) -> Workflow:
    name = check_name(spec.name, "workflow")
    steps = normalize_steps(session, project_id, spec.steps, me)
    workflow = Workflow(
        project_id=project_id,
        name=name,
        description=spec.description,
        latest_version=1,
        created_by=user_id,
    )
    session.add(workflow)
    flush_unique(session, "workflow", name)
    session.add(
        WorkflowVersion(
            workflow_id=workflow.id,
            version=1,
            steps=steps,
            description=workflow.description,
            created_by=user_id,
        )
    )
    session.flush()
    return workflow


def update_workflow(
    session: Session,
    workflow: Workflow,
    user_id: int | None,
    changes: WorkflowUpdate,
    me: Principal | None = None,
) -> Workflow:
    """Rename it, or store a new version when ``changes`` gives other steps or another
    description (a description given as null clears it)."""
    if changes.name is not None:
        workflow.name = check_name(changes.name, "workflow")
        flush_unique(session, "workflow", workflow.name)
    latest = get_version(session, workflow, None)
    steps = latest.steps
    if changes.steps is not None:
        steps = normalize_steps(session, workflow.project_id, changes.steps, me)
    description = latest.description
    if "description" in changes.model_fields_set:
        description = changes.description
    if steps != latest.steps or description != latest.description:
        workflow.latest_version += 1
        workflow.description = description
        session.add(
            WorkflowVersion(
                workflow_id=workflow.id,
                version=workflow.latest_version,
                steps=steps,
                description=description,
                created_by=user_id,
            )
        )
    session.flush()
    return workflow


def get_workflow(session: Session, project_id: str, ref: Any) -> Workflow:
    return find_by_ref(session, Workflow, project_id, ref, "workflow")


def get_version(session: Session, workflow: Workflow, version: int | None) -> WorkflowVersion:
    wanted = workflow.latest_version if version is None else version
    row = session.execute(
        select(WorkflowVersion).where(
            WorkflowVersion.workflow_id == workflow.id, WorkflowVersion.version == wanted
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"workflow {workflow.name!r} has no version {wanted}")
    return row


def list_versions(session: Session, workflow: Workflow) -> list[WorkflowVersion]:
    stmt = (
        select(WorkflowVersion)
        .where(WorkflowVersion.workflow_id == workflow.id)
        .order_by(WorkflowVersion.version)
    )
    return list(session.execute(stmt).scalars())


def list_workflows(
    session: Session, project_id: str, page: PageRequest, filters: dict[str, Any]
) -> Page[Workflow]:
    stmt = scoped(Workflow, project_id)
    if filters.get("name"):
        stmt = stmt.where(Workflow.name == filters["name"])
    return paginate(session, stmt, Workflow, page, ("id", "name", "created_at"))


def delete_workflow(session: Session, workflow: Workflow) -> None:
    running = session.execute(
        select(Job.id)
        .where(
            Job.workflow_id == workflow.id,
            Job.status.not_in([s.value for s in FINAL_JOB_STATES]),
        )
        .limit(1)
    ).first()
    if running:
        raise Conflict(f"workflow {workflow.name!r} has a job that has not finished")
    session.delete(workflow)
    session.flush()
