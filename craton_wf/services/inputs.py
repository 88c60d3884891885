"""What the services take: the typed inputs of their use cases (XCreate / XUpdate).

A service function takes one of these models, not a dict, so a bound a model
states (a length, a range, an enumeration, a type) is checked once, when the
model is made, and the service can rely on it. The API validates a request
body into the same model (``api.schemas`` re-exports them), which is how a
bad field becomes a 422 that names it and how the bound shows in the OpenAPI
document. What a model cannot state stays in the service: whatever needs the
database (a name already taken, a reference to another object) or the
platform's settings (resource maxima, git source rules), and rules of their
own module (a task or secret name's characters, a path inside a source).

Inputs forbid unknown fields, so a typo or a field a caller may not set
(``project_id``, ``status``, ``image``…) is refused by name, not silently
ignored. An update is partial: the fields a caller gave are the model's
``model_fields_set``; a field left out is not changed.

These models live below the API so that services never import it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from craton_wf.domain.redaction import MIN_REDACTED_LENGTH

# An id or a name; strict, so that a JSON true is neither (lax, it would be id 1).
Ref = StrictInt | StrictStr

# The largest number an integer column holds: a number past it is refused here,
# by name, not by the database.
MAX_INT = 2**31 - 1

# A secret's value: long enough for redaction to find it in logs, at most this long.
MAX_SECRET_VALUE = 64 * 1024


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


Short = Annotated[str, Field(max_length=64)]
Name = Annotated[str, Field(max_length=255)]
Path = Annotated[str, Field(max_length=1024)]

TaskKind = Literal["remediation", "audit"]
ProjectRole = Literal["viewer", "auditor", "operator", "admin"]


# --- tasks --------------------------------------------------------------------


class Resources(Input):
    """What a task asks for beyond the defaults, within the platform's maxima."""

    memory_mb: int | None = Field(default=None, gt=0, le=MAX_INT)
    cpus: float | None = Field(default=None, gt=0)
    pids: int | None = Field(default=None, gt=0, le=MAX_INT)


class TaskCreate(Input):
    name: str
    location: str | None = None
    ref: Name | None = None
    subdir: Path | None = None
    dockerfile: Path | None = None
    command: list[str] | str
    description: str | None = None
    kind: TaskKind = "remediation"
    public: bool = False
    restricted_to: list[ProjectRole] = Field(default_factory=list)
    needs_network: bool = False
    resources: Resources | None = None
    placement: list[Short] = Field(
        default_factory=list,
        description="where its containers may run: node.labels.KEY==VALUE, node.role==…",
    )
    secrets: list[Short] = Field(
        default_factory=list, description="the project's secrets it gets as environment variables"
    )


class TaskUpdate(Input):
    name: str | None = None
    location: str | None = None
    ref: Name | None = None
    subdir: Path | None = None
    dockerfile: Path | None = None
    command: list[str] | str | None = None
    description: str | None = None
    kind: TaskKind | None = None
    public: bool | None = None
    restricted_to: list[ProjectRole] | None = None
    needs_network: bool | None = None
    resources: Resources | None = None
    placement: list[Short] | None = None
    secrets: list[Short] | None = None


# --- workflows ----------------------------------------------------------------


class StepIn(Input):
    name: str | None = None
    task: Ref | None = None
    task_id: int | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    timeout: int | None = Field(default=None, gt=0, le=MAX_INT)
    retries: int = Field(default=0, ge=0, le=100)
    retry_delay: float = Field(default=5.0, ge=0, le=3600)
    required: bool = True
    once: bool = False
    depends_on: list[str] | None = None
    secrets: list[Short] | None = Field(
        default=None, description="the project's secrets this step gets as environment variables"
    )


class WorkflowCreate(Input):
    name: str
    description: str | None = None
    steps: list[StepIn | str] = Field(min_length=1, max_length=500)


class WorkflowUpdate(Input):
    name: str | None = None
    description: str | None = None
    steps: list[StepIn | str] | None = Field(default=None, min_length=1, max_length=500)


# --- users and tokens -------------------------------------------------------------

RoleName = Literal["viewer", "auditor", "operator", "admin", "root"]


class UserCreate(Input):
    name: Annotated[str, Field(min_length=1, max_length=255)]
    role: RoleName


class UserUpdate(Input):
    role: RoleName


class TokenCreate(Input):
    name: Short = ""
    user: Ref | None = None  # only root may issue one for another user
    expires_in: int | None = Field(default=None, description="seconds; none: no expiry", le=MAX_INT)


# --- secrets ----------------------------------------------------------------------

SecretValue = Annotated[str, Field(min_length=MIN_REDACTED_LENGTH, max_length=MAX_SECRET_VALUE)]


class SecretCreate(Input):
    name: Annotated[str, Field(max_length=128)]
    value: SecretValue
    description: str | None = None


class SecretUpdate(Input):
    value: SecretValue | None = None
    description: str | None = None


# --- jobs and job templates -------------------------------------------------------


class JobFilters(Input):
    region: Ref | None = None
    cell: Ref | None = None
    cloud: Ref | None = None
    name: str | None = None
    label: list[str] | str | None = None
    device_type: str | None = None
    vars: list[str] | str | None = None
    active: bool | None = None


ParameterName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
ParameterType = Literal["string", "int", "bool", "choice"]


class TemplateParameter(Input):
    """A value a launch fills in; it becomes the job variable of the same name."""

    name: ParameterName
    type: ParameterType = "string"
    default: StrictStr | StrictInt | bool | None = None
    required: bool = False
    description: Annotated[str, Field(max_length=1024)] | None = None
    choices: list[StrictStr] | None = Field(default=None, max_length=100)


class TemplateTargets(Input):
    """The hosts a launch runs on, as ``job-create`` takes them."""

    hosts: list[Ref] | None = None
    filters: JobFilters | None = None


class JobTemplateCreate(Input):
    name: str
    description: str | None = None
    workflow: Ref | None = None
    workflow_version: int | None = Field(
        default=None, ge=1, le=MAX_INT, description="none: the workflow's latest version"
    )
    task: Ref | None = None
    targets: TemplateTargets
    variables: dict[str, Any] = Field(default_factory=dict)
    parameters: list[TemplateParameter] = Field(default_factory=list, max_length=100)
    concurrency: int = Field(default=1, ge=1, le=1000)
    max_failures: int = Field(default=0, ge=0, le=MAX_INT)
    timeout: int | None = Field(default=None, gt=0, le=MAX_INT)
    # Rollout waves of the jobs it launches, as job-create takes them (domain.waves).
    waves: list[StrictInt | str] | None = Field(default=None, min_length=1, max_length=100)
    wave_pause: StrictInt | str | None = Field(
        default=None, description="seconds, or a duration: '30s', '10m', '2h'"
    )
    wave_gate: Literal["approve"] | None = None


class JobTemplateUpdate(Input):
    """A partial update; to switch between workflow and task, give the new one and
    null for the other."""

    name: str | None = None
    description: str | None = None
    workflow: Ref | None = None
    workflow_version: int | None = Field(default=None, ge=1, le=MAX_INT)
    task: Ref | None = None
    targets: TemplateTargets | None = None
    variables: dict[str, Any] | None = None
    parameters: list[TemplateParameter] | None = Field(default=None, max_length=100)
    concurrency: int | None = Field(default=None, ge=1, le=1000)
    max_failures: int | None = Field(default=None, ge=0, le=MAX_INT)
    timeout: int | None = Field(default=None, gt=0, le=MAX_INT)
    # Rollout waves of the jobs it launches, as job-create takes them (domain.waves).
    waves: list[StrictInt | str] | None = Field(default=None, min_length=1, max_length=100)
    wave_pause: StrictInt | str | None = Field(
        default=None, description="seconds, or a duration: '30s', '10m', '2h'"
    )
    wave_gate: Literal["approve"] | None = None


class TemplateLaunch(Input):
    params: dict[str, Any] = Field(default_factory=dict)
    name: Name | None = None


# --- schedules ---------------------------------------------------------------------

MissedPolicy = Literal["skip", "run-once"]
OverlapPolicy = Literal["allow", "skip-if-running", "queue"]


class ScheduleCreate(Input):
    name: str
    template: Ref
    cron: Annotated[str, Field(max_length=255, examples=["0 2 * * *", "@daily"])]
    timezone: Annotated[str, Field(max_length=64)] = "UTC"
    params: dict[str, Any] = Field(
        default_factory=dict, description="the template's parameters for every launch"
    )
    missed_policy: MissedPolicy = "skip"
    overlap_policy: OverlapPolicy = "allow"
    paused: bool = False


class ScheduleUpdate(Input):
    name: str | None = None
    template: Ref | None = None
    cron: Annotated[str, Field(max_length=255)] | None = None
    timezone: Annotated[str, Field(max_length=64)] | None = None
    params: dict[str, Any] | None = None
    missed_policy: MissedPolicy | None = None
    overlap_policy: OverlapPolicy | None = None
    paused: bool | None = None
