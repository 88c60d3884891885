"""The authorization matrix: every route of the app × every role × own and another project.

:data:`EXPECTED` names, for each (method, path template) the app serves, the
least role that may call it in its own project (or ``PUBLIC``) and whether
its path names an object of a project. A route the app serves without an
entry fails :func:`test_every_route_of_the_app_has_an_expectation`, and so
does an entry for a route that is gone.

Every route is then called through the in-process app as each role —
anonymous, viewer, auditor, operator, admin (users of project alpha) and
root — with its path filled with real objects of project alpha, made once for
the module (DELETE, cancel, retry and a user's role change get a fresh object
each call). What is expected:

- anonymous: 401 (a public route: allowed);
- a route that authenticates by its own secret, not by token (a template
  trigger's URL, ``OWN_SECRET``): 401 for every caller here, as no case sends
  the secret, whatever token it brings;
- a role at least the route's: *allowed*, i.e. 2xx, or 409 when the object's
  state refuses the call (approving a build already approved, revoking one
  that is not). Bodies are minimal but valid, so a 422 is never allowed: it
  would hide the 404 below. ``/readyz`` may answer 503: no runner runs here;
- a lower role: 403;
- another project — the same roles held in project bravo, and root acting in
  bravo — on a route naming an object of alpha: 404, never 403, whatever the
  role (no existence leak). Root manages projects and users of every project
  (:data:`ROOT_EVERYWHERE`). On a collection route another project's member
  acts in its own project, which the own-project cases cover; its reads are
  checked to show nothing of alpha's (every alpha object's name holds "alpha").
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from craton_wf.api.app import create_app
from craton_wf.db.engine import make_engine, make_session_factory, transaction
from craton_wf.db.models import Project, RoleAssignment, User, WebhookDelivery
from craton_wf.engine.webhooks import enqueue_event
from craton_wf.services import inventory, project_secrets, webhooks
from craton_wf.services import jobs as job_service
from craton_wf.services import schedules as schedule_service
from craton_wf.services import tasks as task_service
from craton_wf.services import templates as template_service
from craton_wf.services import triggers as trigger_service
from craton_wf.services import workflows as workflow_service
from craton_wf.services.auth import Principal, bootstrap, issue_token
from craton_wf.services.inputs import (
    JobTemplateCreate,
    ScheduleCreate,
    SecretCreate,
    StepIn,
    TaskCreate,
    WorkflowCreate,
)
from craton_wf.services.webhooks import WebhookCreate
from craton_wf.settings import Settings
from tests.conftest import POSTGRES_URL, _truncate_all
from tests.factories import make_ready_task

PUBLIC, VIEWER, AUDITOR, OPERATOR, ADMIN, ROOT = (
    "public",
    "viewer",
    "auditor",
    "operator",
    "admin",
    "root",
)
ROLES = ("anonymous", VIEWER, AUDITOR, OPERATOR, ADMIN, ROOT)
OWN_SECRET = "own-secret"  # no token needed, none accepted: the route's secret (a trigger)
RANK = {PUBLIC: 0, OWN_SECRET: 0, VIEWER: 1, AUDITOR: 2, OPERATOR: 3, ADMIN: 4, ROOT: 5}
OBJECT, COLLECTION = True, False
# A literal public address: no name to look up, whatever the git source rules.
GIT = "https://93.184.215.14/alpha-tasks.git"
HOOK_URL = "https://93.184.215.14/hooks/alpha"  # a literal public address: no lookup

# (method, route template) -> (least role in its own project, names an object of a project)
EXPECTED: dict[tuple[str, str], tuple[str, bool]] = {
    ("GET", "/healthz"): (PUBLIC, COLLECTION),
    ("GET", "/readyz"): (PUBLIC, COLLECTION),
    ("GET", "/metrics"): (PUBLIC, COLLECTION),  # open unless CRATON_WF_METRICS_TOKEN is set
    ("GET", "/docs"): (PUBLIC, COLLECTION),
    ("GET", "/docs/oauth2-redirect"): (PUBLIC, COLLECTION),
    ("GET", "/redoc"): (PUBLIC, COLLECTION),
    ("GET", "/v1/runners"): (VIEWER, COLLECTION),
    ("GET", "/v1/projects"): (VIEWER, COLLECTION),
    ("POST", "/v1/projects"): (ROOT, COLLECTION),
    ("GET", "/v1/projects/{project_id}"): (VIEWER, OBJECT),
    ("PUT", "/v1/projects/{project_id}"): (ADMIN, OBJECT),
    ("DELETE", "/v1/projects/{project_id}"): (ROOT, OBJECT),
    ("GET", "/v1/projects/{object_id}/variables"): (VIEWER, OBJECT),
    ("PUT", "/v1/projects/{object_id}/variables"): (ADMIN, OBJECT),
    ("DELETE", "/v1/projects/{object_id}/variables"): (ADMIN, OBJECT),
    ("GET", "/v1/clouds"): (VIEWER, COLLECTION),
    ("POST", "/v1/clouds"): (ADMIN, COLLECTION),
    ("GET", "/v1/clouds/{object_id}"): (VIEWER, OBJECT),
    ("PUT", "/v1/clouds/{object_id}"): (ADMIN, OBJECT),
    ("DELETE", "/v1/clouds/{object_id}"): (ADMIN, OBJECT),
    ("GET", "/v1/clouds/{object_id}/variables"): (VIEWER, OBJECT),
    ("PUT", "/v1/clouds/{object_id}/variables"): (ADMIN, OBJECT),
    ("DELETE", "/v1/clouds/{object_id}/variables"): (ADMIN, OBJECT),
    ("GET", "/v1/regions"): (VIEWER, COLLECTION),
    ("POST", "/v1/regions"): (ADMIN, COLLECTION),
    ("GET", "/v1/regions/{object_id}"): (VIEWER, OBJECT),
    ("PUT", "/v1/regions/{object_id}"): (ADMIN, OBJECT),
    ("DELETE", "/v1/regions/{object_id}"): (ADMIN, OBJECT),
    ("GET", "/v1/regions/{object_id}/variables"): (VIEWER, OBJECT),
    ("PUT", "/v1/regions/{object_id}/variables"): (ADMIN, OBJECT),
    ("DELETE", "/v1/regions/{object_id}/variables"): (ADMIN, OBJECT),
    ("GET", "/v1/cells"): (VIEWER, COLLECTION),
    ("POST", "/v1/cells"): (ADMIN, COLLECTION),
    ("GET", "/v1/cells/{object_id}"): (VIEWER, OBJECT),
    ("PUT", "/v1/cells/{object_id}"): (ADMIN, OBJECT),
    ("DELETE", "/v1/cells/{object_id}"): (ADMIN, OBJECT),
    ("GET", "/v1/cells/{object_id}/variables"): (VIEWER, OBJECT),
    ("PUT", "/v1/cells/{object_id}/variables"): (ADMIN, OBJECT),
    ("DELETE", "/v1/cells/{object_id}/variables"): (ADMIN, OBJECT),
    ("GET", "/v1/hosts"): (VIEWER, COLLECTION),
    ("GET", "/v1/devices"): (VIEWER, COLLECTION),
    ("POST", "/v1/hosts"): (ADMIN, COLLECTION),
    ("GET", "/v1/hosts/{host_id}"): (VIEWER, OBJECT),
    ("PUT", "/v1/hosts/{host_id}"): (ADMIN, OBJECT),
    ("DELETE", "/v1/hosts/{host_id}"): (ADMIN, OBJECT),
    ("GET", "/v1/hosts/{host_id}/labels"): (VIEWER, OBJECT),
    ("PUT", "/v1/hosts/{host_id}/labels"): (ADMIN, OBJECT),
    ("GET", "/v1/hosts/{object_id}/variables"): (VIEWER, OBJECT),
    ("PUT", "/v1/hosts/{object_id}/variables"): (ADMIN, OBJECT),
    ("DELETE", "/v1/hosts/{object_id}/variables"): (ADMIN, OBJECT),
    ("GET", "/v1/ansible-inventory"): (VIEWER, COLLECTION),
    ("POST", "/v1/tasks"): (ADMIN, COLLECTION),
    ("GET", "/v1/tasks"): (VIEWER, COLLECTION),
    ("GET", "/v1/tasks/{task_id}"): (VIEWER, OBJECT),
    ("PUT", "/v1/tasks/{task_id}"): (ADMIN, OBJECT),
    ("DELETE", "/v1/tasks/{task_id}"): (ADMIN, OBJECT),
    ("POST", "/v1/tasks/{task_id}/builds"): (ADMIN, OBJECT),
    ("GET", "/v1/tasks/{task_id}/builds"): (VIEWER, OBJECT),
    ("GET", "/v1/tasks/{task_id}/builds/{build_id}"): (VIEWER, OBJECT),
    ("GET", "/v1/tasks/{task_id}/builds/{build_id}/logs"): (VIEWER, OBJECT),
    ("POST", "/v1/tasks/{task_id}/approve"): (ADMIN, OBJECT),
    ("POST", "/v1/tasks/{task_id}/reject"): (ADMIN, OBJECT),
    ("POST", "/v1/tasks/{task_id}/revoke"): (ADMIN, OBJECT),
    ("GET", "/v1/workflows"): (VIEWER, COLLECTION),
    ("POST", "/v1/workflows"): (ADMIN, COLLECTION),
    ("POST", "/v1/workflows/validate"): (ADMIN, COLLECTION),
    ("GET", "/v1/workflows/{workflow_id}"): (VIEWER, OBJECT),
    ("PUT", "/v1/workflows/{workflow_id}"): (ADMIN, OBJECT),
    ("DELETE", "/v1/workflows/{workflow_id}"): (ADMIN, OBJECT),
    ("GET", "/v1/workflows/{workflow_id}/versions"): (VIEWER, OBJECT),
    ("GET", "/v1/workflow"): (VIEWER, COLLECTION),
    ("POST", "/v1/workflow"): (ADMIN, COLLECTION),
    ("POST", "/v1/workflow/validate"): (ADMIN, COLLECTION),
    ("GET", "/v1/workflow/{workflow_id}"): (VIEWER, OBJECT),
    ("PUT", "/v1/workflow/{workflow_id}"): (ADMIN, OBJECT),
    ("DELETE", "/v1/workflow/{workflow_id}"): (ADMIN, OBJECT),
    ("GET", "/v1/workflow/{workflow_id}/versions"): (VIEWER, OBJECT),
    ("POST", "/v1/jobs"): (AUDITOR, COLLECTION),  # of an audit task; others: test_api_roles
    ("GET", "/v1/jobs"): (VIEWER, COLLECTION),
    ("GET", "/v1/jobs/{job_id}"): (VIEWER, OBJECT),
    ("POST", "/v1/jobs/{job_id}/cancel"): (OPERATOR, OBJECT),
    ("POST", "/v1/jobs/{job_id}/retry"): (OPERATOR, OBJECT),
    ("POST", "/v1/jobs/{job_id}/resume"): (OPERATOR, OBJECT),
    ("POST", "/v1/jobs/{job_id}/abort"): (OPERATOR, OBJECT),
    ("GET", "/v1/jobs/{job_id}/hosts"): (VIEWER, OBJECT),
    ("GET", "/v1/jobs/{job_id}/runs"): (VIEWER, OBJECT),
    ("GET", "/v1/jobs/{job_id}/events"): (VIEWER, OBJECT),
    ("GET", "/v1/jobs/{job_id}/logs"): (AUDITOR, OBJECT),
    ("POST", "/v1/job-templates"): (ADMIN, COLLECTION),
    ("GET", "/v1/job-templates"): (VIEWER, COLLECTION),
    ("GET", "/v1/job-templates/{template_id}"): (VIEWER, OBJECT),
    ("PUT", "/v1/job-templates/{template_id}"): (ADMIN, OBJECT),
    ("DELETE", "/v1/job-templates/{template_id}"): (ADMIN, OBJECT),
    ("POST", "/v1/job-templates/{template_id}/launch"): (AUDITOR, OBJECT),  # an audit's
    ("POST", "/v1/job-templates/{template_id}/triggers"): (ADMIN, OBJECT),
    ("GET", "/v1/job-templates/{template_id}/triggers"): (ADMIN, OBJECT),
    ("DELETE", "/v1/job-templates/{template_id}/triggers/{trigger_id}"): (ADMIN, OBJECT),
    ("POST", "/v1/triggers/{trigger_id}"): (OWN_SECRET, COLLECTION),
    ("POST", "/v1/schedules"): (ADMIN, COLLECTION),
    ("GET", "/v1/schedules"): (VIEWER, COLLECTION),
    ("GET", "/v1/schedules/{schedule_id}"): (VIEWER, OBJECT),
    ("PUT", "/v1/schedules/{schedule_id}"): (ADMIN, OBJECT),
    ("DELETE", "/v1/schedules/{schedule_id}"): (ADMIN, OBJECT),
    ("POST", "/v1/schedules/{schedule_id}/pause"): (ADMIN, OBJECT),
    ("POST", "/v1/schedules/{schedule_id}/resume"): (ADMIN, OBJECT),
    ("GET", "/v1/schedules/{schedule_id}/fires"): (VIEWER, OBJECT),
    ("GET", "/v1/users"): (ADMIN, COLLECTION),
    ("POST", "/v1/users"): (ADMIN, COLLECTION),
    ("GET", "/v1/users/{user_id}"): (ADMIN, OBJECT),
    ("PUT", "/v1/users/{user_id}"): (ADMIN, OBJECT),
    ("DELETE", "/v1/users/{user_id}"): (ADMIN, OBJECT),
    ("POST", "/v1/tokens"): (VIEWER, COLLECTION),  # one's own
    ("GET", "/v1/tokens"): (VIEWER, COLLECTION),
    ("DELETE", "/v1/tokens/{token_id}"): (VIEWER, OBJECT),  # one's own
    ("GET", "/v1/audit-events"): (ADMIN, COLLECTION),
    ("POST", "/v1/secrets"): (ADMIN, COLLECTION),
    ("GET", "/v1/secrets"): (OPERATOR, COLLECTION),
    ("GET", "/v1/secrets/{secret_id}"): (OPERATOR, OBJECT),
    ("PUT", "/v1/secrets/{secret_id}"): (ADMIN, OBJECT),
    ("DELETE", "/v1/secrets/{secret_id}"): (ADMIN, OBJECT),
    ("POST", "/v1/webhooks"): (ADMIN, COLLECTION),
    ("GET", "/v1/webhooks"): (ADMIN, COLLECTION),
    ("GET", "/v1/webhooks/{webhook_id}"): (ADMIN, OBJECT),
    ("PUT", "/v1/webhooks/{webhook_id}"): (ADMIN, OBJECT),
    ("DELETE", "/v1/webhooks/{webhook_id}"): (ADMIN, OBJECT),
    ("GET", "/v1/webhooks/{webhook_id}/deliveries"): (ADMIN, OBJECT),
    ("GET", "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}"): (ADMIN, OBJECT),
    ("POST", "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"): (ADMIN, OBJECT),
}

# Routes on which root, acting in another project, still reaches alpha's object.
ROOT_EVERYWHERE = {
    ("GET", "/v1/projects/{project_id}"),
    ("PUT", "/v1/projects/{project_id}"),
    ("DELETE", "/v1/projects/{project_id}"),
    ("GET", "/v1/users/{user_id}"),
    ("PUT", "/v1/users/{user_id}"),
    ("DELETE", "/v1/users/{user_id}"),
}

_serial = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_serial)}"


# Valid bodies: creates get unique names; updates change nothing that matters to other cases.
BODIES: dict[tuple[str, str], Callable[[World], Any]] = {}


def _body(method: str, *paths: str) -> Callable[[Callable[[World], Any]], Callable[[World], Any]]:
    def register(make: Callable[[World], Any]) -> Callable[[World], Any]:
        for path in paths:
            BODIES[(method, path)] = make
        return make

    return register


@dataclass
class World:
    """Project alpha's objects, the callers' credentials, and makers of fresh objects."""

    client: TestClient
    sessions: Any
    settings: Settings
    alpha: str
    bravo: str
    headers: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)  # "alpha-viewer" -> id
    ids: dict[str, Any] = field(default_factory=dict)

    def session(self) -> Any:
        return transaction(self.sessions)


@pytest.fixture(scope="module")
def world(database_template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("matrix")
    if POSTGRES_URL:
        _truncate_all(database_template)
        url = database_template
    else:
        shutil.copy(database_template, tmp / "craton-wf.db")
        url = f"sqlite:///{tmp / 'craton-wf.db'}"
    settings = Settings(database_url=url, data_dir=tmp / "data", executor="fake")
    engine = make_engine(settings)
    sessions = make_session_factory(engine)
    with TestClient(create_app(settings, sessions)) as client:
        with transaction(sessions) as session:
            done = bootstrap(session, "alpha", "root")
            alpha, root_token = done.project.id, done.token.token
            bravo_project = Project(name="bravo", variables={})
            session.add(bravo_project)
            session.flush()
            world = World(client, sessions, settings, alpha, bravo_project.id)
            world.users["root"] = done.user.id
            for project, prefix in ((alpha, "alpha"), (bravo_project.id, "bravo")):
                world.headers[(ROOT, prefix)] = {
                    "Authorization": f"Bearer {root_token}",
                    "X-Auth-Project": project,
                }
                for role in (VIEWER, AUDITOR, OPERATOR, ADMIN):
                    user = _user(session, f"{prefix}-{role}", project, role)
                    world.users[user.name] = user.id
                    token = issue_token(session, user, name="matrix", project_id=project)
                    world.headers[(role, prefix)] = {
                        "Authorization": f"Bearer {token.token}",
                        "X-Auth-Project": project,
                    }
            _make_alpha_objects(session, world)
        yield world
    engine.dispose()


def _user(session: Any, name: str, project_id: str, role: str) -> User:
    user = User(name=name, default_project_id=project_id)
    session.add(user)
    session.flush()
    session.add(RoleAssignment(user_id=user.id, project_id=project_id, role=role))
    session.flush()
    return user


def _make_alpha_objects(session: Any, world: World) -> None:
    alpha, ids = world.alpha, world.ids
    cloud = inventory.create_cloud(session, alpha, {"name": "alpha-cloud"})
    region = inventory.create_region(session, alpha, {"name": "alpha-region", "cloud_id": cloud.id})
    cell = inventory.create_cell(session, alpha, {"name": "alpha-cell", "region_id": region.id})
    host = inventory.create_host(
        session,
        alpha,
        {
            "name": "alpha-host",
            "ip_address": "10.0.0.1",
            "region_id": region.id,
            "cell_id": cell.id,
        },
    )
    ids.update(cloud=cloud.id, region=region.id, cell=cell.id, host=host.id)
    audit = make_ready_task(
        session, alpha, "alpha-audit", command="true", kind="audit", location=GIT
    )
    decide = make_ready_task(session, alpha, "alpha-decide", command="true", location=GIT)
    ids.update(task=audit.id, build=audit.ready_build_id, decide_task=decide.id)
    workflow = workflow_service.create_workflow(
        session,
        alpha,
        None,
        WorkflowCreate.model_validate({"name": "alpha-flow", "steps": [{"task": audit.id}]}),
    )
    ids["workflow"] = workflow.id
    ids["job"] = _job(session, world).id
    ids["target"] = _user(session, "alpha-target", alpha, VIEWER).id
    ids["secret"] = _secret(session, world).id
    ids["template"] = _template(session, world).id
    ids["schedule"] = _schedule(session, world).id
    ids["webhook"] = _webhook(session, world).id
    ids["trigger"] = _trigger(session, world).id
    enqueue_event(session, alpha, "job.failed", {"job": {}})
    ids["delivery"] = session.execute(select(func.max(WebhookDelivery.id))).scalar_one()


JOB_RESUME = "/v1/jobs/{job_id}/resume"  # a job not paused: 409, still past the role check


def _job(session: Any, world: World) -> Any:
    return job_service.create_job(
        session, world.alpha, None, {"task": "alpha-audit", "hosts": [world.ids["host"]]}
    )


def _template(session: Any, world: World) -> Any:
    """An audit's template: auditors may launch it."""
    data = JobTemplateCreate(
        name=unique("alpha-template"),
        task="alpha-audit",
        targets={"hosts": [world.ids["host"]]},  # type: ignore[arg-type]
    )
    admin = Principal(world.users["root"], "root", world.alpha, is_root=True)
    return template_service.create_template(session, admin, data)


def _schedule(session: Any, world: World) -> Any:
    data = ScheduleCreate(
        name=unique("alpha-schedule"), template=world.ids["template"], cron="@daily"
    )
    return schedule_service.create_schedule(session, world.alpha, world.users["root"], data)


def _secret(session: Any, world: World) -> Any:
    fernet = project_secrets.cipher(world.settings)
    data = SecretCreate(name=unique("ALPHA_SECRET").replace("-", "_"), value="value-of-alpha")
    return project_secrets.create_secret(session, fernet, world.alpha, None, data)


def _webhook(session: Any, world: World) -> Any:
    fernet = project_secrets.cipher(world.settings)
    data = WebhookCreate(
        name=unique("alpha-hook"), url=HOOK_URL, events=["job.failed"], secret="s" * 16
    )
    return webhooks.create_webhook(session, world.settings, fernet, world.alpha, None, data)


def _trigger(session: Any, world: World) -> Any:
    fernet = project_secrets.cipher(world.settings)
    admin = Principal(world.users["root"], "root", world.alpha, is_root=True)
    template = template_service.get_template(session, world.alpha, world.ids["template"])
    return trigger_service.create_trigger(session, fernet, admin, template)[0]


# --- path parameters: alpha's objects, fresh ones for calls that destroy them ---------------


def _fresh(method: str, path: str, role: str, where: str, world: World) -> dict[str, Any] | None:
    """Fresh objects for the calls that delete or change them; None: the module's own."""
    alpha, ids = world.alpha, world.ids
    with world.session() as session:
        if method == "DELETE" and path == "/v1/projects/{project_id}":
            if role != ROOT:  # refused (403, or 404 from bravo): alpha itself stays
                return {"project_id": alpha}
            project = Project(name=unique("alpha-doomed"), variables={})
            session.add(project)
            session.flush()
            return {"project_id": project.id}
        if method == "DELETE" and path == "/v1/clouds/{object_id}":
            return {
                "object_id": inventory.create_cloud(session, alpha, {"name": unique("alpha")}).id
            }
        if method == "DELETE" and path == "/v1/regions/{object_id}":
            data = {"name": unique("alpha"), "cloud_id": ids["cloud"]}
            return {"object_id": inventory.create_region(session, alpha, data).id}
        if method == "DELETE" and path == "/v1/cells/{object_id}":
            data = {"name": unique("alpha"), "region_id": ids["region"]}
            return {"object_id": inventory.create_cell(session, alpha, data).id}
        if method == "DELETE" and path == "/v1/hosts/{host_id}":
            data = {"name": unique("alpha"), "ip_address": "10.0.0.9", "region_id": ids["region"]}
            return {"host_id": inventory.create_host(session, alpha, data).id}
        if method == "DELETE" and path == "/v1/tasks/{task_id}":
            spec = TaskCreate(name=unique("alpha"), location=GIT, command="run")
            return {"task_id": task_service.create_task(session, alpha, None, spec, None, 1024).id}
        if method == "DELETE" and path.endswith("/{workflow_id}"):
            flow = WorkflowCreate(name=unique("alpha-flow"), steps=[StepIn(task=ids["task"])])
            made = workflow_service.create_workflow(session, alpha, None, flow)
            return {"workflow_id": made.id}
        if path in ("/v1/jobs/{job_id}/cancel", "/v1/jobs/{job_id}/abort", JOB_RESUME):
            return {"job_id": _job(session, world).id}
        if path == "/v1/jobs/{job_id}/retry":
            job = _job(session, world)
            job_service.cancel(session, job)
            return {"job_id": job.id}
        if path == "/v1/users/{user_id}" and method in ("PUT", "DELETE"):
            # Not named "alpha-…": root acting in bravo gives it a role there too.
            return {"user_id": _user(session, unique("fresh-user"), alpha, VIEWER).id}
        if path == "/v1/tokens/{token_id}":
            own = where == "alpha" and role not in ("anonymous",)
            name = "root" if role == ROOT else f"alpha-{role}" if own else "alpha-target"
            user_id = world.users.get(name, ids["target"])
            user = session.get(User, user_id)
            return {"token_id": issue_token(session, user, name="doomed", project_id=alpha).id}
        if method == "DELETE" and path == "/v1/schedules/{schedule_id}":
            return {"schedule_id": _schedule(session, world).id}
        if method == "DELETE" and path == "/v1/job-templates/{template_id}":
            return {"template_id": _template(session, world).id}
        if method == "DELETE" and path == "/v1/secrets/{secret_id}":
            return {"secret_id": _secret(session, world).id}
        if method == "DELETE" and path == "/v1/webhooks/{webhook_id}":
            return {"webhook_id": _webhook(session, world).id}
        if method == "DELETE" and path.endswith("/triggers/{trigger_id}"):
            return {"template_id": ids["template"], "trigger_id": _trigger(session, world).id}
        if method == "DELETE" and path.endswith("/variables"):  # a variable to delete
            kind = path.split("/")[2]
            ref = alpha if kind == "projects" else ids[kind[:-1]]
            owner = inventory.get_variable_owner(session, alpha, kind, ref)
            inventory.merge_variables(owner, {"matrix": 1})
    return None


def path_params(method: str, path: str, role: str, where: str, world: World) -> dict[str, Any]:
    fresh = _fresh(method, path, role, where, world)
    if fresh is not None:
        return fresh
    ids, family = world.ids, path.split("/")[2] if path.startswith("/v1/") else ""
    task = ids["decide_task"] if method != "GET" else ids["task"]
    known = {
        "project_id": world.alpha,
        "object_id": {
            "projects": world.alpha,
            "clouds": ids["cloud"],
            "regions": ids["region"],
            "cells": ids["cell"],
            "hosts": ids["host"],
        }.get(family),
        "host_id": ids["host"],
        "task_id": task,
        "build_id": ids["build"],
        "workflow_id": ids["workflow"],
        "job_id": ids["job"],
        "user_id": ids["target"],
        "secret_id": ids["secret"],
        "template_id": ids["template"],
        "schedule_id": ids["schedule"],
        "webhook_id": ids["webhook"],
        "delivery_id": ids["delivery"],
        "trigger_id": ids["trigger"],
    }
    names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
    return {name: known[name] for name in names}


# --- bodies -------------------------------------------------------------------------


_body("POST", "/v1/projects")(lambda w: {"name": unique("alpha-project")})
_body("PUT", "/v1/projects/{project_id}", "/v1/clouds/{object_id}")(lambda w: {})
_body("PUT", "/v1/regions/{object_id}", "/v1/cells/{object_id}", "/v1/hosts/{host_id}")(
    lambda w: {}
)
_body(
    "PUT",
    "/v1/projects/{object_id}/variables",
    "/v1/clouds/{object_id}/variables",
    "/v1/regions/{object_id}/variables",
    "/v1/cells/{object_id}/variables",
    "/v1/hosts/{object_id}/variables",
)(lambda w: {"matrix": 1})
_body(
    "DELETE",
    "/v1/projects/{object_id}/variables",
    "/v1/clouds/{object_id}/variables",
    "/v1/regions/{object_id}/variables",
    "/v1/cells/{object_id}/variables",
    "/v1/hosts/{object_id}/variables",
)(lambda w: ["matrix"])
_body("POST", "/v1/clouds")(lambda w: {"name": unique("alpha-cloud")})
_body("POST", "/v1/regions")(lambda w: {"name": unique("alpha"), "cloud_id": w.ids["cloud"]})
_body("POST", "/v1/cells")(lambda w: {"name": unique("alpha"), "region_id": w.ids["region"]})
_body("POST", "/v1/hosts")(
    lambda w: {"name": unique("alpha"), "ip_address": "10.0.0.8", "region_id": w.ids["region"]}
)
_body("PUT", "/v1/hosts/{host_id}/labels")(lambda w: {"labels": ["compute"]})
_body("POST", "/v1/tasks")(
    lambda w: {"name": unique("alpha-task"), "location": GIT, "command": "run"}
)
_body("PUT", "/v1/tasks/{task_id}")(lambda w: {"description": "not what it runs"})
_body("POST", "/v1/tasks/{task_id}/builds")(lambda w: {})
_body("POST", "/v1/workflows", "/v1/workflow")(
    lambda w: {"name": unique("alpha-flow"), "steps": ["alpha-audit"]}
)
_body("POST", "/v1/workflows/validate", "/v1/workflow/validate")(
    lambda w: {"steps": ["alpha-audit"]}
)
_body("PUT", "/v1/workflows/{workflow_id}", "/v1/workflow/{workflow_id}")(
    lambda w: {"description": "matrix"}
)
_body("POST", "/v1/jobs")(lambda w: {"task": "alpha-audit", "hosts": [w.ids["host"]]})
_body("POST", "/v1/job-templates")(
    lambda w: {
        "name": unique("alpha-template"),
        "task": "alpha-audit",
        "targets": {"hosts": [w.ids["host"]]},
    }
)
_body("PUT", "/v1/job-templates/{template_id}")(lambda w: {"description": "matrix"})
_body("POST", "/v1/job-templates/{template_id}/launch")(lambda w: {})
_body("POST", "/v1/schedules")(
    lambda w: {"name": unique("alpha-schedule"), "template": w.ids["template"], "cron": "@daily"}
)
_body("PUT", "/v1/schedules/{schedule_id}")(lambda w: {"cron": "@weekly"})
_body("POST", "/v1/users")(lambda w: {"name": unique("alpha-made"), "role": VIEWER})
_body("PUT", "/v1/users/{user_id}")(lambda w: {"role": AUDITOR})
_body("POST", "/v1/tokens")(lambda w: {"name": "matrix"})
_body("POST", "/v1/secrets")(
    lambda w: {"name": unique("ALPHA").replace("-", "_"), "value": "value-1234"}
)
_body("PUT", "/v1/secrets/{secret_id}")(lambda w: {"description": "matrix"})
_body("POST", "/v1/webhooks")(
    lambda w: {
        "name": unique("alpha-hook"),
        "url": HOOK_URL,
        "events": ["job.failed"],
        "secret": "s" * 16,
    }
)
_body("PUT", "/v1/webhooks/{webhook_id}")(lambda w: {"description": "matrix"})
_body("POST", "/v1/job-templates/{template_id}/triggers")(lambda w: {"description": "matrix"})
_body("POST", "/v1/triggers/{trigger_id}")(lambda w: {"params": {}})


# --- the cases ----------------------------------------------------------------------


def expected(method: str, path: str, role: str, where: str) -> str:
    """``allowed``, or the status the call must answer."""
    least, names_object = EXPECTED[(method, path)]
    if least == PUBLIC:
        return "allowed"
    if least == OWN_SECRET:
        return "401"
    if role == "anonymous":
        return "401"
    if (
        where == "bravo"
        and names_object
        and not (role == ROOT and (method, path) in ROOT_EVERYWHERE)
    ):
        return "404"
    return "allowed" if RANK[role] >= RANK[least] else "403"


def cases() -> Iterator[Any]:
    for (method, path), (least, names_object) in EXPECTED.items():
        for role in ROLES:
            wheres = ["alpha"]
            # bravo's reads of a collection: not root's, who reads every project's lists
            collection_read = method == "GET" and role != ROOT
            if role != "anonymous" and least != PUBLIC and (names_object or collection_read):
                wheres.append("bravo")
            for where in wheres:
                yield pytest.param(
                    method, path, role, where, id=f"{method} {path} as {role} of {where}"
                )


def app_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path template) of every APIRoute of the API, included routers walked into.

    The web console's routes (``/`` and ``/ui…``) sign in by cookie, not by token:
    tests/ui/test_console_matrix.py holds them to the same rules."""
    return {
        (method, str(route.path))
        for route in iter_route_contexts(app.routes)
        if isinstance(route.original_route, APIRoute) and not is_console_route(str(route.path))
        for method in route.methods or ()
    }


def is_console_route(path: str) -> bool:
    return path == "/" or path == "/ui" or path.startswith("/ui/")


def test_every_route_of_the_app_has_an_expectation(world: World) -> None:
    served = app_routes(world.client.app)
    assert len(served) > 80  # the walk found the routes, not an empty tree
    assert served - EXPECTED.keys() == set(), "routes with no entry in EXPECTED"
    assert EXPECTED.keys() - served == set(), "entries in EXPECTED for routes that are gone"


@pytest.mark.parametrize(("method", "path", "role", "where"), list(cases()))
def test_the_route_answers_the_role_as_expected(
    world: World, method: str, path: str, role: str, where: str
) -> None:
    url = path.format(**path_params(method, path, role, where, world))
    make_body = BODIES.get((method, path))
    kwargs: dict[str, Any] = {"json": make_body(world)} if make_body else {}
    headers = world.headers.get((role, where), {})
    answer = world.client.request(method, url, headers=headers, **kwargs)
    want = expected(method, path, role, where)
    shown = f"{method} {url} as {role} of {where}: {answer.status_code} {answer.text[:300]}"
    if want == "allowed":
        allowed = {200, 201, 202, 204, 409} | ({503} if path == "/readyz" else set())
        assert answer.status_code in allowed, shown
        if where == "bravo" and not EXPECTED[(method, path)][1]:
            assert "alpha" not in answer.text.lower(), f"{shown}: shows project alpha's objects"
    else:
        assert answer.status_code == int(want), shown
        assert answer.json()["status"] == int(want), shown
