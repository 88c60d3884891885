"""Running an async transport (``httpx.ASGITransport``) under the sync client.

The client is synchronous, and httpx's ``ASGITransport`` only speaks async.
So that tests can still hand the client the server's app in-process —
``Client(url, transport=httpx.ASGITransport(app))`` — an async transport is
wrapped in :class:`SyncTransport`, which runs it on an event loop in a helper
thread (an anyio blocking portal, as Starlette's ``TestClient`` does). One
loop serves every request of the client, so the app sees one loop for its
whole life.

A limitation worth knowing: ``ASGITransport`` hands back a response only once
the app has finished it, so a ``follow`` stream arrives all at once when the
build or job is over instead of line by line.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import httpx


class SyncTransport(httpx.BaseTransport):
    """A sync transport driving an ``httpx.AsyncBaseTransport``."""

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self._transport = transport
        self._portal_cm: AbstractContextManager[Any] | None = None
        self._portal: Any = None

    def _get_portal(self) -> Any:
        if self._portal is None:
            from anyio.from_thread import start_blocking_portal  # anyio comes with httpx

            self._portal_cm = start_blocking_portal()
            self._portal = self._portal_cm.__enter__()
        return self._portal

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._get_portal().call(self._send, request)

    async def _send(self, request: httpx.Request) -> httpx.Response:
        response = await self._transport.handle_async_request(request)
        try:
            # Raw bytes, not decoded ones: the client decodes per the headers it gets.
            body = b"".join([chunk async for chunk in response.aiter_raw()])
        finally:
            await response.aclose()
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            content=body,
            extensions=response.extensions,
        )

    def close(self) -> None:
        if self._portal is None or self._portal_cm is None:
            return
        try:
            self._portal.call(self._transport.aclose)
        finally:
            self._portal_cm.__exit__(None, None, None)
            self._portal = self._portal_cm = None
