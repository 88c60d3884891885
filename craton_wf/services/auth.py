"""Users, tokens and who a request acts as.

Tokens are random strings shown once; only their SHA-256 is stored. A request
names a user and a token (Craton's ``X-Auth-User``/``X-Auth-Token``) or just a
bearer token, and optionally the project it acts in (``X-Auth-Project``).
Over mutual TLS, when the operator turned it on, a request without a token
may instead be the user its client certificate names (:func:`authenticate_user`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, String, and_, func, literal, or_, select, update
from sqlalchemy.orm import Session

from craton_wf.db.models import ApiToken, Project, RoleAssignment, User, utcnow
from craton_wf.engine.tokens import hash_token, token_values
from craton_wf.errors import AuthenticationFailed, Conflict

ROLES = ("viewer", "auditor", "operator", "admin")


@dataclass(frozen=True)
class Principal:
    user_id: int
    user_name: str
    project_id: str
    is_root: bool = False
    roles: frozenset[str] = field(default_factory=frozenset)
    job_id: int | None = None  # set for a task's scoped token
    run_id: int | None = None  # and the run attempt it was issued to


@dataclass(frozen=True)
class IssuedToken:
    id: int
    token: str
    user_name: str
    project_id: str | None
    expires_at: datetime | None


def issue_token(
    session: Session,
    user: User,
    *,
    name: str = "",
    project_id: str | None = None,
    ttl: timedelta | None = None,
) -> IssuedToken:
    """A user's API token, stored (flushed: it has its id)."""
    row, token = new_token(session, user, name=name, project_id=project_id, ttl=ttl)
    session.flush()
    return IssuedToken(row.id, token, user.name, project_id, row.expires_at)


def new_token(
    session: Session,
    user: User,
    *,
    name: str = "",
    project_id: str | None = None,
    ttl: timedelta | None = None,
) -> tuple[ApiToken, str]:
    """A new token's row (added, not yet flushed: no id) and the token itself."""
    token, values = token_values(user, name=name, project_id=project_id, ttl=ttl)
    row = ApiToken(**values)
    session.add(row)
    return row, token


@dataclass(frozen=True)
class Bootstrapped:
    project: Project
    user: User
    token: IssuedToken


def bootstrap(session: Session, project_name: str, user_name: str) -> Bootstrapped:
    """Create the first project and its root user; refuse when a root user exists."""
    if session.execute(select(User).where(User.is_root.is_(True))).first():
        raise Conflict("already bootstrapped: a root user exists")
    project = session.execute(
        select(Project).where(Project.name == project_name)
    ).scalar_one_or_none() or Project(name=project_name, variables={})
    session.add(project)
    session.flush()
    user = User(name=user_name, is_root=True, default_project_id=project.id)
    session.add(user)
    session.flush()
    session.add(RoleAssignment(user_id=user.id, project_id=project.id, role="admin"))
    token = issue_token(session, user, name="bootstrap")
    return Bootstrapped(project, user, token)


# A token's last use is noted at most this often: a request that only reads
# writes nothing but this, in a transaction of its own (services.auth.note_token_use).
TOKEN_USE_GRANULARITY = timedelta(minutes=5)


# The user's roles in the project a request acts in: one row per role, outer-joined.
_ROLE_IN_ACTING_PROJECT = and_(
    RoleAssignment.user_id == User.id, RoleAssignment.project_id == Project.id
)


@dataclass(frozen=True)
class Authenticated:
    principal: Principal
    stale_token_id: int | None  # a token whose last use is older than the granularity
    token_id: int | None = None  # the token it authenticated with


def authenticate(
    session: Session,
    *,
    token: str | None,
    user_name: str | None,
    project_id: str | None,
) -> Authenticated:
    """Who the request acts as. Reads only: the token's last use, when due, is
    for the caller to note (:func:`note_token_use`) in a write transaction."""
    if not token:
        raise AuthenticationFailed()
    return _authenticated(
        session,
        ApiToken.token_hash == hash_token(token),
        user_name=user_name,
        project_id=project_id,
    )


def authenticate_token_id(session: Session, token_id: int, project_id: str) -> Authenticated:
    """Who a console session acts as: its token (still valid) in its project."""
    return _authenticated(session, ApiToken.id == token_id, user_name=None, project_id=project_id)


def _authenticated(
    session: Session,
    which_token: ColumnElement[bool],
    *,
    user_name: str | None,
    project_id: str | None,
) -> Authenticated:
    # One statement: the token, its user, the project it acts in (the token's
    # own, else the one asked for, else the user's default) and the user's
    # roles there, one row per role (a request pays one round trip for this).
    acting_id = func.coalesce(
        ApiToken.project_id, literal(project_id, String), User.default_project_id
    )
    rows = session.execute(
        select(
            ApiToken.id,
            ApiToken.revoked_at,
            ApiToken.expires_at,
            ApiToken.last_used_at,
            ApiToken.project_id,
            ApiToken.job_id,
            ApiToken.run_id,
            User.id.label("user_id"),
            User.name.label("user_name"),
            User.active,
            User.is_root,
            Project.id.label("acting"),
            RoleAssignment.role,
        )
        .join(User, User.id == ApiToken.user_id)
        .outerjoin(Project, Project.id == acting_id)
        .outerjoin(RoleAssignment, _ROLE_IN_ACTING_PROJECT)
        .where(which_token)
    ).all()
    now = utcnow()
    row = rows[0] if rows else None
    if row is None or row.revoked_at is not None or (row.expires_at and row.expires_at <= now):
        raise AuthenticationFailed("invalid or expired token")
    if not row.active:
        raise AuthenticationFailed("invalid or expired token")
    if user_name and user_name != row.user_name:
        raise AuthenticationFailed("the token does not belong to that user")
    if row.project_id and project_id and project_id != row.project_id:
        raise AuthenticationFailed("the token is scoped to another project")
    roles = _roles_in_acting_project(rows)
    stale = row.last_used_at is None or now - row.last_used_at > TOKEN_USE_GRANULARITY
    principal = Principal(
        user_id=row.user_id,
        user_name=row.user_name,
        project_id=row.acting,
        is_root=row.is_root,
        roles=roles,
        job_id=row.job_id,
        run_id=row.run_id,
    )
    return Authenticated(principal, row.id if stale else None, token_id=row.id)


def _roles_in_acting_project(rows: Sequence[Any]) -> frozenset[str]:
    """The roles of the user in the project the request acts in (a row per role,
    from an outer join); refused when there is no such project or no role there."""
    if rows[0].acting is None:
        raise AuthenticationFailed("no such project: send X-Auth-Project with a project id")
    roles = frozenset(r.role for r in rows if r.role is not None)
    if not rows[0].is_root and not roles:
        raise AuthenticationFailed("the user has no role in that project")
    return roles


def authenticate_user(session: Session, *, user_name: str, project_id: str | None) -> Principal:
    """Who a request acts as that brings no token but a client certificate the
    service verified and whose subject names ``user_name`` (``api.tls``; only when
    the operator turned that on). The user must exist and be active; the project
    is the one asked for, else the user's default, as with a token."""
    acting_id = func.coalesce(literal(project_id, String), User.default_project_id)
    rows = session.execute(
        select(
            User.id.label("user_id"),
            User.name.label("user_name"),
            User.active,
            User.is_root,
            Project.id.label("acting"),
            RoleAssignment.role,
        )
        .select_from(User)
        .outerjoin(Project, Project.id == acting_id)
        .outerjoin(RoleAssignment, _ROLE_IN_ACTING_PROJECT)
        .where(User.name == user_name)
    ).all()
    if not rows or not rows[0].active:
        raise AuthenticationFailed("the client certificate names no active user of this service")
    roles = _roles_in_acting_project(rows)
    row = rows[0]
    return Principal(
        user_id=row.user_id,
        user_name=row.user_name,
        project_id=row.acting,
        is_root=row.is_root,
        roles=roles,
    )


def note_token_use(session: Session, token_id: int) -> None:
    """Stamp the token's last use, unless a concurrent request just did."""
    now = utcnow()
    session.execute(
        update(ApiToken)
        .where(
            ApiToken.id == token_id,
            or_(
                ApiToken.last_used_at.is_(None),
                ApiToken.last_used_at < now - TOKEN_USE_GRANULARITY,
            ),
        )
        .values(last_used_at=now)
    )
