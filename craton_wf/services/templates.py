"""Job templates: a saved launch with typed parameters, and launching it.

A template names what a job runs (a workflow, at a pinned version or the
latest, or one task), its targets as ``job-create`` takes them, concurrency,
failure budget, timeout, rollout waves (sized over each launch's hosts),
default variables and declared parameters. A launch
gives values for the parameters; each is checked against its declaration
(unknown, missing while required, wrong type, not one of the choices: a 422
naming the parameter), and the values, over the parameters' defaults, over
the template's variables, are the job's variables.

The job itself is made by ``services.jobs.create_job`` with the launcher as
principal, so who may run which task (operators; auditors only audit tasks;
restricted tasks their roles) is decided where it is for every job. A
template is checked when it is written (its workflow or task exists, its
parameters are well declared) and again at launch: a workflow, task or host
may be gone since.

Values from the CLI arrive as strings (``--param count=3``): an int or bool
parameter takes its JSON type or the string a person would type for it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from craton_wf.db.models import Job, JobTemplate, Task, Workflow
from craton_wf.domain.waves import InvalidWaves, check_gate, check_wave_spec, parse_pause
from craton_wf.errors import Conflict, InvalidInput, InvalidParameter
from craton_wf.services import jobs as job_service
from craton_wf.services import tasks as task_service
from craton_wf.services.auth import Principal
from craton_wf.services.inputs import (
    JobTemplateCreate,
    JobTemplateUpdate,
    TemplateLaunch,
    TemplateParameter,
    TemplateTargets,
)
from craton_wf.services.lookups import check_name, find_by_ref, flush_unique
from craton_wf.services.pagination import Page, PageRequest, paginate, scoped
from craton_wf.services.workflows import get_version, get_workflow

TEMPLATE_SORT_KEYS = ("id", "name", "created_at")
TRUE_WORDS, FALSE_WORDS = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


def create_template(session: Session, me: Principal, data: JobTemplateCreate) -> JobTemplate:
    template = JobTemplate(project_id=me.project_id, created_by=me.user_id)
    _apply(session, me, template, data, data.model_fields_set | {"targets"})
    session.add(template)
    flush_unique(session, "job template", template.name)
    return template


def update_template(
    session: Session, me: Principal, template: JobTemplate, data: JobTemplateUpdate
) -> JobTemplate:
    _apply(session, me, template, data, data.model_fields_set)
    flush_unique(session, "job template", template.name)
    return template


def _apply(
    session: Session,
    me: Principal,
    template: JobTemplate,
    data: JobTemplateCreate | JobTemplateUpdate,
    given: set[str],
) -> None:
    """Copy the given fields onto ``template``, checking each as it comes."""
    if "name" in given and data.name is not None:
        template.name = check_name(data.name, "job template")
    if "description" in given:
        template.description = data.description
    if given & {"workflow", "task", "workflow_version"}:
        _set_what_it_runs(session, me, template, data, given)
    if "targets" in given and data.targets is not None:
        template.targets = _targets(data.targets)
    if "variables" in given and data.variables is not None:
        template.variables = data.variables
    if "parameters" in given and data.parameters is not None:
        template.parameters = _declare(data.parameters)
    for field in ("concurrency", "max_failures"):
        if field in given and getattr(data, field) is not None:
            setattr(template, field, getattr(data, field))
    if "timeout" in given:
        template.timeout_seconds = data.timeout
    if given & {"waves", "wave_pause", "wave_gate"}:
        _set_rollout(template, data, given)


def _set_rollout(
    template: JobTemplate, data: JobTemplateCreate | JobTemplateUpdate, given: set[str]
) -> None:
    """The waves its jobs roll out in, checked now (their sizes come with each launch's hosts)."""
    spec = data.waves if "waves" in given else template.waves
    pause = data.wave_pause if "wave_pause" in given else template.wave_pause_seconds
    gate = data.wave_gate if "wave_gate" in given else template.wave_gate
    if spec is None:
        if pause not in (None, 0, "") or gate not in (None, ""):
            raise InvalidWaves("wave_pause and wave_gate need waves")
        template.waves, template.wave_pause_seconds, template.wave_gate = None, 0, None
        return
    template.waves = check_wave_spec(spec)
    template.wave_pause_seconds = parse_pause(pause)
    template.wave_gate = check_gate(gate)


def _set_what_it_runs(
    session: Session,
    me: Principal,
    template: JobTemplate,
    data: JobTemplateCreate | JobTemplateUpdate,
    given: set[str],
) -> None:
    workflow_ref = data.workflow if "workflow" in given else template.workflow_id
    task_ref = data.task if "task" in given else template.task_id
    if (workflow_ref is None) == (task_ref is None):
        raise InvalidInput("give exactly one of workflow or task")
    if workflow_ref is not None:
        workflow = get_workflow(session, me.project_id, workflow_ref)
        version = data.workflow_version if "workflow_version" in given else None
        if version is not None:
            get_version(session, workflow, version)  # refuses a version that does not exist
        template.workflow_id, template.workflow_version, template.task_id = (
            workflow.id,
            version,
            None,
        )
    else:
        if "workflow_version" in given and data.workflow_version is not None:
            raise InvalidInput("workflow_version goes with a workflow, not a task")
        task = task_service.find_runnable_task(session, me, task_ref)
        template.task_id, template.workflow_id, template.workflow_version = task.id, None, None


def _targets(targets: TemplateTargets) -> dict[str, Any]:
    filters = targets.filters.model_dump(exclude_none=True) if targets.filters else {}
    if not targets.hosts and not filters:
        raise InvalidInput(
            "targets: name the hosts, or filters (region, cell, cloud, label, vars, …)"
        )
    return {"hosts": list(targets.hosts or []), "filters": filters}


def _declare(parameters: list[TemplateParameter]) -> list[dict[str, Any]]:
    """The parameters as stored, each checked: unique names, choices with a choice
    type only, a default of the parameter's own type (:func:`_stored`)."""
    seen: set[str] = set()
    for parameter in parameters:
        if parameter.name in seen:
            raise InvalidParameter(f"parameter {parameter.name!r} is declared twice")
        seen.add(parameter.name)
        if parameter.type == "choice" and not parameter.choices:
            raise InvalidParameter(f"parameter {parameter.name!r}: a choice needs choices")
        if parameter.type != "choice" and parameter.choices:
            raise InvalidParameter(
                f"parameter {parameter.name!r}: choices go with type choice, not {parameter.type}"
            )
    return [_stored(p) for p in parameters]


def _stored(parameter: TemplateParameter) -> dict[str, Any]:
    """The declaration as kept, its default as the parameter's type (the CLI sends "2")."""
    stored = parameter.model_dump(exclude_none=True)
    if parameter.default is not None:
        stored["default"] = _typed(parameter, parameter.default, "default")
    return stored


def _typed(parameter: TemplateParameter, value: Any, what: str = "value") -> Any:
    """``value`` as the parameter's type, or InvalidParameter naming it."""
    name, kind = parameter.name, parameter.type
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
    elif kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
            return value.strip().lower() in TRUE_WORDS
    elif isinstance(value, str):
        if kind == "choice" and value not in (parameter.choices or []):
            choices = ", ".join(parameter.choices or [])
            raise InvalidParameter(f"parameter {name!r}: {value!r} is not one of {choices}")
        return value
    article = "an" if kind == "int" else "a"
    raise InvalidParameter(f"parameter {name!r}: {what} {value!r} is not {article} {kind}")


def launch_values(template: JobTemplate, given: dict[str, Any]) -> dict[str, Any]:
    """The parameters' values for one launch: those given, typed, over the defaults."""
    declared = {p["name"]: TemplateParameter.model_validate(p) for p in template.parameters}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        known = ", ".join(declared) or "none"
        raise InvalidParameter(
            f"unknown parameter {unknown[0]!r} (template {template.name} takes: {known})"
        )
    values: dict[str, Any] = {}
    for name, parameter in declared.items():
        if name in given and given[name] is not None:
            values[name] = _typed(parameter, given[name])
        elif parameter.default is not None:
            values[name] = parameter.default
        elif parameter.required:
            raise InvalidParameter(f"parameter {name!r} is required")
    return values


def launch(
    session: Session,
    me: Principal,
    template: JobTemplate,
    data: TemplateLaunch,
    require_approval: bool = True,
) -> Job:
    """A job from the template, with the launch's parameters merged over its variables."""
    params = launch_values(template, data.params)
    if template.workflow_id is None and template.task_id is None:
        raise Conflict(
            f"job template {template.name}: its workflow or task was deleted; update the template"
        )
    job = job_service.create_job(
        session,
        me.project_id,
        me.user_id,
        {
            "workflow": template.workflow_id,
            "workflow_version": template.workflow_version,
            "task": template.task_id,
            "name": data.name or template.name,
            "hosts": template.targets.get("hosts") or None,
            "filters": template.targets.get("filters") or None,
            "variables": {**template.variables, **params},
            "concurrency": template.concurrency,
            "max_failures": template.max_failures,
            "timeout": template.timeout_seconds,
            "waves": template.waves,
            "wave_pause": template.wave_pause_seconds if template.waves else None,
            "wave_gate": template.wave_gate,
        },
        principal=me,
        require_approval=require_approval,
    )
    job.template_id, job.template_params = template.id, params
    session.flush()
    return job


def get_template(session: Session, project_id: str, ref: Any) -> JobTemplate:
    return find_by_ref(session, JobTemplate, project_id, ref, "job template")


def list_templates(
    session: Session, project_id: str, page: PageRequest, name: str | None = None
) -> Page[JobTemplate]:
    stmt = scoped(JobTemplate, project_id)
    if name:
        stmt = stmt.where(JobTemplate.name == name)
    return paginate(session, stmt, JobTemplate, page, TEMPLATE_SORT_KEYS)


def delete_template(session: Session, template: JobTemplate) -> None:
    """Jobs launched from it keep its id and their parameters."""
    session.delete(template)
    session.flush()


def names_of(session: Session, template: JobTemplate) -> dict[str, str | None]:
    """The workflow's or task's name beside its id, for reading."""
    workflow = session.get(Workflow, template.workflow_id) if template.workflow_id else None
    task = session.get(Task, template.task_id) if template.task_id else None
    return {
        "workflow_name": workflow.name if workflow else None,
        "task_name": task.name if task else None,
    }
