"""Sending webhook deliveries: the runner's one piece of outgoing HTTP.

A thread of each runner claims due deliveries (:mod:`craton_wf.engine.webhooks`,
leased like runs, so runners share the work and none sends a delivery another
holds), POSTs each, and records the attempt. Right before each POST the URL
is checked again under the current settings, its host name resolved anew
(:func:`craton_wf.domain.webhooks.check_webhook_url`): a name that now points
inward is refused, recorded as a failed attempt. Redirects are not followed
(an answer 3xx is a failed attempt), and each attempt has a time limit.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

import httpx
from sqlalchemy.orm import Session, sessionmaker

from craton_wf.db.engine import transaction
from craton_wf.domain.webhooks import check_webhook_url, delivery_body, sign
from craton_wf.engine import source_rules
from craton_wf.engine.run_secrets import cipher
from craton_wf.engine.webhooks import (
    EXCERPT_CHARS,
    DeliveryAssignment,
    claim_due_deliveries,
    record_attempt,
)
from craton_wf.errors import CratonError, LeaseLost
from craton_wf.settings import Settings

log = logging.getLogger(__name__)

# Deliveries claimed at once and sent one after the other: their lease covers
# every one of them taking the whole timeout, so that another runner never takes
# over (and sends again) a delivery still waiting its turn here.
CLAIM_BATCH = 4
USER_AGENT = "craton-wf-webhooks"


class WebhookSender:
    def __init__(self, settings: Settings, sessions: sessionmaker[Session], owner: str) -> None:
        self.settings = settings
        self.sessions = sessions
        self.owner = owner
        self._fernet = cipher(settings)
        self._client = httpx.Client(
            follow_redirects=False,
            timeout=settings.webhook_timeout_seconds,
            headers={"User-Agent": USER_AGENT},
            trust_env=False,  # no proxy from the environment between us and the check
        )

    def run_until(self, stop: threading.Event) -> None:
        """Send due deliveries until ``stop`` is set; sleep a poll interval when none is due."""
        try:
            while not stop.is_set():
                try:
                    sent = self.send_due()
                except Exception:
                    log.exception("sending webhook deliveries failed; retrying")
                    sent = 0
                if not sent:
                    stop.wait(self.settings.runner_poll_seconds)
        finally:
            self._client.close()

    def send_due(self) -> int:
        """Claim the due deliveries, send and record each; how many were sent."""
        with transaction(self.sessions) as session:
            claimed = claim_due_deliveries(
                session,
                self.owner,
                self.settings.lease_seconds + CLAIM_BATCH * self.settings.webhook_timeout_seconds,
                CLAIM_BATCH,
                self.settings.webhook_retry_seconds,
            )
        for assignment in claimed:
            self._send(assignment)
        return len(claimed)

    def _send(self, assignment: DeliveryAssignment) -> None:
        started_at = datetime.now(UTC)
        began = time.monotonic()
        status_code: int | None = None
        text: str | None = None
        error: str | None = None
        try:
            check_webhook_url(
                assignment.url,
                allow_private=self.settings.webhook_allow_private,
                resolve=lambda host: source_rules.resolve_host_addresses(host),
            )
            answer = self._post(assignment)
            status_code, text = answer.status_code, answer.text[:EXCERPT_CHARS]
        except CratonError as exc:
            error = str(exc)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        latency_ms = int((time.monotonic() - began) * 1000)
        try:
            with transaction(self.sessions) as session:
                status = record_attempt(
                    session,
                    assignment,
                    self.owner,
                    started_at=started_at,
                    latency_ms=latency_ms,
                    status_code=status_code,
                    response_text=text,
                    error=error,
                    backoff_seconds=self.settings.webhook_backoff_seconds,
                )
        except LeaseLost:
            log.warning("webhook delivery %s was taken over", assignment.delivery_id)
            return
        log.info(
            "webhook delivery %s (%s, attempt %s): %s -> %s",
            assignment.delivery_id, assignment.event, assignment.attempt,
            status_code if status_code is not None else error, status,
        )  # fmt: skip

    def _post(self, assignment: DeliveryAssignment) -> httpx.Response:
        body = delivery_body(
            assignment.event_id,
            assignment.event,
            assignment.created_at.isoformat(),
            assignment.project_id,
            assignment.data,
        )
        secret = self._fernet.decrypt(assignment.secret_ciphertext.encode()).decode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Craton-Event": assignment.event,
            "X-Craton-Delivery": assignment.event_id,
            "X-Craton-Timestamp": timestamp,
            "X-Craton-Signature": sign(secret, timestamp, body),
        }
        return self._client.post(assignment.url, content=body, headers=headers)
