"""What the API answers about webhooks: endpoints (never their secret) and deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from craton_wf.api.schemas import Link, Output
from craton_wf.services.webhooks import WebhookCreate as WebhookCreate
from craton_wf.services.webhooks import WebhookUpdate as WebhookUpdate


class WebhookRead(Output):
    """An endpoint as the API shows it: its secret is write-only."""

    id: int
    project_id: str
    name: str
    url: str
    events: list[str]
    enabled: bool
    description: str | None
    created_at: datetime
    updated_at: datetime | None


class WebhookAttemptRead(Output):
    """One POST of a delivery and what the receiver answered (its first bytes)."""

    number: int
    started_at: datetime
    status_code: int | None
    latency_ms: int
    response_excerpt: str | None
    error: str | None


class WebhookDeliveryRead(BaseModel):
    """One event for one endpoint: ``event_id`` is the ``X-Craton-Delivery`` header,
    the same on every attempt; ``status`` pending, delivered or failed."""

    id: int
    webhook_id: int
    event_id: str
    event: str
    status: str
    attempts: int
    last_status_code: int | None
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    give_up_at: datetime | None
    data: dict[str, Any]
    attempt_log: list[WebhookAttemptRead]


class WebhookList(BaseModel):
    webhooks: list[WebhookRead]
    links: list[Link]


class WebhookDeliveryList(BaseModel):
    deliveries: list[WebhookDeliveryRead]
    links: list[Link]
