"""Users, their roles in a project, and their API tokens.

A project admin manages the users holding a role in their project; root
manages everyone, and only root makes root or gives an existing user a role
in another project. Deleting a user of a project
removes their role there (and revokes their tokens scoped to it); a user with
no role left anywhere is deactivated. Tokens are shown once; a user creates
and manages their own, an admin also lists and revokes the project's users'
tokens scoped to it (never a root user's), and only root creates a token for
someone else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from craton_wf.db.models import ApiToken, RoleAssignment, User, utcnow
from craton_wf.errors import Conflict, Forbidden, InvalidInput, NotFound
from craton_wf.services import policy
from craton_wf.services.auth import IssuedToken, Principal, issue_token
from craton_wf.services.inputs import TokenCreate, UserCreate, UserUpdate

MAX_TOKEN_TTL = timedelta(days=366)


@dataclass(frozen=True)
class UserView:
    user: User
    role: str | None  # in the caller's project


def _role_in(session: Session, user_id: int, project_id: str) -> str | None:
    return session.execute(
        select(RoleAssignment.role).where(
            RoleAssignment.user_id == user_id, RoleAssignment.project_id == project_id
        )
    ).scalar_one_or_none()


def _project_role(user: User, role: str) -> str:
    """``root`` is global: the user becomes root and is the project's admin."""
    if role == policy.ROOT:
        user.is_root = True
        return "admin"
    return role


def list_users(session: Session, me: Principal) -> list[UserView]:
    rows = session.execute(
        select(User, RoleAssignment.role)
        .join(RoleAssignment, RoleAssignment.user_id == User.id)
        .where(RoleAssignment.project_id == me.project_id)
        .order_by(User.id)
    ).all()
    return [UserView(user, role) for user, role in rows]


def get_user(session: Session, me: Principal, ref: str | int) -> UserView:
    """A user holding a role in the caller's project (root: any user); else NotFound."""
    column = User.id if (str(ref).isascii() and str(ref).isdigit()) else User.name
    value = int(ref) if (str(ref).isascii() and str(ref).isdigit()) else str(ref)
    user = session.execute(select(User).where(column == value)).scalar_one_or_none()
    role = _role_in(session, user.id, me.project_id) if user else None
    if user is None or (role is None and not me.is_root):
        raise NotFound(f"no user {ref}")
    return UserView(user, role)


def create_user(session: Session, me: Principal, spec: UserCreate) -> UserView:
    """A new user with a role in the caller's project (``UserCreate`` bounds the
    name's length and names the roles there are).

    User names are global, so a name may already belong to someone. One who
    holds a role here is a conflict that says so. Anyone else answers the
    same "user name taken" whether they belong to another project or to
    none: a project admin learns nothing about other projects and cannot
    pull their users in. Only root attaches an existing user to a project.
    """
    name = spec.name
    policy.may_grant(me, spec.role)
    user = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
    if user is None:
        user = User(name=name, default_project_id=me.project_id)
        session.add(user)
        session.flush()
    elif _role_in(session, user.id, me.project_id) is not None:
        raise Conflict(f"user {name} already has a role in this project")
    elif not me.is_root:
        raise Conflict(f"user name {name} is taken; choose another name")
    user.active = True
    role = _project_role(user, spec.role)
    session.add(RoleAssignment(user_id=user.id, project_id=me.project_id, role=role))
    session.flush()
    return UserView(user, role)


def set_role(session: Session, me: Principal, ref: str | int, changes: UserUpdate) -> UserView:
    policy.may_grant(me, changes.role)
    view = get_user(session, me, ref)
    if view.user.is_root and not me.is_root:
        raise NotFound(f"no user {ref}")
    role = _project_role(view.user, changes.role)
    if view.user.id == me.user_id and not me.is_root and policy.RANK[role] < policy.RANK["admin"]:
        raise Conflict("admins cannot lower their own role; ask another admin")
    assignment = session.get(RoleAssignment, (view.user.id, me.project_id))
    if assignment is None:
        session.add(RoleAssignment(user_id=view.user.id, project_id=me.project_id, role=role))
    else:
        assignment.role = role
    session.flush()
    return UserView(view.user, role)


def remove_user(session: Session, me: Principal, ref: str | int) -> None:
    view = get_user(session, me, ref)
    if view.user.id == me.user_id:
        raise Conflict("you cannot remove yourself")
    if view.user.is_root and not me.is_root:
        raise NotFound(f"no user {ref}")
    assignment = session.get(RoleAssignment, (view.user.id, me.project_id))
    if assignment is not None:
        session.delete(assignment)
    now = utcnow()
    session.execute(
        update(ApiToken)
        .where(
            ApiToken.user_id == view.user.id,
            ApiToken.revoked_at.is_(None),
            (ApiToken.project_id == me.project_id) | ApiToken.project_id.is_(None),
        )
        .values(revoked_at=now)
    )
    session.flush()
    left = session.execute(
        select(RoleAssignment).where(RoleAssignment.user_id == view.user.id)
    ).first()
    if left is None and not view.user.is_root:
        view.user.active = False


# --- tokens -----------------------------------------------------------------------


def create_token(session: Session, me: Principal, spec: TokenCreate) -> IssuedToken:
    """A token for the caller (or, for root, for a user of the project).

    It acts in the caller's project only; it expires after ``spec.expires_in``
    seconds, within the bounds checked here.
    Only root mints tokens for someone else: a token acts as its user, so an
    admin minting one for another admin could approve their own build under
    that admin's name.
    """
    ttl_seconds, user_ref = spec.expires_in, spec.user
    if ttl_seconds is not None and not 60 <= ttl_seconds <= MAX_TOKEN_TTL.total_seconds():
        raise InvalidInput(
            f"expires_in must be between 60 and {int(MAX_TOKEN_TTL.total_seconds())}"
        )
    user = session.get(User, me.user_id)
    if user_ref is not None and str(user_ref) not in (str(me.user_id), me.user_name):
        if not me.is_root:
            raise Forbidden("only a root user may create a token for another user")
        user = get_user(session, me, user_ref).user
    assert user is not None
    ttl = timedelta(seconds=ttl_seconds) if ttl_seconds else None
    return issue_token(session, user, name=spec.name, project_id=me.project_id, ttl=ttl)


def list_tokens(session: Session, me: Principal) -> list[tuple[ApiToken, str]]:
    """The caller's tokens; an admin also those of the project's users, scoped to it.

    An admin never sees a root user's tokens, nor a token that acts in another
    project or in any (unscoped, ``project_id`` NULL); root sees every token of
    the project's users.
    """
    stmt = select(ApiToken, User.name).join(User, User.id == ApiToken.user_id)
    stmt = stmt.where(ApiToken.job_id.is_(None))
    members = select(RoleAssignment.user_id).where(RoleAssignment.project_id == me.project_id)
    if me.is_root:
        stmt = stmt.where(
            ApiToken.user_id.in_(members),
            (ApiToken.project_id == me.project_id) | ApiToken.project_id.is_(None),
        )
    elif policy.has_role(me, "admin"):
        others = (
            ApiToken.user_id.in_(members)
            & User.is_root.is_(False)
            & (ApiToken.project_id == me.project_id)
        )
        stmt = stmt.where((ApiToken.user_id == me.user_id) | others)
    else:
        stmt = stmt.where(ApiToken.user_id == me.user_id)
    return [(token, user) for token, user in session.execute(stmt.order_by(ApiToken.id)).all()]


def get_token(session: Session, me: Principal, token_id: int | str) -> ApiToken:
    """One of the tokens :func:`list_tokens` shows the caller; NotFound for any other."""
    for token, _ in list_tokens(session, me):
        if str(token.id) == str(token_id):
            return token
    raise NotFound(f"no token {token_id}")


def revoke_token(session: Session, me: Principal, token_id: int) -> ApiToken:
    token = get_token(session, me, token_id)
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    return token


def user_names(session: Session, user_ids: Iterable[int | None]) -> dict[int, str]:
    """The names of the users with these ids (pages show who did what, not ids)."""
    wanted = sorted({user_id for user_id in user_ids if user_id is not None})
    if not wanted:
        return {}
    rows = session.execute(select(User.id, User.name).where(User.id.in_(wanted)))
    return {user_id: name for user_id, name in rows}
