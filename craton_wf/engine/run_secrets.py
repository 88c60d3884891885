"""A project's secrets as a run's container gets them: named, checked, decrypted.

The values are stored encrypted with Fernet under the service's
``secret_key`` (:mod:`craton_wf.services.project_secrets` stores and lists
them for the API). A claim decrypts the ones a run's step names
(:mod:`craton_wf.engine.task_env`), never under a name that steers how the
container's programs start (:mod:`craton_wf.domain.environment`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select
from sqlalchemy.orm import Session

from craton_wf.db.models import Secret
from craton_wf.domain.environment import ENVIRONMENT_NAME, refused_name_reason
from craton_wf.errors import CratonError, InvalidInput, RefusedEnvironmentName
from craton_wf.settings import Settings


class SecretKeyError(CratonError):
    """The secret key is not a valid Fernet key."""

    code = "secret_key_invalid"


def cipher(settings: Settings) -> Fernet:
    try:
        return Fernet(settings.secret_key_value.encode())
    except (ValueError, TypeError) as exc:
        raise SecretKeyError(
            "CRATON_WF_SECRET_KEY is not a Fernet key (urlsafe base64 of 32 bytes); "
            "craton-wf generate-key makes one"
        ) from exc


def check_secret_name(name: Any) -> str:
    """``name``, if a task's environment may carry it (:mod:`craton_wf.domain.environment`)."""
    if not isinstance(name, str) or not ENVIRONMENT_NAME.match(name):
        raise InvalidInput(
            f"invalid secret name {name!r}: an environment variable name "
            "(letters, digits and _, not starting with a digit)"
        )
    reason = refused_name_reason(name)
    if reason is not None:
        raise RefusedEnvironmentName(
            f"secret name {name!r} is refused as an environment variable name: it {reason}"
        )
    return name


def check_secret_names(names: Any) -> list[str]:
    if names is None:
        return []
    if not isinstance(names, list):
        raise InvalidInput("secrets must be a list of secret names")
    return sorted({check_secret_name(name) for name in names})


def secret_values(
    session: Session, fernet: Fernet, project_id: str, names: Iterable[str]
) -> dict[str, str]:
    """The decrypted values of the named secrets the project has (deleted ones are left out)."""
    wanted = set(names)
    if not wanted:
        return {}
    rows = session.execute(
        select(Secret).where(Secret.project_id == project_id, Secret.name.in_(wanted))
    ).scalars()
    values = {}
    for row in rows:
        try:
            values[row.name] = fernet.decrypt(row.ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise SecretKeyError(
                f"secret {row.name} cannot be decrypted: was CRATON_WF_SECRET_KEY changed?"
            ) from exc
    return values
