"""The exceptions the client raises.

::

    ClientError                     anything this library raises on purpose
    ├── ConnectionFailed            the server could not be reached (or the connection broke)
    ├── BadTLSFile                  a CA, client certificate or key file cannot be used
    ├── NoUniqueMatch               a name matches several objects; use an id
    └── HTTPError                   the server answered with an error status
        ├── BadRequest              400 invalid input
        ├── Unauthorized            401 no or wrong credentials
        ├── Forbidden               403 not allowed
        ├── NotFound                404 no such object (also: a name that matches nothing)
        ├── Conflict                409 duplicate name, task not READY, object in use
        ├── PayloadTooLarge         413 body or archive over the server's cap
        ├── UnprocessableEntity     422 the request does not match the schema
        └── ServerError             5xx the server failed

An ``HTTPError`` carries the ``status``, the server's human ``message`` and its
machine-readable ``code`` (``"not_found"``, ``"conflict"``, ... or ``None``).
Other statuses (405, 429, ...) raise a plain ``HTTPError``.

Statuses are mapped to classes here and only here, by :func:`from_response`.
The message comes from the JSON body's ``message`` (or FastAPI's ``detail``);
a body that is not JSON is truncated before it becomes a message, so an HTML
error page from a proxy does not flood a terminal.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

#: Longest piece of a response body quoted in an error message.
MAX_BODY_CHARS = 500


class ClientError(Exception):
    """The craton client failed."""

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (self.__doc__ or type(self).__name__).strip()
        super().__init__(self.message)


class ConnectionFailed(ClientError):
    """Cannot reach the craton server."""


class BadTLSFile(ClientError):
    """A CA certificate, client certificate or key file cannot be used."""


class NoUniqueMatch(ClientError):
    """Several objects have this name; use an id."""


class HTTPError(ClientError):
    """The server answered with an error."""

    def __init__(self, status: int, message: str | None = None, code: str | None = None) -> None:
        self.status = status
        self.code = code
        super().__init__(message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, message={self.message!r})"


class BadRequest(HTTPError):
    """The request is invalid."""


class Unauthorized(HTTPError):
    """Authentication failed: check the user name and token (password)."""


class Forbidden(HTTPError):
    """You are not allowed to do this."""


class NotFound(HTTPError):
    """Not found."""


class Conflict(HTTPError):
    """The object's state does not allow this."""


class PayloadTooLarge(HTTPError):
    """The request is too large."""


class UnprocessableEntity(HTTPError):
    """The request does not match the expected schema."""


class ServerError(HTTPError):
    """The server failed."""


_BY_STATUS: dict[int, type[HTTPError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: UnprocessableEntity,
}


def error_class(status: int) -> type[HTTPError]:
    """The exception class for an HTTP error status."""
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, HTTPError)


def from_response(response: httpx.Response) -> HTTPError:
    """Build the exception for an error response (the body must have been read)."""
    status = response.status_code
    message, code = _message_and_code(response)
    if not message:
        message = f"{status} {response.reason_phrase}".strip()
    return error_class(status)(status, message, code)


def _message_and_code(response: httpx.Response) -> tuple[str | None, str | None]:
    try:
        body: Any = response.json()
    except (ValueError, UnicodeDecodeError):
        text = response.text.strip()
        return (truncate(text) if text else None), None
    if not isinstance(body, dict):
        return truncate(json.dumps(body)), None
    code = body.get("code") if isinstance(body.get("code"), str) else None
    message = body.get("message")
    if message is None and "detail" in body:
        message = _describe_detail(body["detail"])
    if message is None:
        return truncate(json.dumps(body)), code
    return truncate(str(message)), code


def _describe_detail(detail: Any) -> str:
    """FastAPI's default validation answer: ``{"detail": [{"loc": [...], "msg": ...}]}``."""
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", []) if p not in ("body", "query"))
                msg = item.get("msg", "invalid")
                parts.append(f"{loc}: {msg}" if loc else str(msg))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(detail)


def truncate(text: str, limit: int = MAX_BODY_CHARS) -> str:
    """Cut ``text`` to ``limit`` characters, marking the cut."""
    if len(text) <= limit:
        return text
    return text[:limit] + f"... ({len(text) - limit} more characters)"
