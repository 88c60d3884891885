"""Who may do what: the one place the platform decides.

Roles are held per project and ranked: ``viewer`` (read) < ``auditor`` (also
run tasks marked ``audit``, read logs) < ``operator`` (run any task they may
see, cancel, retry) < ``admin`` (users, tasks, workflows, approvals,
inventory of the project). ``root`` is global and may do everything,
projects included.

Every API route names what it needs in :data:`ROUTE_RULES` (method and route
template → least role); :func:`required_role` answers for a route, and a
route nobody listed needs ``admin`` for a write and ``viewer`` for a read,
so a new route is closed rather than open. A route naming a project
(``/v1/projects/{project_id}``) is judged by the caller's role in *that*
project (:func:`in_project`), not in the one it acts in. Decisions that depend
on the object — which task a job runs, who built what — are the functions
below, called by the services.

Another project's object does not exist for a caller: when a route's rule
refuses, ``api.scope`` first looks up the objects its path names in the
caller's project, and one it does not hold answers 404, never 403, whatever
the caller's role.

A task's scoped token (``Principal.job_id`` set) may call only
:data:`TASK_TOKEN_ROUTES` (read hosts, set their variables), and only on the
hosts of its job (:func:`check_host_in_scope`); everything else is refused.

Tasks are visible to their project, public tasks to every project; a task
restricted to roles is seen (and run) only by those roles and admins
(:func:`visible_tasks`, :func:`may_see_task`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from sqlalchemy import String, and_, cast, or_, select
from sqlalchemy.orm import Session

from craton_wf.db.models import JobHost, RoleAssignment, Task
from craton_wf.errors import Forbidden, NotFound
from craton_wf.services.auth import ROLES, Principal

RANK = {role: rank for rank, role in enumerate(ROLES, start=1)}
ROOT = "root"

READ, WRITE = frozenset({"GET", "HEAD"}), frozenset({"POST", "PUT", "PATCH", "DELETE"})

# (methods, route template, least role); the first match wins.
ROUTE_RULES: tuple[tuple[frozenset[str], str, str], ...] = (
    (READ, "/v1/jobs/{job_id}/logs", "auditor"),
    (WRITE, "/v1/jobs", "auditor"),  # which tasks an auditor may run: may_run_tasks
    (WRITE, "/v1/jobs/{job_id}/cancel", "operator"),
    (WRITE, "/v1/jobs/{job_id}/retry", "operator"),
    (WRITE, "/v1/jobs/{job_id}/resume", "operator"),  # a job paused at a wave gate
    (WRITE, "/v1/jobs/{job_id}/abort", "operator"),
    # which templates an auditor may launch: those whose tasks it may run (may_run_task)
    (WRITE, "/v1/job-templates/{template_id}/launch", "auditor"),
    # a template's triggers: admins, reads too; a trigger's own URL takes no token
    (READ, "/v1/job-templates/{template_id}/triggers", "admin"),
    (READ, "/v1/audit-events", "admin"),
    (READ, "/v1/users", "admin"),
    (READ, "/v1/users/{user_id}", "admin"),
    (READ | WRITE, "/v1/tokens", "viewer"),  # one's own tokens; others': services.users
    (READ | WRITE, "/v1/tokens/{token_id}", "viewer"),
    (READ, "/v1/secrets", "operator"),  # names and descriptions only, never values
    (READ, "/v1/secrets/{secret_id}", "operator"),
    # webhooks: admins only, reads too (a URL may carry a receiver's token)
    (READ, "/v1/webhooks", "admin"),
    (READ, "/v1/webhooks/{webhook_id}", "admin"),
    (READ, "/v1/webhooks/{webhook_id}/deliveries", "admin"),
    (READ, "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}", "admin"),
    (WRITE, "/v1/projects", ROOT),
    (frozenset({"DELETE"}), "/v1/projects/{project_id}", ROOT),
    (WRITE, "/v1/projects/{project_id}", "admin"),  # admin of that project: in_project
)


# What a task's own token may call; the host must be one of its job's.
TASK_TOKEN_ROUTES = frozenset(
    {
        ("GET", "/v1/hosts"),
        ("GET", "/v1/hosts/{host_id}"),
        ("GET", "/v1/hosts/{object_id}/variables"),
        ("PUT", "/v1/hosts/{object_id}/variables"),
        ("DELETE", "/v1/hosts/{object_id}/variables"),
    }
)


def rank(me: Principal) -> int:
    if me.is_root:
        return len(RANK) + 1
    return max((RANK.get(role, 0) for role in me.roles), default=0)


def has_role(me: Principal, role: str) -> bool:
    if role == ROOT:
        return me.is_root
    return rank(me) >= RANK[role]


def required_role(method: str, route: str) -> str:
    for methods, template, role in ROUTE_RULES:
        if method in methods and route == template:
            return role
    return "viewer" if method in READ else "admin"


def authorize(me: Principal, method: str, route: str) -> None:
    """Raise Forbidden unless ``me`` may call ``method`` on ``route``."""
    if me.job_id is not None:
        if (method, route) in TASK_TOKEN_ROUTES:
            return
        raise Forbidden("a task's token may only read its job's hosts and set their variables")
    role = required_role(method, route)
    if not has_role(me, role):
        raise Forbidden(
            f"{method} {route} needs the {role} role"
            + (" (a global role)" if role == ROOT else " in this project")
        )


def may(me: Principal, method: str, route: str) -> bool:
    """Whether :func:`authorize` lets ``me`` call ``route``: what a console page shows."""
    try:
        authorize(me, method, route)
    except Forbidden:
        return False
    return True


def in_project(session: Session, me: Principal, project_id: str) -> Principal:
    """``me`` as judged in ``project_id``: with the roles it holds there.

    Root, a task's token and the acting project itself answer ``me`` as it is.
    A project the caller holds no role in does not exist for it: NotFound.
    """
    if me.is_root or me.job_id is not None or project_id == me.project_id:
        return me
    roles = frozenset(
        session.execute(
            select(RoleAssignment.role).where(
                RoleAssignment.user_id == me.user_id, RoleAssignment.project_id == project_id
            )
        ).scalars()
    )
    if not roles:
        raise NotFound(f"project {project_id} not found")
    return replace(me, project_id=project_id, roles=roles)


def require_role(me: Principal, role: str, what: str) -> None:
    """Raise Forbidden unless ``me`` holds ``role`` (in the project it is judged in)."""
    if not has_role(me, role):
        raise Forbidden(f"{what} needs the {role} role in project {me.project_id}")


def may_run_task(me: Principal, name: str, kind: str, restricted_to: Iterable[str]) -> None:
    """Raise Forbidden unless ``me`` may run the task.

    Restricted tasks run only for the roles they name (and admins). Auditors
    run only tasks marked ``audit``: who audits is kept apart from who
    remediates.
    """
    if me.is_root:
        return
    allowed = set(restricted_to)
    if allowed and not (allowed & me.roles) and not has_role(me, "admin"):
        raise Forbidden(f"task {name} is restricted to the roles {', '.join(sorted(allowed))}")
    if has_role(me, "operator"):
        return
    if has_role(me, "auditor") and kind == "audit":
        return
    if has_role(me, "auditor"):
        raise Forbidden(f"auditors may run only audit tasks; {name} is a {kind} task")
    raise Forbidden(f"running task {name} needs the operator role (or auditor, for audits)")


def may_grant(me: Principal, role: str) -> None:
    """Admins grant roles up to their own in their project; only root makes root."""
    if role == ROOT and not me.is_root:
        raise Forbidden("only a root user may make another root user")
    if role != ROOT and not has_role(me, "admin"):
        raise Forbidden("granting roles needs the admin role in this project")


# --- objects ----------------------------------------------------------------------


def job_host_ids(session: Session, job_id: int) -> set[int]:
    return {
        host_id
        for host_id in session.execute(
            select(JobHost.host_id).where(JobHost.job_id == job_id)
        ).scalars()
        if host_id is not None
    }


def check_host_in_scope(session: Session, me: Principal, host_id: int) -> None:
    """A task's token sees only its job's hosts: NotFound for any other."""
    if me.job_id is not None and host_id not in job_host_ids(session, me.job_id):
        raise NotFound(f"host {host_id} not found")


def visible_tasks(me: Principal) -> Any:
    """The SQL condition on ``Task`` a caller's lists and lookups use.

    One's project's tasks and every public task; of these, a task restricted
    to roles only for a caller holding one of them (admins and root see all).
    A user holds one role per project, and ``restricted_to`` takes only role
    names, so the match is on the role's quoted name in the JSON list: the
    same on SQLite and PostgreSQL.
    """
    owned = or_(Task.project_id == me.project_id, Task.public.is_(True))
    if has_role(me, "admin"):
        return owned
    listed = cast(Task.restricted_to, String)
    allowed = [listed.like(f'%"{role}"%') for role in sorted(me.roles) if role in RANK]
    unrestricted = listed.in_(["[]", "null"])
    return and_(owned, or_(unrestricted, *allowed))


def may_see_task(me: Principal, task: Task) -> bool:
    if task.project_id != me.project_id and not task.public:
        return False
    if has_role(me, "admin") or not task.restricted_to:
        return True
    return bool(set(task.restricted_to) & me.roles)
