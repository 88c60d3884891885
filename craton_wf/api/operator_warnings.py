"""What an operator must not miss about how the service is configured.

Today one thing: approval turned off (``CRATON_WF_REQUIRE_APPROVAL=false``,
the single-operator mode of a lab), where jobs run builds nobody but their
author looked at. The service says so wherever an operator looks: in its log
when ``serve`` starts, in ``/readyz``'s ``warnings`` (readiness is not
affected), and in a ``X-Craton-Warning`` header on every answer of the API,
which the ``craton`` CLI prints once per command as a ``WARNING:`` line.

The header is set by ASGI middleware rather than by the routes, so it is on
every answer, errors and streams included. Header values are ASCII: the
messages are written so.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from craton_wf.settings import Settings

WARNING_HEADER = "X-Craton-Warning"

APPROVAL_OFF = (
    "approval is off (CRATON_WF_REQUIRE_APPROVAL=false): jobs run builds that no second "
    "admin approved; single-operator labs only"
)


def operator_warnings(settings: Settings) -> list[str]:
    """The warnings this configuration calls for, in a stable order; ``[]`` for none."""
    found = []
    if not settings.require_approval:
        found.append(APPROVAL_OFF)
    return found


class WarningHeaders:
    """Adds one ``X-Craton-Warning`` header per warning to every HTTP answer."""

    def __init__(self, app: ASGIApp, *, warnings: list[str]) -> None:
        self.app = app
        self.headers = [
            (WARNING_HEADER.lower().encode("latin-1"), text.encode("ascii")) for text in warnings
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.headers:
            await self.app(scope, receive, send)
            return

        async def send_with_warnings(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.headers]}
            await send(message)

        await self.app(scope, receive, send_with_warnings)
