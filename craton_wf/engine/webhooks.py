"""Webhook deliveries: an outbox written with each event, claimed and settled by runners.

When something a project's endpoints may subscribe to happens (a job starts
or ends, a build fails, a build awaits approval), :func:`enqueue_event`
writes one delivery row per enabled endpoint subscribed to it, in the
transaction that records the event itself: a delivery is never lost once the
event is committed, and never exists for an event that was rolled back.

Runners send them (:mod:`craton_wf.runner.webhook_sender`):
:func:`claim_due_deliveries` takes due rows with a lease, as runs are claimed
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two runners never send one
delivery at the same time; an expired lease makes the row due again), and
:func:`record_attempt` stores each attempt and decides what follows: a 2xx
answer delivers it; anything else retries after an exponential backoff with
jitter until the delivery's retry window (``webhook_retry_seconds``) closes,
then it is failed. Every attempt keeps its status code, latency and the start
of the answer. A delivery may be sent more than once (a runner that dies after
the POST but before recording it); the event id, the same on every attempt,
lets the receiver keep one.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from craton_wf.db.models import Job, Webhook, WebhookAttempt, WebhookDelivery, utcnow
from craton_wf.engine._pending import insert_later
from craton_wf.engine.leases import claim_many, db_now
from craton_wf.errors import LeaseLost

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
MAX_BACKOFF_SECONDS = 3600.0
EXCERPT_CHARS = 512


@dataclass(frozen=True)
class DeliveryAssignment:
    """What a runner needs to send one delivery, and the lease it holds on it."""

    delivery_id: int
    epoch: int
    url: str
    secret_ciphertext: str
    event_id: str
    event: str
    created_at: datetime
    project_id: str
    data: dict[str, Any]
    attempt: int


def enqueue_event(session: Session, project_id: str, event: str, data: dict[str, Any]) -> int:
    """Write one delivery of ``event`` per enabled endpoint of the project subscribed to
    it, inserted with the caller's transaction; the number written."""
    endpoints = session.execute(
        select(Webhook.id, Webhook.events).where(
            Webhook.project_id == project_id, Webhook.enabled.is_(True)
        )
    ).all()
    subscribed = [webhook_id for webhook_id, events in endpoints if event in (events or [])]
    if not subscribed:
        return 0
    now = utcnow()
    event_id = str(uuid.uuid4())
    insert_later(
        session,
        WebhookDelivery,
        [
            {
                "webhook_id": webhook_id,
                "project_id": project_id,
                "event_id": event_id,
                "event": event,
                "data": data,
                "created_at": now,
                "status": PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "give_up_at": None,
                "lease_epoch": 0,
            }
            for webhook_id in subscribed
        ],
    )
    return len(subscribed)


def claim_due_deliveries(
    session: Session, owner: str, lease_seconds: float, limit: int, retry_seconds: float
) -> list[DeliveryAssignment]:
    """Up to ``limit`` due deliveries, leased to ``owner`` (rows others hold are skipped).

    A delivery's retry window opens at its first claim (and again at a redelivery)."""
    now = db_now(session)
    stmt = (
        select(WebhookDelivery)
        .where(
            WebhookDelivery.status == PENDING,
            WebhookDelivery.next_attempt_at <= now,
            or_(
                WebhookDelivery.lease_expires_at.is_(None),
                WebhookDelivery.lease_expires_at < now,
            ),
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
    )
    deliveries: list[WebhookDelivery] = claim_many(session, stmt, WebhookDelivery, limit)
    if not deliveries:
        return []
    hooks = {
        hook.id: hook
        for hook in session.execute(
            select(Webhook).where(Webhook.id.in_({d.webhook_id for d in deliveries}))
        ).scalars()
    }
    claimed = []
    for delivery in deliveries:
        delivery.lease_owner = owner
        delivery.lease_epoch += 1
        delivery.lease_expires_at = now + timedelta(seconds=lease_seconds)
        if delivery.give_up_at is None:
            delivery.give_up_at = now + timedelta(seconds=retry_seconds)
        hook = hooks[delivery.webhook_id]
        claimed.append(
            DeliveryAssignment(
                delivery_id=delivery.id,
                epoch=delivery.lease_epoch,
                url=hook.url,
                secret_ciphertext=hook.secret_ciphertext,
                event_id=delivery.event_id,
                event=delivery.event,
                created_at=delivery.created_at,
                project_id=delivery.project_id,
                data=delivery.data,
                attempt=delivery.attempts + 1,
            )
        )
    session.flush()
    return claimed


def retry_delay(attempts: int, base_seconds: float) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: the base doubled
    each time (at most an hour), and a random part up to as much again, so that
    deliveries failing together do not all come back at the same moment."""
    delay = min(base_seconds * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS)
    return delay + random.uniform(0, delay)


def record_attempt(
    session: Session,
    assignment: DeliveryAssignment,
    owner: str,
    *,
    started_at: datetime,
    latency_ms: int,
    status_code: int | None,
    response_text: str | None,
    error: str | None,
    backoff_seconds: float,
) -> str:
    """Store one attempt and what follows it; the delivery's status after."""
    delivery = session.get(WebhookDelivery, assignment.delivery_id, with_for_update=True)
    if (
        delivery is None
        or delivery.lease_owner != owner
        or delivery.lease_epoch != assignment.epoch
    ):
        raise LeaseLost(f"webhook delivery {assignment.delivery_id} is no longer {owner}'s")
    delivery.attempts += 1
    session.add(
        WebhookAttempt(
            delivery_id=delivery.id,
            number=delivery.attempts,
            started_at=started_at,
            status_code=status_code,
            latency_ms=latency_ms,
            response_excerpt=(response_text or "")[:EXCERPT_CHARS] or None,
            error=error[:EXCERPT_CHARS] if error else None,
        )
    )
    delivery.last_status_code = status_code
    delivery.lease_owner = None
    delivery.lease_expires_at = None
    now = utcnow()
    if status_code is not None and 200 <= status_code < 300:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = DELIVERED, now, None
    else:
        next_at = now + timedelta(seconds=retry_delay(delivery.attempts, backoff_seconds))
        if delivery.give_up_at is None or next_at > delivery.give_up_at:
            delivery.status, delivery.next_attempt_at = FAILED, None
        else:
            delivery.next_attempt_at = next_at
    session.flush()
    return delivery.status


def redeliver(session: Session, delivery: WebhookDelivery) -> None:
    """Send the delivery again, soon, with the same event id; retried anew if it fails."""
    delivery.status = PENDING
    delivery.next_attempt_at = utcnow()
    delivery.give_up_at = None
    delivery.delivered_at = None
    session.flush()


def job_event_data(job: Any) -> dict[str, Any]:
    """What a job event's document says of the job (a ``Job`` or a row with its columns)."""
    return {
        "job": {
            "id": job.id,
            "name": job.name,
            "status": job.status,
            "workflow_id": job.workflow_id,
            "task_id": job.task_id,
            "message": job.message,
            "started_at": job.started_at.isoformat() if job.started_at else None,
            "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        }
    }


def enqueue_job_event(session: Session, job_id: int, event: str) -> int:
    """:func:`enqueue_event` for a job whose row this transaction holds by id only."""
    row = session.execute(
        select(
            Job.id, Job.project_id, Job.name, Job.status, Job.workflow_id, Job.task_id,
            Job.message, Job.started_at, Job.finished_at,
        ).where(Job.id == job_id)
    ).one()  # fmt: skip
    return enqueue_event(session, row.project_id, event, job_event_data(row))
