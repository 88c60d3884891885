"""ORM models: the whole schema, changed only through alembic migrations.

Identifiers follow Craton: projects are UUID strings, everything else integer
ids. Variables are JSON documents on the object that owns them; labels get
their own table so hosts can be filtered by label in SQL on every backend.

Runs and builds carry lease columns (owner, epoch, expiry): a runner owns a
unit of work only while its lease is live, and every write it makes checks
owner and epoch, so several runners can share one database.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


# Ids are never used twice: SQLite otherwise hands a deleted row's id (the
# largest) to the next row, and a name resolved, an audit event or a link kept
# from before would then point at another object.
SQLITE_AUTOINCREMENT = {"sqlite_autoincrement": True}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _uuid() -> str:
    return str(uuid.uuid4())


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), onupdate=utcnow)


# --- identity -----------------------------------------------------------------


class Project(TimestampMixin, Base):
    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_uuid)
    name: Mapped[str] = mapped_column(String(255), unique=True, nullable=False)
    variables: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, nullable=False)


class User(TimestampMixin, Base):
    __tablename__ = "users"
    __table_args__ = (SQLITE_AUTOINCREMENT,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True, nullable=False)
    is_root: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    default_project_id: Mapped[str | None] = mapped_column(
        ForeignKey("projects.id", ondelete="SET NULL")
    )
    password_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)


class RoleAssignment(Base):
    """A user's role in one project: viewer, auditor, operator or admin."""

    __tablename__ = "role_assignments"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(32), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class ApiToken(Base):
    """An API token; only its SHA-256 is stored. ``job_id`` scopes task tokens."""

    __tablename__ = "api_tokens"
    __table_args__ = (SQLITE_AUTOINCREMENT,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255), default="", nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    project_id: Mapped[str | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    # A task's token is issued for one run attempt and revoked when it finishes.
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ConsoleSession(Base):
    """A web console sign-in: a token exchanged for a cookie.

    Only the cookie's SHA-256 is stored. The session lives no longer than its
    token: revoking or expiring the token ends it (``services.console``).
    """

    __tablename__ = "console_sessions"
    __table_args__ = (SQLITE_AUTOINCREMENT,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    token_id: Mapped[int] = mapped_column(
        ForeignKey("api_tokens.id", ondelete="CASCADE"), index=True, nullable=False
    )
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=False
    )
    csrf_token: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


# --- inventory ----------------------------------------------------------------


class Cloud(TimestampMixin, Base):
    __tablename__ = "clouds"
    __table_args__ = (
        UniqueConstraint("project_id", "name", name="uq_clouds_project_name"),
        SQLITE_AUTOINCREMENT,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True, nullable=False
    )
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    note: Mapped[str | None] = mapped_column(Text)
    variables: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, nullable=False)


class Region(TimestampMixin, Base):
    __tablename__ = "regions"
    __table_args__ = (
        UniqueConstraint("cloud_id", "name", name="uq_regions_cloud_name"),
        SQLITE_AUTOINCREMENT,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True, nullable=False
    )
    cloud_id: Mapped[int] = mapped_column(ForeignKey("clouds.id"), index=True, nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    note: Mapped[str | None] = mapped_column(Text)
    variables: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, nullable=False)


class Cell(TimestampMixin, Base):
    __tablename__ = "cells"
    __table_args__ = (
        UniqueConstraint("region_id", "name", name="uq_cells_region_name"),
        SQLITE_AUTOINCREMENT,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True, nullable=False
    )
    cloud_id: Mapped[int] = mapped_column(ForeignKey("clouds.id"), index=True, nullable=False)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True, nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    note: Mapped[str | None] = mapped_column(Text)
    variables: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, nullable=False)


class Host(TimestampMixin, Base):
    __tablename__ = "hosts"
    __table_args__ = (
        UniqueConstraint("region_id", "name", name="uq_hosts_region_name"),
        SQLITE_AUTOINCREMENT,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True, nullable=False
    )
    cloud_id: Mapped[int] = mapped_column(ForeignKey("clouds.id"), index=True, nullable=False)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), index=True, nullable=False)
    cell_id: Mapped[int | None] = mapped_column(ForeignKey("cells.id"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("hosts.id"), index=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    ip_address: Mapped[str] = mapped_column(String(64), nullable=False)
    device_type: Mapped[str] = mapped_column(String(64), default="server", nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    note: Mapped[str | None] = mapped_column(Text)
    variables: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, nullable=False)

    label_rows: Mapped[list[HostLabel]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="HostLabel.label"
    )

    @property
    def labels(self) -> list[str]:
        return [row.label for row in self.label_rows]


class HostLabel(Base):
    __tablename__ = "host_labels"

    host_id: Mapped[int] = mapped_column(
        ForeignKey("hosts.id", ondelete="CASCADE"), primary_key=True
    )
    label: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)


# --- tasks and builds ---------------------------------------------------------


class Task(TimestampMixin, Base):
    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("project_id", "name", name="uq_tasks_project_name"),
        SQLITE_AUTOINCREMENT,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True, nullable=False
    )
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    source_type: Mapped[str] = mapped_column(String(16), nullable=False)  # git | upload
    location: Mapped[str] = mapped_column(Text, nullable=False)
    ref: Mapped[str | None] = mapped_column(String(255))
    subdir: Mapped[str | None] = mapped_column(String(1024))
    dockerfile: Mapped[str] = mapped_column(String(1024), default="Dockerfile", nullable=False)
    command: Mapped[list[str]] = mapped_column(JSONType, default=list, nullable=False)
    kind: Mapped[str] = mapped_column(String(16), default="remediation", nullable=False)
    public: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    restricted_to: Mapped[list[str]] = mapped_column(JSONType, default=list, nullable=False)
    needs_network: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    # Limits the task asks for beyond the defaults: memory_mb, cpus, pids.
    resources: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, nullable=False)
    # Swarm-style constraints on where its containers run (domain.resources.check_placement).
    placement: Mapped[list[str]] = mapped_column(JSONType, default=list, nullable=False)
    # Who last changed what it runs (command, secrets, network, resources): they may
    # not approve its builds (services.approvals.decide).
    execution_changed_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    # Names of the project's secrets its containers get as environment variables.
    secrets: Mapped[list[str]] = mapped_column(JSONType, default=list, nullable=False)
    status: Mapped[str] = mapped_column(String(32), nullable=False)
    current_build_id: Mapped[int | None] = mapped_column(
        ForeignKey("builds.id", use_alter=True, ondelete="SET NULL")
    )
    ready_build_id: Mapped[int | None] = mapped_column(
        ForeignKey("builds.id", use_alter=True, ondelete="SET NULL")
    )
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class TaskApproval(Base):
    """A decision about one build of a task, naming the exact image digest.

    ``approved`` lets the build run; ``rejected`` and ``revoked`` (of an earlier
    approval) record that it may not. Rows are never changed: the newest
    decision about a build is the one that holds.
    """

    __tablename__ = "task_approvals"
    __table_args__ = (SQLITE_AUTOINCREMENT,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), index=True, nullable=False
    )
    build_id: Mapped[int] = mapped_column(
        ForeignKey("builds.id", ondelete="CASCADE"), index=True, nullable=False
    )
    digest: Mapped[str] = mapped_column(String(128), nullable=False)
    decision: Mapped[str] = mapped_column(String(16), nullable=False)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    user_name: Mapped[str] = mapped_column(String(255), nullable=False)
    # A public task's builds run in every project: only a root user's approval counts.
    by_root: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class Secret(TimestampMixin, Base):
    """A project's secret, encrypted (Fernet) with the service's key; never sent back."""

    __tablename__ = "secrets"
    __table_args__ = (
        UniqueConstraint("project_id", "name", name="uq_secrets_project_name"),
        SQLITE_AUTOINCREMENT,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True, nullable=False
    )
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    ciphertext: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class TaskSource(Base):
    """An uploaded source archive (tar.gz), kept so any runner can build it."""

    __tablename__ = "task_sources"
    __table_args__ = (SQLITE_AUTOINCREMENT,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class LeaseMixin:
    lease_owner: Mapped[str | None] = mapped_column(String(64), index=True)
    lease_epoch: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Build(LeaseMixin, Base):
    __tablename__ = "builds"
    __table_args__ = (
        UniqueConstraint("task_id", "number", name="uq_builds_task_number"),
        SQLITE_AUTOINCREMENT,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), index=True, nullable=False
    )
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True, nullable=False
    )
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(32), index=True, nullable=False)
    source_id: Mapped[int | None] = mapped_column(
        ForeignKey("task_sources.id", ondelete="SET NULL")
    )
    ref: Mapped[str | None] = mapped_column(String(255))
    commit: Mapped[str | None] = mapped_column(String(128))
    image: Mapped[str | None] = mapped_column(String(512))
    digest: Mapped[str | None] = mapped_column(String(128))
    error: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    log_seq: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class BuildLog(Base):
    __tablename__ = "build_logs"
    __table_args__ = (UniqueConstraint("build_id", "seq", name="uq_build_logs_build_seq"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    build_id: Mapped[int] = mapped_column(
        ForeignKey("builds.id", ondelete="CASCADE"), nullable=False
    )
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    ts: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    line: Mapped[str] = mapped_column(Text, nullable=False)


# --- workflows ----------------------------------------------------------------


class Workflow(TimestampMixin, Base):
    __tablename__ = "workflows"
    __table_args__ = (
        UniqueConstraint("project_id", "name", name="uq_workflows_project_name"),
        SQLITE_AUTOINCREMENT,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True, nullable=False
    )
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    latest_version: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class WorkflowVersion(Base):
    """One immutable version of a workflow's steps; PUT on the workflow adds one."""

    __tablename__ = "workflow_versions"
    __table_args__ = (
        UniqueConstraint("workflow_id", "version", name="uq_workflow_versions_workflow_version"),
        SQLITE_AUTOINCREMENT,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workflow_id: Mapped[int] = mapped_column(
        ForeignKey("workflows.id", ondelete="CASCADE"), index=True, nullable=False
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, nullable=False)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


# --- jobs and runs ------------------------------------------------------------


class Job(Base):
    """A workflow (or one task) over a set of hosts; snapshots steps and payloads."""

    __tablename__ = "jobs"
    __table_args__ = (SQLITE_AUTOINCREMENT,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True, nullable=False
    )
    name: Mapped[str | None] = mapped_column(String(255))
    workflow_id: Mapped[int | None] = mapped_column(ForeignKey("workflows.id", ondelete="SET NULL"))
    workflow_version: Mapped[int | None] = mapped_column(Integer)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(32), index=True, nullable=False)
    variables: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, nullable=False)
    # What the job was asked to run on, as asked (host ids, filters): for its
    # readers, never for its runners, which load the job with every batch of
    # its runs; a fleet's ids would be decoded each time. Loaded when read.
    targets: Mapped[dict[str, Any]] = mapped_column(
        JSONType, default=dict, nullable=False, deferred=True
    )
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, nullable=False)
    concurrency: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    max_failures: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    timeout_seconds: Mapped[int | None] = mapped_column(Integer)
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime())
    retry_of_job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    message: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancel_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The template it was launched from and the parameters it was given; a plain
    # id, kept when the template is deleted (the job's history stays true).
    template_id: Mapped[int | None] = mapped_column(Integer, index=True)
    template_params: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # Rollout waves (domain.waves): as asked, and the sizes resolved over the
    # hosts; the wave under way (1-based); the pause after each wave, a gate;
    # and when the next wave may start (set during a wave_pause, indexed for
    # the runners' look for waves that are due).
    waves: Mapped[list[Any] | None] = mapped_column(JSONType)
    wave_sizes: Mapped[list[int] | None] = mapped_column(JSONType)
    current_wave: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    wave_pause_seconds: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    wave_gate: Mapped[str | None] = mapped_column(String(16))
    next_wave_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)


class JobHost(Base):
    __tablename__ = "job_hosts"
    __table_args__ = (Index("ix_job_hosts_job_status", "job_id", "status"), SQLITE_AUTOINCREMENT)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False)
    host_id: Mapped[int | None] = mapped_column(ForeignKey("hosts.id", ondelete="SET NULL"))
    host_name: Mapped[str] = mapped_column(String(255), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(32), nullable=False)
    host: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)  # payload snapshot
    failed_step: Mapped[str | None] = mapped_column(String(255))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Run(LeaseMixin, Base):
    """One node of a job's graph: one step on one host (or once per job)."""

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_status_queued", "status", "queued_at"),
        Index("ix_runs_job_status", "job_id", "status"),
        SQLITE_AUTOINCREMENT,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Unique across databases sharing one container runtime; part of container names.
    uid: Mapped[str] = mapped_column(
        String(32), default=lambda: uuid.uuid4().hex[:12], nullable=False
    )
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False)
    job_host_id: Mapped[int | None] = mapped_column(
        ForeignKey("job_hosts.id", ondelete="CASCADE"), index=True
    )
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=False
    )
    step_index: Mapped[int] = mapped_column(Integer, nullable=False)
    step_name: Mapped[str] = mapped_column(String(255), nullable=False)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="SET NULL"))
    build_id: Mapped[int | None] = mapped_column(ForeignKey("builds.id", ondelete="SET NULL"))
    image: Mapped[str] = mapped_column(String(512), nullable=False)
    command: Mapped[list[str]] = mapped_column(JSONType, nullable=False)
    args: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, nullable=False)
    required: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    status: Mapped[str] = mapped_column(String(32), nullable=False)
    attempt: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    max_attempts: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    timeout_seconds: Mapped[int | None] = mapped_column(Integer)
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime())
    exit_code: Mapped[int | None] = mapped_column(Integer)
    container_id: Mapped[str | None] = mapped_column(String(128))
    container_name: Mapped[str | None] = mapped_column(String(255))
    outputs: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, nullable=False)
    error: Mapped[str | None] = mapped_column(Text)
    log_seq: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    # Bytes of output stored (capped by the run_log_max_bytes setting).
    log_bytes: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    # log_seq when the current attempt was claimed: its lines are those after.
    attempt_log_seq: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    # The stored log has a "[craton] log gap" line (output lost to the runtime's
    # log rotation), or ends with "[craton] log capped" (run_log_max_bytes).
    log_gap: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    log_capped: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RunDependency(Base):
    """An edge of the job graph: ``run_id`` waits for ``depends_on_id``."""

    __tablename__ = "run_dependencies"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    depends_on_id: Mapped[int] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class RunLog(Base):
    __tablename__ = "run_logs"
    __table_args__ = (
        UniqueConstraint("run_id", "seq", name="uq_run_logs_run_seq"),
        Index("ix_run_logs_job_id_id", "job_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), nullable=False)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    ts: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    stream: Mapped[str] = mapped_column(String(8), nullable=False)  # stdout | stderr | system
    line: Mapped[str] = mapped_column(Text, nullable=False)


class JobEvent(Base):
    """Append-only history of a job."""

    __tablename__ = "job_events"
    __table_args__ = (Index("ix_job_events_job_id_id", "job_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(64), nullable=False)
    message: Mapped[str] = mapped_column(Text, default="", nullable=False)
    runner_id: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class RunnerRecord(Base):
    """A runner process, known by its heartbeat."""

    __tablename__ = "runners"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    hostname: Mapped[str] = mapped_column(String(255), nullable=False)
    pid: Mapped[int] = mapped_column(Integer, nullable=False)
    executor: Mapped[str] = mapped_column(String(32), nullable=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RetiredCount(Base):
    """Jobs or runs in one final state that left the database with their project.

    ``/metrics`` counts jobs and runs by final state from their rows
    (``services.fleet``); these rows add back what deleting a project took
    away, so those counters never go down. Append-only: one row per deleted
    project, kind and state.
    """

    __tablename__ = "retired_counts"
    __table_args__ = (SQLITE_AUTOINCREMENT,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), nullable=False)  # job | run
    status: Mapped[str] = mapped_column(String(32), nullable=False)
    count: Mapped[int] = mapped_column(BigInteger, nullable=False)
    project_id: Mapped[str] = mapped_column(String(36), nullable=False)  # kept after deletion
    retired_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class AuditEvent(Base):
    """Who did what to which object, when, from where, and how it ended. Append-only."""

    __tablename__ = "audit_events"
    __table_args__ = (SQLITE_AUTOINCREMENT,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True, nullable=False)
    user_id: Mapped[int | None] = mapped_column(Integer)  # kept when the user is deleted
    user_name: Mapped[str | None] = mapped_column(String(255), index=True)
    project_id: Mapped[str | None] = mapped_column(String(36), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True, nullable=False)
    object_type: Mapped[str | None] = mapped_column(String(64), index=True)
    object_id: Mapped[str | None] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(8), nullable=False)
    path: Mapped[str] = mapped_column(String(1024), nullable=False)
    status: Mapped[int] = mapped_column(Integer, nullable=False)
    outcome: Mapped[str] = mapped_column(String(16), nullable=False)  # success | failure
    client: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)


class JobTemplate(TimestampMixin, Base):
    """A saved launch: what a job runs, on which hosts, how, and the parameters a
    launch fills in (``services.templates``)."""

    __tablename__ = "job_templates"
    __table_args__ = (
        UniqueConstraint("project_id", "name", name="uq_job_templates_project_name"),
        SQLITE_AUTOINCREMENT,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True, nullable=False
    )
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    # One of the two; a deleted workflow or task leaves both empty and the
    # template refuses to launch, saying so.
    workflow_id: Mapped[int | None] = mapped_column(ForeignKey("workflows.id", ondelete="SET NULL"))
    workflow_version: Mapped[int | None] = mapped_column(Integer)  # none: the latest
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="SET NULL"))
    targets: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, nullable=False)
    variables: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, nullable=False)
    parameters: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list, nullable=False)
    concurrency: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    max_failures: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    timeout_seconds: Mapped[int | None] = mapped_column(Integer)
    # Rollout waves of the jobs it launches (domain.waves), as asked: sized at launch.
    waves: Mapped[list[Any] | None] = mapped_column(JSONType)
    wave_pause_seconds: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    wave_gate: Mapped[str | None] = mapped_column(String(16))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class Webhook(TimestampMixin, Base):
    """A project's endpoint that is POSTed the events it subscribes to (``engine.webhooks``).

    The signing secret is stored encrypted like a project's secrets and never answered."""

    __tablename__ = "webhooks"
    __table_args__ = (
        UniqueConstraint("project_id", "name", name="uq_webhooks_project_name"),
        SQLITE_AUTOINCREMENT,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True, nullable=False
    )
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    url: Mapped[str] = mapped_column(String(2048), nullable=False)
    events: Mapped[list[str]] = mapped_column(JSONType, nullable=False)
    secret_ciphertext: Mapped[str] = mapped_column(Text, nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class TemplateTrigger(Base):
    """A URL that launches a job template when called with its secret (``services.triggers``).

    Its id is the URL's last segment, random so that it is not guessed; the
    secret is stored encrypted like a webhook's and answered only when the
    trigger is made. A launch acts as the user who made it, with that user's
    roles at the time of the call."""

    __tablename__ = "template_triggers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True, nullable=False
    )
    template_id: Mapped[int] = mapped_column(
        ForeignKey("job_templates.id", ondelete="CASCADE"), index=True, nullable=False
    )
    secret_ciphertext: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class TriggerLaunch(Base):
    """One job a trigger launched: what its rate limit counts, and which signed
    request it was (a signature is accepted once)."""

    __tablename__ = "trigger_launches"
    __table_args__ = (
        Index("ix_trigger_launches_trigger_time", "trigger_id", "launched_at"),
        SQLITE_AUTOINCREMENT,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trigger_id: Mapped[str] = mapped_column(
        ForeignKey("template_triggers.id", ondelete="CASCADE"), nullable=False
    )
    job_id: Mapped[int | None] = mapped_column(Integer)
    signature: Mapped[str | None] = mapped_column(String(80))
    launched_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)


class WebhookDelivery(Base):
    """One event for one endpoint: an outbox row written in the event's own transaction.

    ``event_id`` is the idempotency key the receiver sees on every attempt.
    Runners claim due rows with a lease, as they claim runs (``engine.webhooks``).
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        SQLITE_AUTOINCREMENT,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(
        ForeignKey("webhooks.id", ondelete="CASCADE"), index=True, nullable=False
    )
    project_id: Mapped[str] = mapped_column(String(36), nullable=False)
    event_id: Mapped[str] = mapped_column(String(36), nullable=False)
    event: Mapped[str] = mapped_column(String(64), nullable=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # pending|delivered|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    give_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_epoch: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebhookAttempt(Base):
    """One POST of a delivery: when, how long, what the receiver answered (an excerpt)."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (SQLITE_AUTOINCREMENT,)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True, nullable=False
    )
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int] = mapped_column(Integer, nullable=False)
    response_excerpt: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)


class Schedule(TimestampMixin, Base):
    """A job template launched on a cron expression in a time zone (``engine.schedule_firing``).

    ``next_fire_at`` is the fence: a runner fires a due schedule only by moving
    it on, compare-and-set, in the transaction that makes the job."""

    __tablename__ = "schedules"
    __table_args__ = (
        UniqueConstraint("project_id", "name", name="uq_schedules_project_name"),
        SQLITE_AUTOINCREMENT,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True, nullable=False
    )
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    template_id: Mapped[int] = mapped_column(
        ForeignKey("job_templates.id", ondelete="CASCADE"), index=True, nullable=False
    )
    cron: Mapped[str] = mapped_column(String(255), nullable=False)
    timezone: Mapped[str] = mapped_column(String(64), nullable=False)
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, nullable=False)
    missed_policy: Mapped[str] = mapped_column(String(16), nullable=False)  # skip | run-once
    overlap_policy: Mapped[str] = mapped_column(String(16), nullable=False)
    paused: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    next_fire_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    queued_fire_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # overlap: queue
    last_fire_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_job_id: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class ScheduleFire(Base):
    """What one fire time of a schedule gave: a job, or why none. One row per fire
    time at most: the unique key is what makes a second job for a fire impossible."""

    __tablename__ = "schedule_fires"
    __table_args__ = (
        UniqueConstraint("schedule_id", "fire_time", name="uq_schedule_fires_schedule_time"),
        SQLITE_AUTOINCREMENT,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schedule_id: Mapped[int] = mapped_column(
        ForeignKey("schedules.id", ondelete="CASCADE"), nullable=False
    )
    fire_time: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    outcome: Mapped[str] = mapped_column(String(16), nullable=False)
    job_id: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
