"""What a task container gets besides its command: environment, limits, a scoped token.

Made by the runner right before it creates a run's container
(:func:`prepare_run`), in one transaction checked against the run's lease:

- the secrets the step names, decrypted (:mod:`craton_wf.engine.run_secrets`),
  never under a name that steers how the container's programs start
  (:mod:`craton_wf.domain.environment`);
- ``CRATON_URL`` and ``CRATON_TOKEN``: an API token of the job's creator,
  bound to the job and to this run attempt. Its principal carries the job id,
  and :mod:`craton_wf.services.policy` lets it only read the job's hosts and set their
  variables. It expires after ``task_token_ttl_seconds`` and is revoked when
  the attempt finishes (:func:`revoke_run_tokens`, called by ``finish_run``);
- ``CRATON_CACERT_PEM`` when the API serves https and the operator gave the
  CA its certificate is checked by (``tls_task_ca``);
- the container's resource limits: the defaults, raised where the task asked,
  capped by the platform's maxima (:mod:`domain.resources`).

A runner that adopts a container started by another needs only the secret
values, to redact the rest of the log (``issue=False``); it cannot know the
token, which the redaction finds by its form.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import update
from sqlalchemy.orm import Session

from craton_wf.db.bulk import one_of
from craton_wf.db.models import ApiToken, Job, Run, User, utcnow
from craton_wf.domain.resources import Limits, ResourcePolicy, container_limits
from craton_wf.domain.task_network import task_api_url
from craton_wf.engine import run_secrets
from craton_wf.engine.leases import check_lease
from craton_wf.engine.tokens import new_run_token
from craton_wf.engine.writes import in_a_batch
from craton_wf.settings import Settings


@dataclass(frozen=True)
class RunPreparation:
    env: dict[str, str] = field(default_factory=dict)
    redact: tuple[str, ...] = ()  # the secret values and the token, kept out of stored logs
    limits: Limits = field(default_factory=Limits)
    placement: tuple[str, ...] = ()  # the task's constraints on where it runs


def resource_policy(settings: Settings) -> ResourcePolicy:
    return ResourcePolicy(
        memory_mb=settings.task_memory_mb,
        cpus=settings.task_cpus,
        pids=settings.task_pids,
        tmpfs_mb=settings.task_tmpfs_mb,
        max_memory_mb=settings.task_max_memory_mb,
        max_cpus=settings.task_max_cpus,
        max_pids=settings.task_max_pids,
    )


def api_url(settings: Settings) -> str:
    """``CRATON_URL``: the public URL, else the API at the gateway of the task's
    project network (:mod:`craton_wf.domain.task_network`); never the API's own
    listening address, which is the container's own loopback by default."""
    return task_api_url(settings.public_url, settings.api_port, https=settings.serves_tls)


@functools.cache
def _pem_file(path: Path) -> str:
    return path.read_text(encoding="ascii")


def task_ca_pem(settings: Settings) -> str | None:
    """``CRATON_CACERT_PEM``: the CA certificates a task verifies an https
    ``CRATON_URL`` by (``tls_task_ca``), as text: nothing is mounted into the
    container, and a program writes them to a file or hands them to its TLS
    library (Python: ``ssl.create_default_context(cadata=...)``). Read once per
    process (``serve`` checked the file at start)."""
    return None if settings.tls_task_ca is None else _pem_file(settings.tls_task_ca)


@in_a_batch
def prepare_run(
    session: Session,
    run_id: int,
    owner: str,
    epoch: int,
    settings: Settings,
    *,
    issue: bool = True,
) -> RunPreparation:
    run = check_lease(session, Run, run_id, owner, epoch)
    job = session.get(Job, run.job_id)
    assert job is not None
    return run_environment(session, run, job, settings, issue=issue)


class AttemptFacts(Protocol):
    """What :func:`run_environment` reads of a run (a row, or a claim's facts)."""

    @property
    def id(self) -> int: ...
    @property
    def step_index(self) -> int: ...
    @property
    def attempt(self) -> int: ...
    @property
    def timeout_seconds(self) -> int | None: ...


class JobFacts(Protocol):
    """What :func:`run_environment` reads of a job (a row, or a claim's facts)."""

    @property
    def id(self) -> int: ...
    @property
    def project_id(self) -> str: ...
    @property
    def steps(self) -> list[dict[str, Any]]: ...
    @property
    def created_by(self) -> int | None: ...


def run_environment(
    session: Session,
    run: AttemptFacts,
    job: JobFacts,
    settings: Settings,
    *,
    issue: bool = True,
) -> RunPreparation:
    step: dict[str, Any] = job.steps[run.step_index]
    # The names were checked when the job was made; again here, for jobs stored
    # before a name was refused (RefusedEnvironmentName fails the run, saying why).
    names = run_secrets.check_secret_names(step.get("secrets") or [])
    secrets = run_secrets.secret_values(
        session, run_secrets.cipher(settings), job.project_id, names
    )
    env = dict(secrets)
    env["CRATON_URL"] = api_url(settings)
    if (ca := task_ca_pem(settings)) is not None:
        env["CRATON_CACERT_PEM"] = ca
    creator = session.get(User, job.created_by) if job.created_by else None
    if issue and creator is not None and creator.active:
        ttl = settings.task_token_ttl_seconds
        if run.timeout_seconds:
            ttl = min(ttl, run.timeout_seconds + 300)
        env["CRATON_TOKEN"] = new_run_token(
            session,
            creator,
            name=f"job {job.id} run {run.id} attempt {run.attempt}",
            project_id=job.project_id,
            job_id=job.id,
            run_id=run.id,
            ttl=timedelta(seconds=ttl),
        )
    # The token by value too, though every token is also redacted by its form
    # (domain.redaction): an adopting runner (issue=False) has no value for it.
    redact = (*secrets.values(), env["CRATON_TOKEN"]) if "CRATON_TOKEN" in env else secrets.values()
    return RunPreparation(
        env=env,
        redact=tuple(redact),
        limits=container_limits(step.get("resources"), resource_policy(settings)),
        placement=tuple(step.get("placement") or ()),
    )


def revoke_run_tokens(session: Session, run_ids: list[int]) -> None:
    """The runs' attempts ended: their tokens stop working."""
    session.execute(
        update(ApiToken)
        .where(one_of(session, ApiToken.run_id, run_ids), ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
