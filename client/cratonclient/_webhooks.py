"""Webhooks: endpoints a project's events are POSTed to, and their deliveries."""

from __future__ import annotations

from typing import Any

from ._managers import Id, Manager
from ._resource import Resource


class WebhookManager(Manager):
    """Webhook endpoints (admins). Fields: ``name``, ``url``, ``events`` (``job.started``,
    ``job.succeeded``, ``job.failed``, ``job.cancelled``, ``job.paused``,
    ``build.failed``, ``approval.requested``), ``secret`` (sent, never answered),
    ``enabled``, ``description``.
    """

    path = "/v1/webhooks"
    key = "webhooks"
    noun = "webhook"

    def deliveries(self, webhook: Id, status: str | None = None) -> list[Resource]:
        """Every delivery of the endpoint, oldest first, each with its ``attempt_log``;
        ``status``: pending, delivered or failed."""
        url = self._url(self.resolve_id(webhook), "deliveries")
        params: dict[str, Any] = {"status": status}
        return [Resource(item) for item in self._session.iter_items(url, "deliveries", params)]

    def delivery(self, webhook: Id, delivery: Id) -> Resource:
        url = self._url(self.resolve_id(webhook), "deliveries", delivery)
        return Resource(self._session.get_json(url))

    def redeliver(self, webhook: Id, delivery: Id) -> Resource:
        """Send the delivery again soon, with the same event id (``X-Craton-Delivery``)."""
        url = self._url(self.resolve_id(webhook), "deliveries", delivery, "redeliver")
        return Resource(self._session.post_json(url))
