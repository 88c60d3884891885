"""A cap on every request body, enforced before any route reads it.

ASGI middleware rather than a dependency, so it holds for every route, for
the error handlers and for bodies FastAPI parses itself. It answers 413 with
the usual ``{"message", "status", "code"}`` body:

- at once when ``Content-Length`` says the body is over the cap (or is not
  a number);
- while the body streams in (chunked uploads name no length): the bytes are
  counted as the route reads them, and past the cap the client gets its 413
  and the route sees a disconnect, so nothing it half-read is stored.

The task uploads (multipart ``POST /v1/tasks``, ``POST /v1/tasks/{id}/builds``)
have their own, larger cap: ``upload_max_bytes`` plus room for the multipart
envelope and the spec; every other body, JSON task specs included, has
``request_max_bytes``.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from craton_wf.api.errors import error_response

UPLOAD_ENVELOPE_BYTES = 1024 * 1024
_UPLOAD_PATHS = re.compile(r"^/v1/tasks(/[0-9]+/builds)?/?$")
_BODY_READING_PATHS = re.compile(r"^/v1/tasks(/[^/]+/builds)?/?$")  # a task by id or name


def is_upload(scope: Scope) -> bool:
    """A multipart POST to an upload route (its route reads the body itself)."""
    return bool(
        scope.get("method") == "POST"
        and _UPLOAD_PATHS.match(scope.get("path", ""))
        and (_header(scope, b"content-type") or "").startswith("multipart/form-data")
    )


def reads_body_itself(scope: Scope) -> bool:
    """A POST to an upload route, JSON or multipart: its route reads the body
    (after authentication) and writes in a transaction of its own."""
    return bool(scope.get("method") == "POST" and _BODY_READING_PATHS.match(scope.get("path", "")))


class BodySizeLimit:
    def __init__(self, app: ASGIApp, *, max_bytes: int, upload_max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_max_bytes = upload_max_bytes + UPLOAD_ENVELOPE_BYTES

    def limit_for(self, scope: Scope) -> int:
        """The upload cap for a multipart POST to an upload route; else the general one."""
        return self.upload_max_bytes if is_upload(scope) else self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = _header(scope, b"content-length")
        if declared is not None and (
            not (declared.isascii() and declared.isdigit()) or int(declared) > limit
        ):
            await _refuse(send, limit, declared)
            return
        received = 0
        started = refused = False

        async def counted_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    if not started:
                        await _refuse(send, limit, None)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused and not started:
                return  # the 413 went out instead
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not refused:
                raise
            # The route stopped at the disconnect we made up; the client has its 413.


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == wanted:
            return str(value.decode("latin-1").strip().lower())
    return None


async def _refuse(send: Send, limit: int, declared: str | None) -> None:
    if declared is not None and not (declared.isascii() and declared.isdigit()):
        response = error_response(400, "the Content-Length header is not a number")
    else:
        response = error_response(413, f"the request body is over the {limit} byte limit")
    await _send_response(send, response)


async def _send_response(send: Send, response: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": response.raw_headers,
        }
    )
    await send({"type": "http.response.body", "body": response.body})
