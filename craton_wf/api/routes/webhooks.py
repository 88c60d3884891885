"""A project's webhook endpoints (admins) and their deliveries, with redelivery by hand."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session

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
from craton_wf.api.webhook_schemas import (
    WebhookAttemptRead,
    WebhookCreate,
    WebhookDeliveryList,
    WebhookDeliveryRead,
    WebhookList,
    WebhookRead,
    WebhookUpdate,
)
from craton_wf.db.models import WebhookDelivery
from craton_wf.services import project_secrets, webhooks

router = APIRouter(prefix="/v1", dependencies=[Authorized], tags=["webhooks"], responses=API_ERRORS)


def _deliveries(session: Session, found: list[WebhookDelivery]) -> list[WebhookDeliveryRead]:
    attempts = webhooks.attempts_of(session, [d.id for d in found])
    return [
        WebhookDeliveryRead(
            id=d.id,
            webhook_id=d.webhook_id,
            event_id=d.event_id,
            event=d.event,
            status=d.status,
            attempts=d.attempts,
            last_status_code=d.last_status_code,
            created_at=d.created_at,
            next_attempt_at=d.next_attempt_at,
            delivered_at=d.delivered_at,
            give_up_at=d.give_up_at,
            data=d.data,
            attempt_log=[WebhookAttemptRead.model_validate(a) for a in attempts[d.id]],
        )
        for d in found
    ]


@router.post("/webhooks", status_code=201)
def create_webhook(
    body: WebhookCreate,
    request: Request,
    response: Response,
    session: SessionDep,
    me: CurrentUser,
    settings: SettingsDep,
) -> WebhookRead:
    fernet = project_secrets.cipher(settings)
    hook = webhooks.create_webhook(session, settings, fernet, me.project_id, me.user_id, body)
    created(response, request, f"webhooks/{hook.id}")
    return WebhookRead.model_validate(hook)


@router.get("/webhooks", response_model=WebhookList)
def list_webhooks(
    request: Request, session: SessionDep, me: CurrentUser, page: PageDep, name: str | None = None
) -> dict[str, Any]:
    if name is not None:
        found = [webhooks.get_webhook(session, me.project_id, name)]
        return {"webhooks": [WebhookRead.model_validate(h) for h in found], "links": []}
    result = webhooks.list_webhooks(session, me.project_id, page)
    return {
        "webhooks": [WebhookRead.model_validate(h) for h in result.items],
        "links": page_links(request, result),
    }


@router.get("/webhooks/{webhook_id}")
def show_webhook(webhook_id: str, session: SessionDep, me: CurrentUser) -> WebhookRead:
    return WebhookRead.model_validate(webhooks.get_webhook(session, me.project_id, webhook_id))


@router.put("/webhooks/{webhook_id}")
def update_webhook(
    webhook_id: str,
    body: WebhookUpdate,
    session: SessionDep,
    me: CurrentUser,
    settings: SettingsDep,
) -> WebhookRead:
    hook = webhooks.get_webhook(session, me.project_id, webhook_id)
    webhooks.update_webhook(session, settings, project_secrets.cipher(settings), hook, body)
    return WebhookRead.model_validate(hook)


@router.delete("/webhooks/{webhook_id}", status_code=204)
def delete_webhook(webhook_id: str, session: SessionDep, me: CurrentUser) -> Response:
    webhooks.delete_webhook(session, webhooks.get_webhook(session, me.project_id, webhook_id))
    return Response(status_code=204)


@router.get("/webhooks/{webhook_id}/deliveries", response_model=WebhookDeliveryList)
def list_deliveries(
    webhook_id: str,
    request: Request,
    session: SessionDep,
    me: CurrentUser,
    page: PageDep,
    status: str | None = None,
) -> dict[str, Any]:
    hook = webhooks.get_webhook(session, me.project_id, webhook_id)
    result = webhooks.list_deliveries(session, hook, page, status)
    return {
        "deliveries": _deliveries(session, result.items),
        "links": page_links(request, result),
    }


@router.get("/webhooks/{webhook_id}/deliveries/{delivery_id}")
def show_delivery(
    webhook_id: str, delivery_id: str, session: SessionDep, me: CurrentUser
) -> WebhookDeliveryRead:
    hook = webhooks.get_webhook(session, me.project_id, webhook_id)
    return _deliveries(session, [webhooks.get_delivery(session, hook, delivery_id)])[0]


@router.post("/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver", status_code=202)
def redeliver(
    webhook_id: str, delivery_id: str, session: SessionDep, me: CurrentUser
) -> WebhookDeliveryRead:
    hook = webhooks.get_webhook(session, me.project_id, webhook_id)
    delivery = webhooks.redeliver_delivery(
        session, webhooks.get_delivery(session, hook, delivery_id)
    )
    return _deliveries(session, [delivery])[0]
