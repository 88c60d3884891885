"""The web console's sign-in: an API token exchanged for a session cookie.

A user signs in with one of their API tokens (the same tokens as the API).
The console answers with a random session key in a cookie; only the key's
SHA-256 is stored, beside the token it was exchanged for and the project the
session acts in. The token itself never reaches a page, a URL or the cookie.

Every request checks the session (not signed out, not expired) and then the
token through the API's own authentication (:func:`authenticate_token_id`):
revoking or expiring the token, deactivating its user or removing their role
ends the console session too, at the next request.

Each session has its own CSRF token, which every state-changing form and
``fetch`` of the console sends back (``ui.deps``): a cross-site page can make
the browser send the cookie, never read the token.

A task's token (scoped to one job's run) cannot sign in: it exists for the
task's write-back, not for people.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from craton_wf.db.models import ConsoleSession, Project, utcnow
from craton_wf.errors import AuthenticationFailed
from craton_wf.services.auth import Principal, authenticate, authenticate_token_id


@dataclass(frozen=True)
class SignedIn:
    """What a console request acts as."""

    principal: Principal
    session_id: int
    csrf_token: str


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def resolve_project(session: Session, project: str | None) -> str | None:
    """A project named by id or by name (the sign-in form takes either); None if not given."""
    if not project:
        return None
    found = session.execute(
        select(Project.id).where((Project.id == project) | (Project.name == project))
    ).scalar()
    if found is None:
        raise AuthenticationFailed(f"no such project: {project}")
    return found


def sign_in(
    session: Session, token: str, project: str | None, lifetime: timedelta
) -> tuple[str, SignedIn]:
    """A new console session for ``token``; returns the cookie's key and who it acts as."""
    token = token.strip()
    authenticated = authenticate(
        session, token=token, user_name=None, project_id=resolve_project(session, project)
    )
    principal = authenticated.principal
    if principal.job_id is not None:
        raise AuthenticationFailed("a task's token cannot sign in to the console")
    if authenticated.token_id is None:  # pragma: no cover - authenticate always names it
        raise AuthenticationFailed()
    key = secrets.token_urlsafe(32)
    row = ConsoleSession(
        session_hash=_hash(key),
        token_id=authenticated.token_id,
        project_id=principal.project_id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=utcnow(),
        expires_at=utcnow() + lifetime,
    )
    session.add(row)
    session.flush()
    return key, SignedIn(principal, row.id, row.csrf_token)


def signed_in(session: Session, key: str | None) -> SignedIn:
    """Who the cookie's session acts as; ``AuthenticationFailed`` once it has ended."""
    if not key:
        raise AuthenticationFailed("not signed in")
    row = session.execute(
        select(
            ConsoleSession.id,
            ConsoleSession.token_id,
            ConsoleSession.project_id,
            ConsoleSession.csrf_token,
            ConsoleSession.expires_at,
            ConsoleSession.revoked_at,
        ).where(ConsoleSession.session_hash == _hash(key))
    ).first()
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow():
        raise AuthenticationFailed("the console session has ended: sign in again")
    principal = authenticate_token_id(session, row.token_id, row.project_id).principal
    return SignedIn(principal, row.id, row.csrf_token)


def sign_out(session: Session, session_id: int) -> None:
    """End a console session: its cookie no longer signs anyone in."""
    session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.id == session_id, ConsoleSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def csrf_matches(expected: str, given: str | None) -> bool:
    return bool(given) and secrets.compare_digest(expected.encode(), (given or "").encode())
