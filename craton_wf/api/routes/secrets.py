"""A project's secrets: created, listed, replaced and deleted; values never answered."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from craton_wf.api.deps import (
    Authorized,
    CurrentUser,
    PageDep,
    SessionDep,
    SettingsDep,
    created,
    page_links,
)
from craton_wf.api.openapi import API_ERRORS
from craton_wf.api.schemas import SecretCreate, SecretList, SecretRead, SecretUpdate
from craton_wf.services import project_secrets

router = APIRouter(prefix="/v1", dependencies=[Authorized], tags=["secrets"], responses=API_ERRORS)


@router.post("/secrets", status_code=201)
def create_secret(
    body: SecretCreate,
    request: Request,
    response: Response,
    session: SessionDep,
    me: CurrentUser,
    settings: SettingsDep,
) -> SecretRead:
    fernet = project_secrets.cipher(settings)
    secret = project_secrets.create_secret(session, fernet, me.project_id, me.user_id, body)
    created(response, request, f"secrets/{secret.id}")
    return SecretRead.model_validate(secret)


@router.get("/secrets", response_model=SecretList)
def list_secrets(
    request: Request, session: SessionDep, me: CurrentUser, page: PageDep, name: str | None = None
) -> dict[str, Any]:
    if name is not None:
        found = [project_secrets.get_secret(session, me.project_id, name)]
        return {"secrets": [SecretRead.model_validate(s) for s in found], "links": []}
    result = project_secrets.list_secrets(session, me.project_id, page)
    return {
        "secrets": [SecretRead.model_validate(s) for s in result.items],
        "links": page_links(request, result),
    }


@router.get("/secrets/{secret_id}")
def show_secret(secret_id: str, session: SessionDep, me: CurrentUser) -> SecretRead:
    return SecretRead.model_validate(project_secrets.get_secret(session, me.project_id, secret_id))


@router.put("/secrets/{secret_id}")
def update_secret(
    secret_id: str, body: SecretUpdate, session: SessionDep, me: CurrentUser, settings: SettingsDep
) -> SecretRead:
    fernet = project_secrets.cipher(settings)
    secret = project_secrets.get_secret(session, me.project_id, secret_id)
    project_secrets.update_secret(session, fernet, secret, body)
    return SecretRead.model_validate(secret)


@router.delete("/secrets/{secret_id}", status_code=204)
def delete_secret(secret_id: str, session: SessionDep, me: CurrentUser) -> Response:
    project_secrets.delete_secret(
        session, project_secrets.get_secret(session, me.project_id, secret_id)
    )
    return Response(status_code=204)
