"""Jobs: creation (targets, snapshots, the graph of runs), reads, cancel, logs.

Creating a job freezes everything it will use: the workflow version's steps,
each step's READY build (image and command) and each target host's fields and
resolved variables. Later edits to tasks, workflows or inventory do not touch
a job that exists.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session, undefer

from craton_wf.db.models import (
    Build,
    Host,
    Job,
    JobHost,
    Run,
    RunDependency,
    RunLog,
    Task,
    User,
    Workflow,
    utcnow,
)
from craton_wf.domain.states import (
    FINAL_JOB_STATES,
    BuildStatus,
    HostStatus,
    JobStatus,
)
from craton_wf.domain.variables import matches_vars, parse_vars_filters
from craton_wf.domain.waves import rollout_columns
from craton_wf.engine import scheduling, waves
from craton_wf.engine.events import record_event
from craton_wf.errors import Conflict, InvalidInput, NotFound
from craton_wf.services import approvals, policy, project_secrets
from craton_wf.services import tasks as task_service
from craton_wf.services.auth import Principal
from craton_wf.services.inputs import StepIn
from craton_wf.services.inventory import host_query
from craton_wf.services.job_graph import (
    HOST_COLUMNS,
    FleetVariables,
    load_hosts,
    store_graph,
)
from craton_wf.services.lookups import find_by_ref, get_owned, id_in_range
from craton_wf.services.pagination import Page, PageRequest, paginate, scoped
from craton_wf.services.workflows import get_version, get_workflow, normalize_steps

JOB_SORT_KEYS = ("id", "status", "created_at")
MAX_CONCURRENCY = 1000


def create_job(
    session: Session,
    project_id: str,
    user_id: int | None,
    data: dict[str, Any],
    principal: Principal | None = None,
    require_approval: bool = True,
) -> Job:
    """The job, its graph of runs, and its first runs queued.

    With ``principal`` (an API caller), every task the job runs must be one the
    caller may run (``policy.may_run_task``); every build it runs must be
    approved (``services.approvals``) unless ``require_approval`` is off.
    """
    workflow_ref, task_ref = data.get("workflow"), data.get("task")
    if (workflow_ref is None) == (task_ref is None):
        raise InvalidInput("give exactly one of workflow or task")
    concurrency = int(data.get("concurrency") or 1)
    max_failures = int(data.get("max_failures") or 0)
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise InvalidInput(f"concurrency must be between 1 and {MAX_CONCURRENCY}")
    if max_failures < 0:
        raise InvalidInput("max_failures must be zero or more")
    variables = data.get("variables") or {}
    if not isinstance(variables, dict):
        raise InvalidInput("variables must be an object")

    workflow = None
    if workflow_ref is not None:
        workflow = get_workflow(session, project_id, workflow_ref)
        version = get_version(session, workflow, data.get("workflow_version"))
        raw_steps, version_number = version.steps, version.version
    elif principal is not None:
        task = task_service.find_runnable_task(session, principal, task_ref)
        raw_steps = normalize_steps(session, project_id, [StepIn(task=task.id)], principal)
        version_number = None
    else:
        task = find_by_ref(session, Task, project_id, task_ref, "task")
        raw_steps = normalize_steps(session, project_id, [StepIn(task=task.id)])
        version_number = None
    steps = [
        _snapshot_step(session, project_id, index, step, principal, require_approval)
        for index, step in enumerate(raw_steps)
    ]
    hosts = _target_hosts(session, project_id, data.get("hosts"), data.get("filters"))

    timeout = data.get("timeout")
    rollout = rollout_columns(
        data.get("waves"), data.get("wave_pause"), data.get("wave_gate"), len(hosts)
    )
    job = Job(
        project_id=project_id,
        name=data.get("name") or (workflow.name if workflow else steps[0]["task_name"]),
        workflow_id=workflow.id if workflow else None,
        workflow_version=version_number,
        task_id=steps[0]["task_id"] if workflow is None else None,
        status=JobStatus.PENDING.value,
        variables=variables,
        targets={"hosts": data.get("hosts") or [], "filters": data.get("filters") or {}},
        steps=steps,
        concurrency=concurrency,
        max_failures=max_failures,
        timeout_seconds=int(timeout) if timeout else None,
        deadline=utcnow() + timedelta(seconds=int(timeout)) if timeout else None,
        retry_of_job_id=data.get("retry_of_job_id"),
        created_by=user_id,
        **rollout,
    )
    session.add(job)
    session.flush()
    store_graph(session, job, steps, hosts)
    record_event(
        session,
        job.id,
        "job_created",
        f"{len(steps)} step(s) on {len(hosts)} host(s), concurrency {concurrency}",
    )
    _start(session, job)
    session.flush()
    return job


def _start(session: Session, job: Job) -> None:
    """Open the first wave, if the job has waves, and start the first hosts."""
    if waves.has_waves(job):
        waves.first_wave(session, job)
    scheduling.start_job(session, job)


def _snapshot_step(
    session: Session,
    project_id: str,
    index: int,
    step: dict[str, Any],
    principal: Principal | None = None,
    require_approval: bool = True,
) -> dict:
    task = session.get(Task, step["task_id"])
    if task is None or (task.project_id != project_id and not task.public):
        raise Conflict(f"step {step['name']!r}: its task no longer exists")
    if principal is not None:
        if not policy.may_see_task(principal, task):
            raise Conflict(f"step {step['name']!r}: its task no longer exists")
        policy.may_run_task(principal, task.name, task.kind, task.restricted_to)
    build = session.get(Build, task.ready_build_id) if task.ready_build_id else None
    if build is None or build.status != BuildStatus.READY.value or not build.image:
        advice = _not_ready_advice(task.status)
        raise Conflict(f"task {task.name!r} is not READY (status {task.status}): {advice}")
    if require_approval:
        approvals.require_approved(session, task.name, build.id, build.digest, public=task.public)
    secrets = _step_environment(project_id, step, task)
    project_secrets.require_defined(session, project_id, secrets)
    return {
        **step,
        "index": index,
        "task_name": task.name,
        "build_id": build.id,
        "image": build.image,
        "digest": build.digest,
        "command": list(task.command),
        "needs_network": task.needs_network,
        "resources": dict(task.resources or {}),
        "placement": list(task.placement or []),
        "secrets": sorted(secrets),
        "fingerprint": approvals.execution_fingerprint(task),  # what the approval covered
    }


def _not_ready_advice(status: str) -> str:
    """Waiting helps only a build that is still to finish."""
    if status == BuildStatus.FAILED.value:
        return "its build failed; fix the task and build it again (its build log says why)"
    if status in (BuildStatus.PENDING.value, BuildStatus.BUILDING.value):
        return "wait for its build"
    return "build it"


def _step_environment(project_id: str, step: dict[str, Any], task: Task) -> set[str]:
    """The secrets a step's containers get: those the task declares (its approval
    covers them); of a task of another project (public), only those this
    project's step names. Checked again here, not only when the workflow was
    written: the task's list may have changed since, and rows stored before
    the rules may break them."""
    chosen = project_secrets.check_step_secrets(
        step["name"], task.name, step.get("secrets"), task.secrets or []
    )
    secrets = set(chosen)
    if task.project_id == project_id:
        secrets.update(project_secrets.check_secret_names(task.secrets or []))
    return secrets


def _target_hosts(
    session: Session, project_id: str, host_refs: Any, filters: Any
) -> list[Row[Any]]:
    """The hosts named (in the order given), then those the filters match (by
    name), each once, as :data:`~craton_wf.services.job_graph.HOST_COLUMNS`."""
    if not host_refs and not filters:
        raise InvalidInput("name the target hosts: hosts, or filters (region, cell, label, vars)")
    if host_refs is not None and not isinstance(host_refs, list):
        raise InvalidInput("hosts must be a list of host ids or names")
    chosen: dict[int, Row[Any]] = {}
    for host in _hosts_by_ref(session, project_id, host_refs or []):
        chosen.setdefault(host.id, host)
    if filters:
        if not isinstance(filters, dict):
            raise InvalidInput("filters must be an object")
        unknown = set(filters) - {
            "region",
            "cell",
            "cloud",
            "label",
            "device_type",
            "vars",
            "name",
            "active",
        }
        if unknown:
            raise InvalidInput(f"unknown filters: {', '.join(sorted(unknown))}")
        normalized = dict(filters)
        for key in ("label", "vars"):
            if isinstance(normalized.get(key), str):
                normalized[key] = [normalized[key]]
        # vars match resolved variables: resolved here for the whole fleet at
        # once, rather than host by host as a host list does
        vars_filters = parse_vars_filters(normalized.pop("vars", None) or [])
        stmt = (
            host_query(session, project_id, normalized)
            .with_only_columns(*HOST_COLUMNS)
            .order_by(Host.name, Host.id)
        )
        matching = list(session.connection().execute(stmt))
        if vars_filters:
            fleet = FleetVariables(session, project_id, matching)
            matching = [h for h in matching if matches_vars(fleet.variables(h), vars_filters)]
        for host in matching:
            chosen.setdefault(host.id, host)
    if not chosen:
        raise InvalidInput(f"no host matches {describe_filters(filters)}")
    return list(chosen.values())


def describe_filters(filters: dict[str, Any]) -> str:
    """``label=compute, region=dc1``: the filters as the user gave them (values cut at 80)."""

    def shown(value: Any) -> str:
        text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        return text if len(text) <= 80 else text[:77] + "..."

    return ", ".join(f"{key}={shown(value)}" for key, value in filters.items()) or "the filters"


_CHUNK = 1000  # names per query, well inside every database's parameter limit


def _hosts_by_ref(session: Session, project_id: str, refs: list[Any]) -> list[Row[Any]]:
    """The hosts named by ``refs`` (ids or names, as :func:`find_by_ref` takes
    them), in order, asked for with a query per thousand rather than one each:
    a job over a fleet lists thousands. The first bad reference is the error."""
    ids = [
        int(ref)
        for ref in refs
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit() and ref.isascii())
    ]
    wanted = sorted({i for i in ids if id_in_range(Host, i)})
    names = sorted(
        {
            ref
            for ref in refs
            if isinstance(ref, str) and ref and not (ref.isascii() and ref.isdigit())
        }
    )
    by_id = {host.id: host for host in load_hosts(session, project_id, wanted)}
    by_name: dict[str, list[Row[Any]]] = {}
    for start in range(0, len(names), _CHUNK):
        for host in session.connection().execute(
            select(*HOST_COLUMNS)
            .where(Host.project_id == project_id, Host.name.in_(names[start : start + _CHUNK]))
            .order_by(Host.id)
        ):
            by_name.setdefault(host.name, []).append(host)
    hosts = []
    for ref in refs:
        if isinstance(ref, str) and ref in by_name:
            matches = by_name[ref]
            if len(matches) > 1:
                raise InvalidInput(f"more than one host is named {ref!r}: use its id")
            hosts.append(matches[0])
        elif (
            isinstance(ref, int | str)
            and (str(ref).isascii() and str(ref).isdigit())
            and int(ref) in by_id
        ):
            hosts.append(by_id[int(ref)])
        else:  # not found, or not a reference at all: as one lookup says it
            found = find_by_ref(session, Host, project_id, ref, "host")
            hosts.extend(load_hosts(session, project_id, [found.id]))
    return hosts


def retry_job(
    session: Session,
    project_id: str,
    user_id: int | None,
    old: Job,
    failed_only: bool,
    require_approval: bool = True,
    principal: Principal | None = None,
) -> Job:
    """A new job, linked to ``old``, running its steps again on its (failed) hosts.

    The steps snapshot (images included) is the old job's; the hosts' variables
    are resolved again, so a fix made in the inventory is what the retry sees.
    With ``principal`` (an API caller), it must be allowed to run every task of
    the job now, as if it created the job (``policy.may_run_task``). A build
    whose approval was revoked since is refused, and so is a step whose task
    changed what it runs since (its approval covered the old command).
    """
    if old.status not in {s.value for s in FINAL_JOB_STATES}:
        raise Conflict(f"job {old.id} has not finished ({old.status}): cancel it or wait")
    for step in old.steps:
        _check_retry_step(session, old, step, principal, require_approval)
    wanted = [
        host_id
        for host_id, status in session.execute(
            select(JobHost.host_id, JobHost.status)
            .where(JobHost.job_id == old.id)
            .order_by(JobHost.position)
        )
        if host_id is not None and (not failed_only or status == HostStatus.FAILED.value)
    ]
    if not wanted:
        what = "no failed host" if failed_only else "no host left in the inventory"
        raise InvalidInput(f"job {old.id} has {what} to retry")
    hosts = load_hosts(session, project_id, wanted)
    job = Job(
        project_id=project_id,
        name=old.name,
        workflow_id=old.workflow_id,
        workflow_version=old.workflow_version,
        task_id=old.task_id,
        status=JobStatus.PENDING.value,
        variables=old.variables,
        targets={
            "hosts": [h.id for h in hosts],
            "retry_of": old.id,
            "failed_hosts_only": failed_only,
        },
        steps=old.steps,
        concurrency=old.concurrency,
        max_failures=old.max_failures,
        timeout_seconds=old.timeout_seconds,
        deadline=utcnow() + timedelta(seconds=old.timeout_seconds) if old.timeout_seconds else None,
        retry_of_job_id=old.id,
        created_by=user_id,
        # A retry rolls out as the job did: its waves, resized over the hosts retried.
        **rollout_columns(old.waves, old.wave_pause_seconds, old.wave_gate, len(hosts)),
    )
    session.add(job)
    session.flush()
    store_graph(session, job, old.steps, hosts)
    record_event(
        session,
        job.id,
        "job_created",
        f"retry of job {old.id}: {len(hosts)} host(s)",
        retry_of=old.id,
    )
    record_event(session, old.id, "job_retried", f"retried as job {job.id}", retry_job=job.id)
    _start(session, job)
    session.flush()
    return job


def _check_retry_step(
    session: Session,
    old: Job,
    step: dict[str, Any],
    principal: Principal | None,
    require_approval: bool,
) -> None:
    task = session.get(Task, step["task_id"])
    if task is None:
        raise Conflict(f"step {step['name']!r}: its task no longer exists")
    if principal is not None:
        policy.may_run_task(principal, task.name, task.kind, task.restricted_to)
        if not policy.may_see_task(principal, task):
            raise Conflict(f"step {step['name']!r}: its task no longer exists")
    # The steps are replayed as the old job snapshotted them: their secrets too.
    project_secrets.check_step_secrets(
        step["name"], task.name, step.get("secrets"), task.secrets or []
    )
    if not require_approval:
        return
    approvals.require_approved(
        session, step["task_name"], step["build_id"], step["digest"], public=task.public
    )
    fingerprint = step.get("fingerprint")  # absent from jobs made before it was recorded
    if fingerprint is not None and fingerprint != approvals.execution_fingerprint(task):
        raise Conflict(
            f"task {task.name} changed what it runs since job {old.id} was created "
            f"({', '.join(approvals.EXECUTION_FIELDS)}): create a new job"
        )


def get_job(session: Session, project_id: str, job_id: Any) -> Job:
    return get_owned(session, Job, project_id, job_id, "job")


def list_jobs(
    session: Session, project_id: str, page: PageRequest, filters: dict[str, Any]
) -> Page[Job]:
    stmt = scoped(Job, project_id).options(undefer(Job.targets))  # read for every job listed
    for key in ("status", "workflow_id", "task_id", "name"):
        if filters.get(key) is not None:
            stmt = stmt.where(getattr(Job, key) == filters[key])
    return paginate(session, stmt, Job, page, JOB_SORT_KEYS)


def job_summary(session: Session, job: Job) -> dict[str, dict[str, int]]:
    hosts = Counter(
        dict(
            session.execute(
                select(JobHost.status, func.count())
                .where(JobHost.job_id == job.id)
                .group_by(JobHost.status)
            ).all()
        )
    )
    runs = Counter(
        dict(
            session.execute(
                select(Run.status, func.count()).where(Run.job_id == job.id).group_by(Run.status)
            ).all()
        )
    )
    return {"hosts": dict(hosts), "runs": dict(runs)}


def job_names(session: Session, job: Job) -> dict[str, str | None]:
    """What a job list shows instead of ids: its workflow's or task's name and its creator's."""
    workflow = session.get(Workflow, job.workflow_id) if job.workflow_id else None
    task = session.get(Task, job.task_id) if job.task_id else None
    creator = session.get(User, job.created_by) if job.created_by else None
    return {
        "workflow_name": workflow.name if workflow else None,
        "task_name": task.name if task else None,
        "created_by_name": creator.name if creator else None,
    }


def list_job_hosts(session: Session, job: Job) -> list[JobHost]:
    return list(
        session.execute(
            select(JobHost).where(JobHost.job_id == job.id).order_by(JobHost.position)
        ).scalars()
    )


def _job_host(session: Session, job: Job, ref: Any) -> JobHost:
    stmt = select(JobHost).where(JobHost.job_id == job.id)
    if isinstance(ref, int) or (str(ref).isascii() and str(ref).isdigit()):
        stmt = stmt.where((JobHost.host_id == int(ref)) | (JobHost.host_name == str(ref)))
    else:
        stmt = stmt.where(JobHost.host_name == str(ref))
    host = session.execute(stmt.limit(1)).scalar_one_or_none()
    if host is None:
        raise NotFound(f"host {ref} is not a target of job {job.id}")
    return host


def list_runs(
    session: Session, job: Job, host: Any = None, step: str | None = None
) -> list[tuple[Run, JobHost | None, list[int]]]:
    stmt = (
        select(Run, JobHost)
        .outerjoin(JobHost, JobHost.id == Run.job_host_id)
        .where(Run.job_id == job.id)
    )
    if host is not None:
        stmt = stmt.where(Run.job_host_id == _job_host(session, job, host).id)
    if step is not None:
        stmt = stmt.where(Run.step_name == step)
    rows = session.execute(stmt.order_by(Run.id)).all()
    deps: dict[int, list[int]] = {}
    for run_id, dep_id in session.execute(
        select(RunDependency.run_id, RunDependency.depends_on_id)
        .join(Run, Run.id == RunDependency.run_id)
        .where(Run.job_id == job.id)
    ):
        deps.setdefault(run_id, []).append(dep_id)
    return [(run, job_host, deps.get(run.id, [])) for run, job_host in rows]


class StoredLine(NamedTuple):
    """A stored log line as read back: its row's columns, no ORM object."""

    id: int
    run_id: int
    seq: int
    ts: datetime
    stream: str
    line: str


LogRow = tuple[StoredLine, str, str]  # the line, its host's name, its step's name


def read_logs(
    session: Session,
    job: Job,
    *,
    host: Any = None,
    step: str | None = None,
    run_id: int | None = None,
    after: int = 0,
    from_seq: int | None = None,
    limit: int = 1000,
) -> list[LogRow]:
    """Log lines of the job in storage order, with host and step names.

    Pages are keyed on the last line's id (``after``); with ``run_id``, a page
    may also start at a line number of that run (``from_seq``, from 1). A
    run's lines are numbered in the order they were stored, so its pages are
    read along its (run, number) index, from the number of the line ``after``
    when it is one of the run's (a run followed from its end reads only what
    is new); a job's, along its (job, id) one. Lines are read as plain rows:
    a page of 10,000 costs no ORM object each.
    """
    stmt = _lines(session, job, host, step, run_id).where(RunLog.id > after)
    order = RunLog.id
    if run_id is not None:
        order = RunLog.seq
        after_seq = _seq_of(session, run_id, after) if from_seq is None and after > 0 else None
        if after_seq is not None:
            from_seq = after_seq + 1
        if from_seq is not None:
            stmt = stmt.where(RunLog.seq >= from_seq)
    return _log_rows(session, stmt.order_by(order).limit(limit))


def read_logs_before(
    session: Session,
    job: Job,
    *,
    host: Any = None,
    step: str | None = None,
    run_id: int | None = None,
    before: int | None = None,
    limit: int = 1000,
) -> list[LogRow]:
    """The ``limit`` newest lines before line ``before`` (the last ones without it), oldest
    first: a long log opens at its end and is read back a page at a time.

    A run's pages go backwards along its (run, number) index from the number
    of line ``before``; a job's along its (job, id) index. Either way the
    page costs its own rows, however long the log.
    """
    stmt = _lines(session, job, host, step, run_id)
    before_seq = None if run_id is None or before is None else _seq_of(session, run_id, before)
    if run_id is not None and (before is None or before_seq is not None):
        if before_seq is not None:
            stmt = stmt.where(RunLog.seq < before_seq)
        rows = _log_rows(session, stmt.order_by(RunLog.seq.desc()).limit(limit))
    else:  # a job's page, or a run's before a line of another run
        if before is not None:
            stmt = stmt.where(RunLog.id < before)
        rows = _log_rows(session, stmt.order_by(RunLog.id.desc()).limit(limit))
    rows.reverse()
    return rows


def _lines(session: Session, job: Job, host: Any, step: str | None, run_id: int | None) -> Any:
    stmt = (
        select(
            RunLog.id,
            RunLog.run_id,
            RunLog.seq,
            RunLog.ts,
            RunLog.stream,
            RunLog.line,
            JobHost.host_name,
            Run.step_name,
        )
        .join(Run, Run.id == RunLog.run_id)
        .outerjoin(JobHost, JobHost.id == Run.job_host_id)
        .where(RunLog.job_id == job.id)
    )
    if host is not None:
        stmt = stmt.where(Run.job_host_id == _job_host(session, job, host).id)
    if step is not None:
        stmt = stmt.where(Run.step_name == step)
    if run_id is not None:
        stmt = stmt.where(RunLog.run_id == run_id)
    return stmt


def _seq_of(session: Session, run_id: int, line_id: int) -> int | None:
    """The number of line ``line_id`` in run ``run_id`` (None: not one of the run's lines)."""
    return session.execute(
        select(RunLog.seq).where(RunLog.id == line_id, RunLog.run_id == run_id)
    ).scalar_one_or_none()


def _log_rows(session: Session, stmt: Any) -> list[LogRow]:
    return [(StoredLine(*row[:6]), row[6] or "(job)", row[7]) for row in session.execute(stmt)]


def check_log_filters(session: Session, job: Job, *, host: Any, run_id: int | None) -> None:
    """Refuse (404) a host that is not a target of the job, a run that is not one of its."""
    if host is not None:
        _job_host(session, job, host)
    if run_id is not None:
        get_run_of_job(session, job, run_id)


def get_run_of_job(session: Session, job: Job, run_id: int) -> Run:
    run = session.get(Run, run_id)
    if run is None or run.job_id != job.id:
        raise NotFound(f"run {run_id} is not a run of job {job.id}")
    return run


def cancel(session: Session, job: Job, reason: str = "cancelled by request") -> Job:
    job = scheduling.lock_job(session, job.id)
    return scheduling.cancel_job(session, job, reason)


def resume(session: Session, job: Job, by: str) -> Job:
    """A job paused at a wave gate goes on; ``Conflict`` unless it is PAUSED."""
    job = scheduling.lock_job(session, job.id)
    return scheduling.resume_job(session, job, by)


def abort(session: Session, job: Job, by: str) -> Job:
    """End a running or paused job: the hosts not started never run (a cancel)."""
    job = scheduling.lock_job(session, job.id)
    if job.status in {s.value for s in FINAL_JOB_STATES}:
        raise Conflict(f"job {job.id} has finished ({job.status}): nothing to abort")
    return scheduling.cancel_job(session, job, f"aborted by {by}")
