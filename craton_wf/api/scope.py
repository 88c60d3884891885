"""The objects a route's path names, looked up in the caller's project.

``api.deps.authorize_route`` asks here when a route's rule refuses the
caller. An object the caller's project does not hold — another project's, or
none at all — answers 404, not 403, whatever the caller's role: a refusal
never tells that another project's object exists. The objects of the
caller's own project keep their 403.

Each object is found the way its route finds it (the same service call), so
the 404 is the one the route would have answered to a caller allowed to call
it. A path this module does not know leaves the refusal a 403; the
authorization matrix test (tests/unit/test_authorization_matrix.py), which
expects another project's object to answer 404 on every route, then fails.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.orm import Session

from craton_wf.db.models import Workflow
from craton_wf.errors import NotFound
from craton_wf.services import (
    inventory,
    jobs,
    policy,
    project_secrets,
    schedules,
    tasks,
    templates,
    users,
)
from craton_wf.services.auth import Principal
from craton_wf.services.lookups import find_by_ref
from craton_wf.services.webhooks import get_webhook

Params = Mapping[str, Any]
Lookup = Callable[[Session, Principal, Params], object]


def _project(session: Session, me: Principal, params: Params) -> object:
    return inventory.visible_project(
        session, me.user_id, me.is_root, me.project_id, params["project_id"]
    )


def _inventory(kind: str) -> Lookup:
    def find(session: Session, me: Principal, params: Params) -> object:
        ref = params.get("object_id", params.get("host_id"))
        found = inventory.get_variable_owner(session, me.project_id, kind, ref)
        if kind == "hosts":
            policy.check_host_in_scope(session, me, found.id)
        return found

    return find


def _task(session: Session, me: Principal, params: Params) -> object:
    task = tasks.get_owned_task(session, me.project_id, params["task_id"])
    if not policy.may_see_task(me, task):  # restricted to roles the caller does not hold
        raise NotFound(f"task {params['task_id']} not found")
    if "build_id" in params:
        return tasks.get_build(session, task, params["build_id"])
    return task


def _workflow(session: Session, me: Principal, params: Params) -> object:
    return find_by_ref(session, Workflow, me.project_id, params["workflow_id"], "workflow")


LOOKUPS: dict[tuple[str, str], Lookup] = {
    ("projects", "project_id"): _project,
    ("projects", "object_id"): _inventory("projects"),
    ("clouds", "object_id"): _inventory("clouds"),
    ("regions", "object_id"): _inventory("regions"),
    ("cells", "object_id"): _inventory("cells"),
    ("hosts", "object_id"): _inventory("hosts"),
    ("hosts", "host_id"): _inventory("hosts"),
    ("tasks", "task_id"): _task,
    ("workflows", "workflow_id"): _workflow,
    ("workflow", "workflow_id"): _workflow,  # the spec's name of the same routes
    ("jobs", "job_id"): lambda s, me, p: jobs.get_job(s, me.project_id, p["job_id"]),
    ("job-templates", "template_id"): lambda s, me, p: templates.get_template(
        s, me.project_id, p["template_id"]
    ),
    ("schedules", "schedule_id"): lambda s, me, p: schedules.get_schedule(
        s, me.project_id, p["schedule_id"]
    ),
    ("users", "user_id"): lambda s, me, p: users.get_user(s, me, p["user_id"]),
    ("tokens", "token_id"): lambda s, me, p: users.get_token(s, me, p["token_id"]),
    ("secrets", "secret_id"): lambda s, me, p: project_secrets.get_secret(
        s, me.project_id, p["secret_id"]
    ),
    ("webhooks", "webhook_id"): lambda s, me, p: get_webhook(s, me.project_id, p["webhook_id"]),
}


def require_named_objects(session: Session, me: Principal, route: str, params: Params) -> None:
    """NotFound unless the objects ``route``'s path names are in ``me``'s project."""
    if not params:
        return
    parts = route.split("/")  # "/v1/hosts/{host_id}/labels" -> "hosts"
    family = parts[2] if len(parts) > 2 and parts[1] == "v1" else ""
    find = LOOKUPS.get((family, next(iter(params))))
    if find is not None:
        find(session, me, params)
