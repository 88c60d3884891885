"""A project's secrets: stored encrypted, handed to the containers that name them.

Values are encrypted with Fernet (AES-128-CBC and HMAC-SHA256) under the
service's ``secret_key``; the database holds only the ciphertext, and no API
answer ever carries a value back. A task declares the secrets it needs
(``Task.secrets``; its approval covers them); a workflow step may name some
of its task's declared secrets (``secrets`` of the step), never others
(:func:`check_step_secrets`). A run's container gets them as environment
variables of the same names, and the run's stored log lines are redacted of
their values (:mod:`craton_wf.domain.redaction`). A name that would steer how
the container's programs start (``BASH_ENV``, ``LD_PRELOAD``, ``PYTHON*``…)
is never a secret's name (:mod:`craton_wf.domain.environment`).

Secrets are looked up in the job's project. A public task from another
project gets only those of its declared secrets that the running project's
own workflow step names: code written elsewhere does not get to pick which
of this project's secrets it reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.orm import Session

from craton_wf.db.models import Secret
from craton_wf.engine.run_secrets import SecretKeyError as SecretKeyError
from craton_wf.engine.run_secrets import check_secret_name
from craton_wf.engine.run_secrets import check_secret_names as check_secret_names
from craton_wf.engine.run_secrets import cipher as cipher
from craton_wf.errors import InvalidInput, UndeclaredSecret
from craton_wf.services.inputs import MAX_SECRET_VALUE, SecretCreate, SecretUpdate
from craton_wf.services.lookups import find_by_ref, flush_unique
from craton_wf.services.pagination import Page, PageRequest, paginate, scoped

SECRET_SORT_KEYS = ("id", "name", "created_at")


def check_step_secrets(step: str, task: str, names: Any, declared: Iterable[str]) -> list[str]:
    """A workflow step's secrets: valid names, each one its task declares."""
    checked = check_secret_names(names)
    undeclared = [name for name in checked if name not in set(declared)]
    if undeclared:
        raise UndeclaredSecret(
            f"step {step!r}: task {task!r} does not declare the secret"
            f"{'s' if len(undeclared) > 1 else ''} {', '.join(undeclared)}; a step may only "
            "hand a task the secrets the task declares (add them to the task, which then "
            "needs a new approval)"
        )
    return checked


def _check_value(value: str) -> str:
    """The value as text a container's environment can carry: the model bounds its
    length in characters; the bytes it encodes to and a NUL are checked here."""
    if len(value.encode()) > MAX_SECRET_VALUE or "\0" in value:
        raise InvalidInput(f"a secret value must be text of at most {MAX_SECRET_VALUE} bytes")
    return value


def create_secret(
    session: Session,
    fernet: Fernet,
    project_id: str,
    user_id: int | None,
    spec: SecretCreate,
) -> Secret:
    name = check_secret_name(spec.name)
    secret = Secret(
        project_id=project_id,
        name=name,
        ciphertext=fernet.encrypt(_check_value(spec.value).encode()).decode(),
        description=spec.description,
        created_by=user_id,
    )
    session.add(secret)
    flush_unique(session, "secret", name)
    return secret


def update_secret(
    session: Session, fernet: Fernet, secret: Secret, changes: SecretUpdate
) -> Secret:
    """Change what ``changes`` gives: a new value, or a description (null clears it)."""
    if changes.value is not None:
        secret.ciphertext = fernet.encrypt(_check_value(changes.value).encode()).decode()
    if "description" in changes.model_fields_set:
        secret.description = changes.description
    session.flush()
    return secret


def get_secret(session: Session, project_id: str, ref: Any) -> Secret:
    return find_by_ref(session, Secret, project_id, ref, "secret")


def list_secrets(session: Session, project_id: str, page: PageRequest) -> Page[Secret]:
    return paginate(session, scoped(Secret, project_id), Secret, page, SECRET_SORT_KEYS)


def delete_secret(session: Session, secret: Secret) -> None:
    session.delete(secret)
    session.flush()


def require_defined(session: Session, project_id: str, names: Iterable[str]) -> None:
    """InvalidInput naming the secrets the project does not have."""
    wanted = set(names)
    if not wanted:
        return
    have = set(
        session.execute(
            select(Secret.name).where(Secret.project_id == project_id, Secret.name.in_(wanted))
        ).scalars()
    )
    missing = sorted(wanted - have)
    if missing:
        raise InvalidInput(f"no secret named {', '.join(missing)} in this project")
