"""Request and response schemas (XCreate / XUpdate / XRead).

Inputs forbid unknown fields, so a typo or a field a caller may not set
(``project_id``, ``status``, ``image``…) is a 422 naming it, not silently ignored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    create_model,
)
from pydantic_core import PydanticCustomError

from craton_wf.domain.addresses import is_ip_address

# The inputs the services take are defined beside them (``services.inputs``);
# the API validates request bodies into the same models.
from craton_wf.services.inputs import MAX_INT, Input, Name, Ref, Short
from craton_wf.services.inputs import JobFilters as JobFilters
from craton_wf.services.inputs import JobTemplateCreate as JobTemplateCreate
from craton_wf.services.inputs import JobTemplateUpdate as JobTemplateUpdate
from craton_wf.services.inputs import ProjectRole as ProjectRole
from craton_wf.services.inputs import Resources as Resources
from craton_wf.services.inputs import ScheduleCreate as ScheduleCreate
from craton_wf.services.inputs import ScheduleUpdate as ScheduleUpdate
from craton_wf.services.inputs import SecretCreate as SecretCreate
from craton_wf.services.inputs import SecretUpdate as SecretUpdate
from craton_wf.services.inputs import StepIn as StepIn
from craton_wf.services.inputs import TaskCreate as TaskCreate
from craton_wf.services.inputs import TaskUpdate as TaskUpdate
from craton_wf.services.inputs import TemplateLaunch as TemplateLaunch
from craton_wf.services.inputs import TokenCreate as TokenCreate
from craton_wf.services.inputs import UserCreate as UserCreate
from craton_wf.services.inputs import UserUpdate as UserUpdate
from craton_wf.services.inputs import WorkflowCreate as WorkflowCreate
from craton_wf.services.inputs import WorkflowUpdate as WorkflowUpdate


def _ip_address(value: str) -> str:
    if not is_ip_address(value):
        raise PydanticCustomError(
            "ip_address", "'{value}' is not an IPv4 or IPv6 address", {"value": value}
        )
    return value


IpAddress = Annotated[Short, AfterValidator(_ip_address)]


def _one_label(value: Any) -> Any:
    # Craton's CLI sends its -l/--labels value as it was typed: one string.
    return [value] if isinstance(value, str) else value


Labels = Annotated[list[str], BeforeValidator(_one_label)]


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Link(BaseModel):
    rel: str
    href: str


# --- inventory ----------------------------------------------------------------


class ProjectCreate(Input):
    name: str
    variables: dict[str, Any] | None = None


class ProjectUpdate(Input):
    name: str | None = None
    variables: dict[str, Any] | None = None


class ProjectRead(Output):
    id: str
    name: str
    variables: dict[str, Any]
    created_at: datetime
    updated_at: datetime | None


class CloudCreate(Input):
    name: str
    note: str | None = None
    variables: dict[str, Any] | None = None


class CloudUpdate(Input):
    name: str | None = None
    note: str | None = None
    variables: dict[str, Any] | None = None


class CloudRead(Output):
    id: int
    project_id: str
    name: str
    note: str | None
    variables: dict[str, Any]
    created_at: datetime
    updated_at: datetime | None


class RegionCreate(CloudCreate):
    cloud_id: Ref | None = None


class RegionUpdate(CloudUpdate):
    cloud_id: Ref | None = Field(
        default=None, description="moves the region, its cells and hosts to that cloud"
    )


class RegionRead(CloudRead):
    cloud_id: int


class CellCreate(CloudCreate):
    region_id: Ref
    cloud_id: Ref | None = Field(default=None, description="if given, the region's cloud")


class CellUpdate(CloudUpdate):
    region_id: Ref | None = Field(
        default=None, description="moves the cell and its hosts to that region"
    )
    cloud_id: Ref | None = Field(default=None, description="if given, the region's cloud")


class CellRead(RegionRead):
    region_id: int


class HostCreate(Input):
    name: str
    ip_address: IpAddress
    region_id: Ref
    cell_id: Ref | None = None
    cloud_id: Ref | None = None
    parent_id: Ref | None = None
    device_type: Short = "server"
    active: bool = True
    note: str | None = None
    labels: Labels | None = None
    variables: dict[str, Any] | None = None


class HostUpdate(Input):
    name: str | None = None
    ip_address: IpAddress | None = None
    region_id: Ref | None = None
    cloud_id: Ref | None = Field(default=None, description="if given, the region's cloud")
    cell_id: Ref | None = None
    parent_id: Ref | None = None
    device_type: Short | None = None
    active: bool | None = None
    note: str | None = None
    labels: Labels | None = None
    variables: dict[str, Any] | None = None


class HostRead(Output):
    id: int
    project_id: str
    cloud_id: int
    region_id: int
    cell_id: int | None
    parent_id: int | None
    name: str
    ip_address: str
    device_type: str
    active: bool
    note: str | None
    labels: list[str]
    variables: dict[str, Any]
    created_at: datetime
    updated_at: datetime | None


class LabelsBody(Input):
    labels: list[str]


# --- tasks --------------------------------------------------------------------


class BuildRequest(Input):
    ref: Name | None = None


class BuildRead(Output):
    id: int
    task_id: int
    number: int
    status: str
    ref: str | None
    commit: str | None
    image: str | None
    digest: str | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ApprovalRead(BaseModel):
    status: str  # approved | rejected | revoked | pending
    build: int | None
    digest: str | None
    by: str | None
    at: datetime | None
    reason: str | None = None


class ApprovalRequest(Input):
    build: int | None = Field(
        default=None, description="build number; default: the READY one", le=MAX_INT
    )
    digest: str | None = Field(default=None, description="must be the build's digest if given")
    reason: str | None = None


class TaskRead(Output):
    id: int
    project_id: str
    name: str
    description: str | None
    source_type: str
    location: str
    ref: str | None
    subdir: str | None
    dockerfile: str
    command: list[str]
    kind: str
    public: bool
    restricted_to: list[str]
    needs_network: bool
    resources: dict[str, Any] = Field(default_factory=dict)
    placement: list[str] = Field(default_factory=list)
    secrets: list[str] = Field(default_factory=list)
    status: str
    image: str | None = None
    digest: str | None = None
    commit: str | None = None
    ready_build_id: int | None
    current_build: BuildRead | None = None
    approval: ApprovalRead | None = None
    created_at: datetime
    updated_at: datetime | None


class BuildLogRead(Output):
    seq: int
    ts: datetime
    line: str


# --- workflows ----------------------------------------------------------------


class WorkflowRead(Output):
    id: int
    project_id: str
    name: str
    description: str | None
    version: int
    latest_version: int
    steps: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime | None


class WorkflowVersionRead(Output):
    version: int
    description: str | None
    steps: list[dict[str, Any]]
    created_at: datetime


# --- jobs ---------------------------------------------------------------------


class JobCreate(Input):
    workflow: Ref | None = None
    workflow_version: int | None = Field(default=None, ge=1, le=MAX_INT)
    task: Ref | None = None
    name: Name | None = None
    hosts: list[Ref] | None = None
    filters: JobFilters | None = None
    variables: dict[str, Any] = Field(default_factory=dict)
    concurrency: int = Field(default=1, ge=1, le=1000)
    max_failures: int = Field(default=0, ge=0, le=MAX_INT)
    timeout: int | None = Field(default=None, gt=0, le=MAX_INT)
    # Rollout waves (domain.waves): sizes or percentages of the hosts left; the
    # last entry applies to the rest.
    waves: list[StrictInt | str] | None = Field(
        default=None, min_length=1, max_length=100, examples=[[1, 5, "25%", "100%"]]
    )
    wave_pause: StrictInt | str | None = Field(
        default=None, description="seconds, or a duration: '30s', '10m', '2h'"
    )
    wave_gate: Literal["approve"] | None = Field(
        default=None, description="approve: the job waits in PAUSED after each wave"
    )


class JobRetry(Input):
    failed_hosts: bool = False


class JobRead(Output):
    id: int
    project_id: str
    name: str | None
    workflow_id: int | None
    workflow_version: int | None
    task_id: int | None
    status: str
    variables: dict[str, Any]
    targets: dict[str, Any]
    concurrency: int
    max_failures: int
    timeout_seconds: int | None
    steps: list[dict[str, Any]]
    message: str | None
    retry_of_job_id: int | None
    created_by: int | None = None
    # Names beside the ids, for lists: who launched it, what it runs.
    created_by_name: str | None = None
    workflow_name: str | None = None
    task_name: str | None = None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    summary: dict[str, dict[str, int]] = Field(default_factory=dict)
    # Launched from a job template: which, and the parameters' values it got.
    template_id: int | None = None
    template_params: dict[str, Any] | None = None
    # Rollout waves: as asked, their sizes, the wave under way (0: no waves),
    # and when the next one starts after a wave_pause.
    waves: list[int | str] | None = None
    wave_sizes: list[int] | None = None
    current_wave: int = 0
    wave_pause_seconds: int = 0
    wave_gate: str | None = None
    next_wave_at: datetime | None = None


class JobHostRead(Output):
    id: int
    host_id: int | None
    host_name: str
    position: int
    status: str
    failed_step: str | None
    started_at: datetime | None
    finished_at: datetime | None


class RunRead(Output):
    id: int
    job_id: int
    job_host_id: int | None
    host_id: int | None = None
    host_name: str | None = None
    step_index: int
    step_name: str
    task_id: int | None
    build_id: int | None
    image: str
    status: str
    attempt: int
    max_attempts: int
    exit_code: int | None
    container_name: str | None
    outputs: dict[str, Any]
    error: str | None
    # Whether the stored log misses lines (a "[craton] log gap" line says where)
    # or stopped at the per-run cap (its last line says so).
    log_gap: bool = False
    log_capped: bool = False
    created_at: datetime
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    depends_on: list[int] = Field(default_factory=list)


class LogRead(BaseModel):
    id: int
    run_id: int
    host_name: str
    step_name: str
    seq: int
    ts: datetime
    stream: str
    line: str


class EventRead(Output):
    id: int
    kind: str
    message: str
    run_id: int | None
    host_name: str | None = None  # the host its run ran on
    runner_id: str | None
    data: dict[str, Any]
    created_at: datetime


class RunnerRead(Output):
    id: int | str
    name: str
    hostname: str
    pid: int
    executor: str
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None
    alive: bool = False


# --- users, tokens, audit ----------------------------------------------------------


class UserRead(BaseModel):
    id: int
    name: str
    role: str | None
    is_root: bool
    active: bool
    created_at: datetime


class TokenRead(BaseModel):
    id: int
    name: str
    user: str
    prefix: str
    project_id: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class TokenIssued(TokenRead):
    token: str  # shown once


class AuditEventRead(Output):
    id: int
    ts: datetime
    user_id: int | None
    user_name: str | None
    project_id: str | None
    action: str
    object_type: str | None
    object_id: str | None
    method: str
    path: str
    status: int
    outcome: str
    client: str | None
    detail: str | None


# --- secrets ----------------------------------------------------------------------


class SecretRead(Output):
    """A secret as the API shows it: never its value."""

    id: int
    project_id: str
    name: str
    description: str | None
    created_at: datetime
    updated_at: datetime | None


# --- answers: errors, lists, and the bodies of the few routes without a model -------


class ErrorRead(BaseModel):
    """Every error's body (``api.errors``): a human message and a machine-readable code."""

    message: str
    status: int
    code: str


class JobTemplateRead(Output):
    id: int
    project_id: str
    name: str
    description: str | None
    workflow_id: int | None
    workflow_name: str | None = None
    workflow_version: int | None = Field(description="none: the workflow's latest version")
    task_id: int | None
    task_name: str | None = None
    targets: dict[str, Any]
    variables: dict[str, Any]
    parameters: list[dict[str, Any]]
    concurrency: int
    max_failures: int
    timeout_seconds: int | None
    waves: list[int | str] | None = None
    wave_pause_seconds: int = 0
    wave_gate: str | None = None
    created_by: int | None
    created_at: datetime
    updated_at: datetime | None


class ScheduleRead(Output):
    id: int
    project_id: str
    name: str
    template_id: int
    template_name: str | None = None
    cron: str
    timezone: str
    params: dict[str, Any]
    missed_policy: str
    overlap_policy: str
    paused: bool
    next_fire_at: datetime | None
    next_fires: list[datetime] = Field(default_factory=list, description="the next few, in UTC")
    queued_fire_at: datetime | None
    last_fire_at: datetime | None
    last_job_id: int | None
    created_by: int | None
    created_at: datetime
    updated_at: datetime | None


class ScheduleFireRead(Output):
    id: int
    schedule_id: int
    fire_time: datetime
    outcome: str = Field(description="launched, failed, skipped, queued or missed")
    job_id: int | None
    message: str | None
    created_at: datetime


def list_answer(
    model_name: str, key: str, item: type[BaseModel], *, links: bool = True
) -> type[BaseModel]:
    """The model of a list answer: ``{key: [item, ...]}``, with Craton's ``links``
    when the list is paged."""
    fields: dict[str, Any] = {key: (list[item], ...)}  # type: ignore[valid-type]
    if links:
        fields["links"] = (list[Link], ...)
    return create_model(model_name, **fields)


ProjectList = list_answer("ProjectList", "projects", ProjectRead)
HostList = list_answer("HostList", "hosts", HostRead)
TaskList = list_answer("TaskList", "tasks", TaskRead)
BuildList = list_answer("BuildList", "builds", BuildRead)
WorkflowList = list_answer("WorkflowList", "workflows", WorkflowRead)
WorkflowVersionList = list_answer(
    "WorkflowVersionList", "versions", WorkflowVersionRead, links=False
)
JobList = list_answer("JobList", "jobs", JobRead)
JobTemplateList = list_answer("JobTemplateList", "job_templates", JobTemplateRead)
ScheduleList = list_answer("ScheduleList", "schedules", ScheduleRead)
ScheduleFireList = list_answer("ScheduleFireList", "fires", ScheduleFireRead, links=False)
JobHostList = list_answer("JobHostList", "hosts", JobHostRead, links=False)
RunList = list_answer("RunList", "runs", RunRead, links=False)
EventList = list_answer("EventList", "events", EventRead, links=False)
RunnerList = list_answer("RunnerList", "runners", RunnerRead)
UserList = list_answer("UserList", "users", UserRead, links=False)
TokenList = list_answer("TokenList", "tokens", TokenRead, links=False)
AuditEventList = list_answer("AuditEventList", "audit_events", AuditEventRead)
SecretList = list_answer("SecretList", "secrets", SecretRead)


class VariablesRead(BaseModel):
    variables: dict[str, Any]


class WorkflowCheck(BaseModel):
    """A workflow checked as creating it would, written nowhere."""

    valid: bool
    name: str | None
    description: str | None
    exists: bool = Field(description="a workflow of that name exists (an update of it, then)")
    steps: list[dict[str, Any]] = Field(description="the steps as they would be stored")


class DeviceGroups(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    hosts: list[HostRead]
    network_devices: list[dict[str, Any]] = Field(alias="network-devices")


class DeviceList(BaseModel):
    """Craton's devices: hosts, and network devices (none are kept here)."""

    devices: DeviceGroups
    links: list[Link]


class BuildLogPage(BaseModel):
    logs: list[BuildLogRead]
    status: str
    next_after: int


class JobLogPage(BaseModel):
    logs: list[LogRead]
    next_after: int
    job_status: str
    # Read backwards (before=, tail=): the before= of the page before this one; none at the start.
    previous_before: int | None = None


class AnsibleGroup(BaseModel):
    hosts: list[str]


class AnsibleAll(AnsibleGroup):
    children: list[str]


class AnsibleMeta(BaseModel):
    hostvars: dict[str, dict[str, Any]]


class AnsibleInventory(BaseModel):
    """Ansible's JSON inventory: ``_meta``, ``all``, and one group per region, cell, label."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    __pydantic_extra__: dict[str, AnsibleGroup]

    meta: AnsibleMeta = Field(alias="_meta")
    all: AnsibleAll


class HealthRead(BaseModel):
    status: str


class ReadinessRead(BaseModel):
    status: str = Field(description="ready | not ready")
    checks: dict[str, Any]
    warnings: list[str] = Field(
        default_factory=list,
        description="What an operator must know whatever the readiness, e.g. approval is off",
    )
