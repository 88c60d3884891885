"""Tasks and their builds.

A task is a source (a git URL with ref and subdirectory, or an uploaded
archive) plus the command to run. Every build request adds a ``Build`` in
BUILD PENDING that a runner picks up. The task's ``status`` follows its newest
build; what runs is its newest READY build, so a failed rebuild does not stop a
task that worked before.
"""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from craton_wf.db.models import Build, BuildLog, Run, Task, TaskSource, Workflow, WorkflowVersion
from craton_wf.domain.archives import ArchiveLimits, check_uploaded_source
from craton_wf.domain.resources import ResourcePolicy, check_placement, check_resources
from craton_wf.domain.sources import (
    GitSourcePolicy,
    check_git_ref,
    check_git_source,
    check_source_path,
)
from craton_wf.domain.states import FINAL_RUN_STATES, BuildStatus
from craton_wf.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from craton_wf.services import approvals, policy
from craton_wf.services.auth import Principal
from craton_wf.services.inputs import Resources, TaskCreate, TaskUpdate
from craton_wf.services.lookups import check_name, find_by_ref, flush_unique, id_in_range
from craton_wf.services.pagination import Page, PageRequest, paginate
from craton_wf.services.project_secrets import check_secret_names

TASK_SORT_KEYS = ("id", "name", "status", "created_at")
# The fields of a task an update may change, beside its name.
MUTABLE_FIELDS = (
    "description",
    "command",
    "kind",
    "public",
    "restricted_to",
    "needs_network",
    "resources",
    "placement",
    "secrets",
    "ref",
    "subdir",
    "dockerfile",
    "location",
)


def command_words(command: str | list[str]) -> list[str]:
    """The command as words: a string is split as a shell would, a list taken as it is."""
    if isinstance(command, str):
        try:
            words = shlex.split(command)
        except ValueError as exc:
            raise InvalidInput(f"command is not valid shell words: {exc}") from exc
    else:
        words = list(command)
    if not words:
        raise InvalidInput("command must not be empty")
    return words


def check_git_location(location: str, policy: GitSourcePolicy | None = None) -> str:
    """The git URL, if the platform's source rules accept it (UnsafeSource, a 400, if not)."""
    return check_git_source(location, policy or GitSourcePolicy())


@dataclass(frozen=True)
class TaskRules:
    """What the platform allows a task to ask for (from the settings)."""

    resources: ResourcePolicy = field(default_factory=ResourcePolicy)
    network_allowed: bool = True
    sources: GitSourcePolicy = field(default_factory=GitSourcePolicy)
    archives: ArchiveLimits = field(default_factory=ArchiveLimits)


def _check_network(needs_network: bool, rules: TaskRules) -> bool:
    if needs_network and not rules.network_allowed:
        raise InvalidInput("this platform does not let tasks use the network (needs_network)")
    return needs_network


def _resources(resources: Resources | None, rules: TaskRules) -> dict[str, Any]:
    """The resources asked for, within the platform's maxima (the model bounds their types)."""
    if resources is None:
        return {}
    return check_resources(resources.model_dump(exclude_none=True), rules.resources)


def create_task(
    session: Session,
    project_id: str,
    user_id: int | None,
    spec: TaskCreate,
    archive: bytes | None,
    max_archive_bytes: int,
    rules: TaskRules | None = None,
) -> Task:
    rules = rules or TaskRules()
    name = check_name(spec.name, "task")
    ref = check_git_ref(spec.ref or None)
    if archive is None:
        location = check_git_location(spec.location or "", rules.sources)
        source_type = "git"
    else:
        source_type, location = "upload", (spec.location or f"upload:{name}")
    task = Task(
        project_id=project_id,
        name=name,
        description=spec.description,
        source_type=source_type,
        location=location,
        ref=ref,
        subdir=check_source_path(spec.subdir, "subdir"),
        dockerfile=check_source_path(spec.dockerfile, "dockerfile") or "Dockerfile",
        command=command_words(spec.command),
        kind=spec.kind,
        public=spec.public,
        restricted_to=sorted(set(spec.restricted_to)),
        needs_network=_check_network(spec.needs_network, rules),
        resources=_resources(spec.resources, rules),
        placement=check_placement(spec.placement),
        secrets=check_secret_names(spec.secrets),
        status=BuildStatus.PENDING.value,
        created_by=user_id,
    )
    session.add(task)
    flush_unique(session, "task", name)
    request_build(
        session,
        task,
        user_id,
        archive=archive,
        max_archive_bytes=max_archive_bytes,
        rules=rules,
        location_checked=True,
    )
    return task


def update_task(
    session: Session,
    task: Task,
    changes: TaskUpdate,
    rules: TaskRules | None = None,
    me: Principal | None = None,
) -> Task:
    """Change the fields ``changes`` gives (a null changes nothing); a change to
    what its build runs revokes the build's approval.

    ``me`` (who changes it) is recorded with that revocation, and may not approve
    the build again (``services.approvals``).
    """
    rules = rules or TaskRules()
    before = {name: getattr(task, name) for name in approvals.EXECUTION_FIELDS}
    for name in MUTABLE_FIELDS:
        value = getattr(changes, name)
        if value is None:
            continue
        if name == "command":
            value = command_words(value)
        elif name == "restricted_to":
            value = sorted(set(value))
        elif name == "needs_network":
            value = _check_network(value, rules)
        elif name == "resources":
            value = _resources(value, rules)
        elif name == "placement":
            value = check_placement(value)
        elif name == "secrets":
            value = check_secret_names(value)
        elif name in ("subdir", "dockerfile"):
            value = check_source_path(value, name)
        elif name == "location" and task.source_type == "git":
            value = check_git_location(value, rules.sources)
        elif name == "ref":
            value = check_git_ref(value)
        setattr(task, name, value)
    if changes.name is not None:
        task.name = check_name(changes.name, "task")
    flush_unique(session, "task", task.name)
    changed = [name for name, value in before.items() if getattr(task, name) != value]
    if changed and me is not None:
        task.execution_changed_by = me.user_id
    approvals.revoke_for_change(session, me, task, changed)
    return task


def request_build(
    session: Session,
    task: Task,
    user_id: int | None,
    *,
    ref: str | None = None,
    archive: bytes | None = None,
    max_archive_bytes: int,
    rules: TaskRules | None = None,
    location_checked: bool = False,
) -> Build:
    """Queue a new build of the task (a new archive replaces an uploaded source).

    Nothing is stored unless the source passes the rules: an archive is
    checked member by member, a git URL again under the current settings.
    """
    rules = rules or TaskRules()
    ref = check_git_ref(ref or None)
    source_id = None
    if task.source_type == "upload":
        if archive is not None:
            if len(archive) > max_archive_bytes:
                raise PayloadTooLarge(
                    f"the archive is {len(archive)} bytes; the limit is {max_archive_bytes}"
                )
            check_uploaded_source(archive, task.subdir, task.dockerfile, rules.archives)
            source = TaskSource(
                task_id=task.id,
                sha256=hashlib.sha256(archive).hexdigest(),
                size=len(archive),
                data=archive,
            )
            session.add(source)
            session.flush()
            source_id = source.id
        else:
            source_id = session.execute(
                select(TaskSource.id)
                .where(TaskSource.task_id == task.id)
                .order_by(TaskSource.id.desc())
                .limit(1)
            ).scalar_one_or_none()
            if source_id is None:
                raise InvalidInput("this task was uploaded: send an archive to rebuild it")
    elif archive is not None:
        raise InvalidInput("this task is built from git: it takes a ref, not an archive")
    elif not location_checked:
        check_git_source(task.location, rules.sources, ref=ref or task.ref)
    if ref:
        task.ref = ref
    number = (
        session.execute(select(func.max(Build.number)).where(Build.task_id == task.id)).scalar()
        or 0
    ) + 1
    build = Build(
        task_id=task.id,
        project_id=task.project_id,
        number=number,
        status=BuildStatus.PENDING.value,
        source_id=source_id,
        ref=task.ref,
        requested_by=user_id,
    )
    session.add(build)
    session.flush()
    task.current_build_id = build.id
    task.status = build.status
    return build


def get_task(session: Session, project_id: str, ref: Any) -> Task:
    return find_by_ref(session, Task, project_id, ref, "task")


def find_runnable_task(session: Session, me: Principal, ref: Any) -> Task:
    """A task a job of ``me``'s project may name: its own, or a public one of another.

    By name, the project's own task wins; a public task of another project is
    found by name only when no other public task has that name.
    """
    if isinstance(ref, int) or (isinstance(ref, str) and (ref.isascii() and ref.isdigit())):
        task = session.get(Task, int(ref)) if id_in_range(Task, int(ref)) else None
    else:
        task = session.execute(
            select(Task).where(Task.project_id == me.project_id, Task.name == ref)
        ).scalar_one_or_none()
        if task is None and isinstance(ref, str):
            public = list(
                session.execute(
                    select(Task).where(Task.public.is_(True), Task.name == ref).limit(2)
                ).scalars()
            )
            if len(public) > 1:
                raise InvalidInput(f"more than one public task is named {ref!r}: use its id")
            task = public[0] if public else None
    if task is None or not policy.may_see_task(me, task):
        raise NotFound(f"task {ref!r} not found")
    return task


def get_visible_task(session: Session, me: Principal, task_id: int | str) -> Task:
    """A task the caller may see, by id or name (its project's task, else a public one)."""
    task = _task_by_ref(session, me.project_id, task_id)
    if task is None or not policy.may_see_task(me, task):
        raise NotFound(f"task {task_id} not found")
    return task


def list_tasks(
    session: Session, me: Principal, page: PageRequest, filters: dict[str, Any]
) -> Page[Task]:
    """The caller's project's tasks and the public ones, less those restricted to other roles."""
    stmt = select(Task).where(policy.visible_tasks(me))
    for key in ("name", "status", "kind"):
        if filters.get(key) is not None:
            stmt = stmt.where(getattr(Task, key) == filters[key])
    if filters.get("public") is not None:
        stmt = stmt.where(Task.public.is_(bool(filters["public"])))
    return paginate(session, stmt, Task, page, TASK_SORT_KEYS)


def delete_task(session: Session, task: Task) -> None:
    active = session.execute(
        select(func.count())
        .select_from(Run)
        .where(Run.task_id == task.id, Run.status.not_in([s.value for s in FINAL_RUN_STATES]))
    ).scalar_one()
    if active:
        raise Conflict(f"task {task.name!r} is used by a job that has not finished")
    for workflow, steps in session.execute(
        select(Workflow, WorkflowVersion.steps)
        .join(WorkflowVersion, WorkflowVersion.workflow_id == Workflow.id)
        .where(
            Workflow.project_id == task.project_id,
            WorkflowVersion.version == Workflow.latest_version,
        )
    ):
        if any(step.get("task_id") == task.id for step in steps):
            raise Conflict(f"task {task.name!r} is used by workflow {workflow.name!r}")
    task.current_build_id = None
    task.ready_build_id = None
    session.flush()
    session.delete(task)
    session.flush()


def list_builds(session: Session, task: Task, page: PageRequest) -> Page[Build]:
    stmt = select(Build).where(Build.task_id == task.id)
    return paginate(session, stmt, Build, page, ("id", "number", "created_at"))


def get_build(session: Session, task: Task, build_ref: Any) -> Build:
    if build_ref in (None, "latest"):
        if task.current_build_id is None:
            raise NotFound(f"task {task.name!r} has no build")
        return session.get(Build, task.current_build_id)  # type: ignore[return-value]
    build = None
    if str(build_ref).isascii() and str(build_ref).isdigit():
        build = session.get(Build, int(build_ref))
    if build is None or build.task_id != task.id:
        raise NotFound(f"build {build_ref} of task {task.name!r} not found")
    return build


def find_build(session: Session, build_id: int) -> Build | None:
    return session.get(Build, build_id)


def read_build_logs(session: Session, build: Build, after: int, limit: int) -> list[BuildLog]:
    stmt = (
        select(BuildLog)
        .where(BuildLog.build_id == build.id, BuildLog.seq > after)
        .order_by(BuildLog.seq)
        .limit(limit)
    )
    return list(session.execute(stmt).scalars())


def task_view(session: Session, task: Task) -> dict[str, Any]:
    """The task's fields plus what its current and READY builds say."""
    ready = session.get(Build, task.ready_build_id) if task.ready_build_id else None
    current = session.get(Build, task.current_build_id) if task.current_build_id else None
    return {
        "task": task,
        "image": ready.image if ready else None,
        "digest": ready.digest if ready else None,
        "commit": ready.commit if ready else (current.commit if current else None),
        "current_build": current,
    }


def _task_by_ref(session: Session, project_id: str, ref: int | str) -> Task | None:
    if isinstance(ref, int) or (ref.isascii() and ref.isdigit()):
        return session.get(Task, int(ref)) if id_in_range(Task, int(ref)) else None
    own = session.execute(
        select(Task).where(Task.project_id == project_id, Task.name == ref)
    ).scalar_one_or_none()
    if own is not None:
        return own
    public = list(
        session.execute(
            select(Task).where(Task.public.is_(True), Task.name == ref).limit(2)
        ).scalars()
    )
    if len(public) > 1:
        raise InvalidInput(f"more than one public task is named {ref!r}: use its id")
    return public[0] if public else None


def get_owned_task(session: Session, project_id: str, task_id: int | str) -> Task:
    """A task of the project, by id or name."""
    return find_by_ref(session, Task, project_id, task_id, "task")
