"""A project's webhook endpoints and their deliveries: what the API does with them.

An endpoint's secret is write-only: stored encrypted with the service's key
(the cipher of :mod:`craton_wf.services.project_secrets`), handed only to the
runner that signs a delivery, never answered. Its URL is checked under the
operator's rule when it is created or changed
(:func:`craton_wf.domain.webhooks.check_webhook_url`, the host name resolved
as for git sources) and again by the runner before each delivery.

Deliveries are written by the engine with the events themselves
(:mod:`craton_wf.engine.webhooks`); here they are listed with their attempts,
and one can be sent again by hand (:func:`redeliver_delivery`), with the same
event id so that a receiver that already has it keeps one.
"""

from __future__ import annotations

from typing import Annotated, Any

from cryptography.fernet import Fernet
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from craton_wf.db.models import Webhook, WebhookAttempt, WebhookDelivery
from craton_wf.domain.webhooks import EVENT_TYPES, check_event_types, check_webhook_url
from craton_wf.engine import source_rules
from craton_wf.engine import webhooks as outbox
from craton_wf.errors import InvalidInput, NotFound
from craton_wf.services.inputs import Input, Name
from craton_wf.services.lookups import find_by_ref, flush_unique
from craton_wf.services.pagination import Page, PageRequest, paginate, scoped
from craton_wf.settings import Settings

WEBHOOK_SORT_KEYS = ("id", "name", "created_at")
DELIVERY_SORT_KEYS = ("id", "created_at")
DELIVERY_STATES = (outbox.PENDING, outbox.DELIVERED, outbox.FAILED)
MIN_SECRET, MAX_SECRET = 16, 256

WebhookSecret = Annotated[
    str,
    Field(
        min_length=MIN_SECRET,
        max_length=MAX_SECRET,
        description="the key deliveries are signed with (HMAC-SHA256); never answered",
    ),
]
EVENTS_DESCRIPTION = f"the events it is sent: {', '.join(EVENT_TYPES)}"


class WebhookCreate(Input):
    name: Name
    url: Annotated[str, Field(max_length=2048, description="https URL deliveries are POSTed to")]
    events: list[Annotated[str, Field(max_length=64)]] = Field(
        max_length=len(EVENT_TYPES), description=EVENTS_DESCRIPTION
    )
    secret: WebhookSecret
    enabled: bool = True
    description: str | None = Field(default=None, max_length=4096)


class WebhookUpdate(Input):
    url: Annotated[str, Field(max_length=2048)] | None = None
    events: list[Annotated[str, Field(max_length=64)]] | None = Field(
        default=None, max_length=len(EVENT_TYPES), description=EVENTS_DESCRIPTION
    )
    secret: WebhookSecret | None = None
    enabled: bool | None = None
    description: str | None = Field(default=None, max_length=4096)


def _checked_url(settings: Settings, url: str) -> str:
    return check_webhook_url(
        url,
        allow_private=settings.webhook_allow_private,
        resolve=lambda host: source_rules.resolve_host_addresses(host),
    )


def create_webhook(
    session: Session,
    settings: Settings,
    fernet: Fernet,
    project_id: str,
    user_id: int | None,
    spec: WebhookCreate,
) -> Webhook:
    if not spec.name.strip() or spec.name.isdigit():
        raise InvalidInput("a webhook's name must be non-empty and not only digits")
    webhook = Webhook(
        project_id=project_id,
        name=spec.name,
        url=_checked_url(settings, spec.url),
        events=check_event_types(spec.events),
        secret_ciphertext=fernet.encrypt(spec.secret.encode()).decode(),
        enabled=spec.enabled,
        description=spec.description,
        created_by=user_id,
    )
    session.add(webhook)
    flush_unique(session, "webhook", spec.name)
    return webhook


def update_webhook(
    session: Session, settings: Settings, fernet: Fernet, webhook: Webhook, changes: WebhookUpdate
) -> Webhook:
    """Change what ``changes`` gives (a null description clears it)."""
    if changes.url is not None:
        webhook.url = _checked_url(settings, changes.url)
    if changes.events is not None:
        webhook.events = check_event_types(changes.events)
    if changes.secret is not None:
        webhook.secret_ciphertext = fernet.encrypt(changes.secret.encode()).decode()
    if changes.enabled is not None:
        webhook.enabled = changes.enabled
    if "description" in changes.model_fields_set:
        webhook.description = changes.description
    session.flush()
    return webhook


def get_webhook(session: Session, project_id: str, ref: Any) -> Webhook:
    return find_by_ref(session, Webhook, project_id, ref, "webhook")


def list_webhooks(session: Session, project_id: str, page: PageRequest) -> Page[Webhook]:
    return paginate(session, scoped(Webhook, project_id), Webhook, page, WEBHOOK_SORT_KEYS)


def delete_webhook(session: Session, webhook: Webhook) -> None:
    session.delete(webhook)
    session.flush()


def list_deliveries(
    session: Session, webhook: Webhook, page: PageRequest, status: str | None = None
) -> Page[WebhookDelivery]:
    stmt = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook.id)
    if status is not None:
        if status not in DELIVERY_STATES:
            raise InvalidInput(f"status must be one of {', '.join(DELIVERY_STATES)}")
        stmt = stmt.where(WebhookDelivery.status == status)
    return paginate(session, stmt, WebhookDelivery, page, DELIVERY_SORT_KEYS)


def get_delivery(session: Session, webhook: Webhook, delivery_id: Any) -> WebhookDelivery:
    delivery = None
    if (
        isinstance(delivery_id, str)
        and delivery_id.isascii()
        and delivery_id.isdigit()
        and len(delivery_id) <= 9  # an Integer id; a longer number names nothing
    ):
        delivery = session.get(WebhookDelivery, int(delivery_id))
    if delivery is None or delivery.webhook_id != webhook.id:
        raise NotFound(f"delivery {delivery_id} of webhook {webhook.name} not found")
    return delivery


def attempts_of(session: Session, delivery_ids: list[int]) -> dict[int, list[WebhookAttempt]]:
    """The attempts of each delivery, oldest first."""
    found: dict[int, list[WebhookAttempt]] = {delivery_id: [] for delivery_id in delivery_ids}
    if delivery_ids:
        for attempt in session.execute(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(delivery_ids))
            .order_by(WebhookAttempt.delivery_id, WebhookAttempt.number)
        ).scalars():
            found[attempt.delivery_id].append(attempt)
    return found


def redeliver_delivery(session: Session, delivery: WebhookDelivery) -> WebhookDelivery:
    outbox.redeliver(session, delivery)
    return delivery
