"""How a call to a template's trigger URL proves it knows the trigger's secret.

Two ways, the first preferred:

- signed: ``X-Craton-Timestamp`` (seconds since the epoch) and
  ``X-Craton-Signature: sha256=<hex>``, the HMAC-SHA256 under the secret of
  ``<timestamp>.<body>`` (the exact body bytes), as outgoing webhooks sign
  (:mod:`craton_wf.domain.webhooks`). The secret never travels, the body
  cannot be changed on the way, and a timestamp more than
  :data:`TIMESTAMP_WINDOW_SECONDS` from the server's clock is refused, so a
  request recorded once cannot be replayed later (and inside the window, the
  same signature is accepted once: ``services.triggers``);
- bearer: ``Authorization: Bearer <secret>``, for callers that cannot sign
  (the secret itself is sent, so only over TLS).

A call with neither, a timestamp outside the window, or a signature that is
not the secret's is refused (401). Comparisons are constant-time.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from craton_wf.domain.webhooks import signature_matches
from craton_wf.errors import AuthenticationFailed

TIMESTAMP_WINDOW_SECONDS = 300
HOW_TO_CALL = (
    "a trigger is called with X-Craton-Timestamp and X-Craton-Signature "
    "(sha256=HMAC-SHA256 of '<timestamp>.<body>' under its secret), "
    "or with Authorization: Bearer <secret>"
)


@dataclass(frozen=True)
class TriggerCredential:
    """What the call brought: a signature over its body, or the secret itself."""

    timestamp: str | None = None
    signature: str | None = None
    bearer: str | None = None


def read_credential(
    timestamp: str | None, signature: str | None, bearer: str | None, now: float
) -> TriggerCredential:
    """The call's credential, its timestamp checked against ``now``; else AuthenticationFailed."""
    if timestamp is not None or signature is not None:
        if not timestamp or not signature:
            raise AuthenticationFailed(
                "a signed call sends both X-Craton-Timestamp and X-Craton-Signature"
            )
        check_timestamp(timestamp, now)
        return TriggerCredential(timestamp=timestamp.strip(), signature=signature.strip())
    if bearer and bearer.strip():
        return TriggerCredential(bearer=bearer.strip())
    raise AuthenticationFailed(HOW_TO_CALL)


def check_timestamp(timestamp: str, now: float) -> None:
    """Refuse a timestamp that is not a whole number of seconds within the window of ``now``."""
    text = timestamp.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 12):
        raise AuthenticationFailed(
            f"X-Craton-Timestamp {timestamp[:40]!r} is not seconds since the epoch"
        )
    skew = int(text) - now
    if abs(skew) > TIMESTAMP_WINDOW_SECONDS:
        when = "old" if skew < 0 else "in the future"
        raise AuthenticationFailed(
            f"X-Craton-Timestamp is {abs(int(skew))} s {when}: a signed call is accepted "
            f"within {TIMESTAMP_WINDOW_SECONDS} s of the server's clock (a replay is refused)"
        )


def proves_secret(secret: str, credential: TriggerCredential, body: bytes) -> bool:
    """Whether ``credential`` shows ``secret``: a matching signature, or the secret itself."""
    if credential.bearer is not None:
        return hmac.compare_digest(credential.bearer.encode(), secret.encode())
    return signature_matches(secret, credential.timestamp or "", body, credential.signature)
