"""Users and their roles, API tokens, and the audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from pydantic import BeforeValidator

from craton_wf.api.deps import (
    Authorized,
    CurrentUser,
    KnownQuery,
    SessionDep,
    SettingsDep,
    api_base_url,
    created,
)
from craton_wf.api.openapi import API_ERRORS
from craton_wf.api.schemas import (
    AuditEventList,
    AuditEventRead,
    TokenCreate,
    TokenIssued,
    TokenList,
    TokenRead,
    UserCreate,
    UserList,
    UserRead,
    UserUpdate,
)
from craton_wf.db.models import ApiToken
from craton_wf.errors import InvalidInput
from craton_wf.services import audit
from craton_wf.services import users as user_service

router = APIRouter(prefix="/v1", dependencies=[Authorized], responses=API_ERRORS)


def _iso_time(value: Any) -> Any:
    # pydantic reads a bare number as Unix time; the document and the CLI say ISO 8601
    if not isinstance(value, str) or value.strip().replace(".", "", 1).lstrip("-").isdigit():
        raise ValueError("an ISO 8601 time is needed, e.g. 2026-12-04T21:00:00Z")
    return value


IsoTime = Annotated[datetime, BeforeValidator(_iso_time)]


def user_read(view: user_service.UserView) -> UserRead:
    user = view.user
    return UserRead(
        id=user.id,
        name=user.name,
        role="root" if user.is_root and view.role is None else view.role,
        is_root=user.is_root,
        active=user.active,
        created_at=user.created_at,
    )


def token_read(token: ApiToken, user: str) -> TokenRead:
    return TokenRead(
        id=token.id,
        name=token.name,
        user=user,
        prefix=token.prefix,
        project_id=token.project_id,
        created_at=token.created_at,
        expires_at=token.expires_at,
        revoked_at=token.revoked_at,
        last_used_at=token.last_used_at,
    )


# --- users --------------------------------------------------------------------------


@router.get("/users", tags=["users"], response_model=UserList)
def list_users(session: SessionDep, me: CurrentUser, _query: KnownQuery) -> dict[str, Any]:
    return {"users": [user_read(v) for v in user_service.list_users(session, me)]}


@router.post("/users", status_code=201, tags=["users"])
def create_user(
    body: UserCreate, request: Request, response: Response, session: SessionDep, me: CurrentUser
) -> UserRead:
    view = user_service.create_user(session, me, body)
    created(response, request, f"users/{view.user.id}")
    return user_read(view)


@router.get("/users/{user_id}", tags=["users"])
def show_user(user_id: str, session: SessionDep, me: CurrentUser) -> UserRead:
    return user_read(user_service.get_user(session, me, user_id))


@router.put("/users/{user_id}", tags=["users"])
def update_user(user_id: str, body: UserUpdate, session: SessionDep, me: CurrentUser) -> UserRead:
    return user_read(user_service.set_role(session, me, user_id, body))


@router.delete("/users/{user_id}", status_code=204, tags=["users"])
def delete_user(user_id: str, session: SessionDep, me: CurrentUser) -> Response:
    user_service.remove_user(session, me, user_id)
    return Response(status_code=204)


# --- tokens -------------------------------------------------------------------------


@router.post("/tokens", status_code=201, tags=["tokens"])
def create_token(
    body: TokenCreate, request: Request, response: Response, session: SessionDep, me: CurrentUser
) -> TokenIssued:
    issued = user_service.create_token(session, me, body)
    token = session.get(ApiToken, issued.id)
    assert token is not None
    created(response, request, f"tokens/{issued.id}")
    return TokenIssued(**token_read(token, issued.user_name).model_dump(), token=issued.token)


@router.get("/tokens", tags=["tokens"], response_model=TokenList)
def list_tokens(session: SessionDep, me: CurrentUser, _query: KnownQuery) -> dict[str, Any]:
    return {"tokens": [token_read(t, u) for t, u in user_service.list_tokens(session, me)]}


@router.delete("/tokens/{token_id}", status_code=204, tags=["tokens"])
def revoke_token(token_id: int, session: SessionDep, me: CurrentUser) -> Response:
    user_service.revoke_token(session, me, token_id)
    return Response(status_code=204)


# --- audit trail --------------------------------------------------------------------


@router.get("/audit-events", tags=["audit"], response_model=AuditEventList)
def list_audit_events(
    request: Request,
    session: SessionDep,
    me: CurrentUser,
    settings: SettingsDep,
    _query: KnownQuery,
    limit: Annotated[int | None, Query(ge=1)] = None,
    marker: int | None = None,
    user: str | None = None,
    action: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    outcome: str | None = None,
    since: IsoTime | None = None,
    until: IsoTime | None = None,
) -> dict[str, Any]:
    limit = limit or settings.page_default_limit
    if limit > settings.page_max_limit:
        raise InvalidInput(f"limit must be at most {settings.page_max_limit}")
    events, more = audit.list_events(
        session,
        me,
        limit=limit,
        marker=marker,
        user=user,
        action=action,
        object_type=object_type,
        object_id=object_id,
        outcome=outcome,
        since=since,
        until=until,
    )
    base = api_base_url(request) + request.url.path
    links = [{"rel": "self", "href": base + (f"?{request.url.query}" if request.url.query else "")}]
    if more and events:
        query = {k: v for k, v in request.query_params.items() if k != "marker"}
        query["marker"] = str(events[-1].id)
        links.append({"rel": "next", "href": f"{base}?{urlencode(query)}"})
    return {
        "audit_events": [AuditEventRead.model_validate(e) for e in events],
        "links": links,
    }
