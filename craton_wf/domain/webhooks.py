"""Outgoing webhooks: the events an endpoint may subscribe to, its URL rule, and the signature.

A delivery is a JSON document POSTed to the endpoint's URL with these headers:

- ``X-Craton-Event``: the event's type (``job.succeeded``…);
- ``X-Craton-Delivery``: the event's id, the same on every retry and redelivery
  of it: a receiver that keeps the ids it accepted processes each event once;
- ``X-Craton-Timestamp``: seconds since the epoch when this attempt was signed;
- ``X-Craton-Signature``: ``sha256=`` and the hex HMAC-SHA256, under the
  endpoint's secret, of ``<timestamp>.<body>`` (the exact body bytes). The
  timestamp is signed so that a receiver can refuse an old attempt replayed.

The URL rule is the git sources' (:mod:`craton_wf.domain.sources`): https
only, and no host that is or resolves to a loopback, private, link-local or
otherwise non-public address, unless the operator allows private hosts (then
plain http too: a receiver on the operator's own network). It is checked when
an endpoint is created or changed and again right before each delivery, so a
name re-pointed at an internal address later (DNS rebinding) is refused then;
redirects are never followed, so a public URL cannot bounce a delivery inward.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from craton_wf.domain.sources import _HOST_NAME, _literal_address, unsafe_address_kind
from craton_wf.errors import InvalidInput

EVENT_TYPES = (
    "job.started",
    "job.succeeded",
    "job.failed",
    "job.cancelled",
    "job.paused",
    "build.failed",
    "approval.requested",
)

SIGNATURE_PREFIX = "sha256="
MAX_WEBHOOK_URL = 2048
ALLOW_PRIVATE_HINT = "(set CRATON_WF_WEBHOOK_ALLOW_PRIVATE=true to allow private hosts)"


def check_event_types(events: Sequence[str]) -> list[str]:
    """The subscribed event types, each known, without repeats, in the given order."""
    if not events:
        raise InvalidInput(
            f"a webhook subscribes to at least one event of {', '.join(EVENT_TYPES)}"
        )
    unknown = [event for event in events if event not in EVENT_TYPES]
    if unknown:
        raise InvalidInput(
            f"unknown webhook event {', '.join(map(repr, unknown))}; "
            f"one of {', '.join(EVENT_TYPES)}"
        )
    return list(dict.fromkeys(events))


def check_webhook_url(
    url: str, *, allow_private: bool, resolve: Callable[[str], Sequence[str]] | None
) -> str:
    """The URL, stripped, if a delivery may be POSTed to it; else InvalidInput naming why."""
    url = (url or "").strip()
    if not url or len(url) > MAX_WEBHOOK_URL:
        raise InvalidInput(f"a webhook URL is required, at most {MAX_WEBHOOK_URL} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise InvalidInput(f"refusing webhook URL {url!r}: {exc}") from exc
    allowed = ("https", "http") if allow_private else ("https",)
    if parts.scheme.lower() not in allowed:
        raise InvalidInput(
            f"refusing webhook URL {url!r}: only {' or '.join(allowed)} URLs are allowed"
            + ("" if allow_private else f" {ALLOW_PRIVATE_HINT}")
        )
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(f"refusing webhook URL {url!r}: credentials in the URL are not allowed")
    host = parts.hostname or ""
    if not host or (_literal_address(host) is None and not _HOST_NAME.match(host)):
        raise InvalidInput(f"refusing webhook URL {url!r}: {host!r} is not a valid host name")
    if not allow_private:
        _check_public(url, host, resolve)
    return url


def _check_public(url: str, host: str, resolve: Callable[[str], Sequence[str]] | None) -> None:
    literal = _literal_address(host)
    name = host.rstrip(".").lower()
    if literal is None and (name == "localhost" or name.endswith(".localhost")):
        raise InvalidInput(f"refusing webhook URL {url!r}: {host} is loopback {ALLOW_PRIVATE_HINT}")
    if literal is not None:
        addresses = [literal]
    elif resolve is None:
        return
    else:
        try:
            found = resolve(host)
        except OSError as exc:
            raise InvalidInput(f"refusing webhook URL {url!r}: {host} does not resolve") from exc
        addresses = [a for a in (_literal_address(str(one)) for one in found) if a is not None]
        if not addresses:
            raise InvalidInput(f"refusing webhook URL {url!r}: {host} does not resolve")
    for address in addresses:
        kind = unsafe_address_kind(address)
        if kind:
            raise InvalidInput(
                f"refusing webhook URL {url!r}: {host} is {kind} {ALLOW_PRIVATE_HINT}"
            )


def delivery_body(
    event_id: str, event: str, created_at: str, project_id: str, data: dict[str, Any]
) -> bytes:
    """The document POSTed: the same bytes on every attempt of one event."""
    document = {
        "id": event_id,
        "type": event,
        "created_at": created_at,
        "project_id": project_id,
        "data": data,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of ``<timestamp>.<body>`` under ``secret``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return SIGNATURE_PREFIX + digest.hexdigest()


def signature_matches(secret: str, timestamp: str, body: bytes, signature: str | None) -> bool:
    """Whether ``signature`` (a ``X-Craton-Signature`` header) is ``secret``'s over the body."""
    if not signature:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)
