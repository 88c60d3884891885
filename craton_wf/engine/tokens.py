"""API tokens as rows: made, hashed, and the ones a claim issues to run attempts.

A token is a random string with a recognisable prefix (logs are redacted of
anything of that form, :mod:`craton_wf.domain.redaction`), shown once; only
its SHA-256 is stored. Users' own tokens are issued by
:mod:`craton_wf.services.auth` with :func:`token_values`; a run attempt's
``CRATON_TOKEN`` is issued here, with the claim (:mod:`craton_wf.engine.task_env`).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from craton_wf.db.models import ApiToken, User, utcnow
from craton_wf.domain.redaction import TOKEN_PREFIX
from craton_wf.engine._pending import insert_later


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_values(
    user: User,
    *,
    name: str,
    project_id: str | None,
    job_id: int | None = None,
    run_id: int | None = None,
    ttl: timedelta | None,
) -> tuple[str, dict[str, Any]]:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    return token, {
        "user_id": user.id,
        "name": name,
        "token_hash": hash_token(token),
        "prefix": token[:10],
        "project_id": project_id,
        "job_id": job_id,
        "run_id": run_id,
        "created_at": now,
        "expires_at": now + ttl if ttl else None,
        "revoked_at": None,
        "last_used_at": None,
    }


def new_run_token(
    session: Session,
    user: User,
    *,
    name: str,
    project_id: str,
    job_id: int,
    run_id: int,
    ttl: timedelta,
) -> str:
    """A token bound to one run attempt (a task's ``CRATON_TOKEN``), inserted
    with the commit: a runner's claim issues one for each run it claims, and
    nothing reads them back in that transaction."""
    token, values = token_values(
        user, name=name, project_id=project_id, job_id=job_id, run_id=run_id, ttl=ttl
    )
    insert_later(session, ApiToken, [values])
    return token
