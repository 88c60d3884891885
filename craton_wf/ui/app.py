"""Mounting the console on the API's application.

``/`` redirects to ``/ui/``; the pages' routers, the static assets (from the
package: no CDN, no build step) and the console's error page are installed
here. Every console answer carries headers that keep it in its own origin: a
Content-Security-Policy that allows only the console's own scripts and styles
(no inline script, so an injected ``<script>`` would not run even if it got
through escaping), no framing, no MIME sniffing, no referrer to elsewhere.

Errors of a console page (a 403, a 404 of another project's job) are shown as
a page with the same status and message the API would answer; a page asked
for without a session (401) redirects to the sign-in page, which comes back to
the page afterwards. Streams and ``fetch`` calls of the console (``Accept``
not HTML) get the API's JSON errors.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from craton_wf.api.deps import reject_repeated_query
from craton_wf.api.write_slots import write_slot
from craton_wf.ui import PREFIX
from craton_wf.ui.render import HERE, page
from craton_wf.ui.routes import (
    audit,
    inventory,
    job_logs,
    job_page,
    jobs,
    launch,
    runners,
    session,
    tasks,
    workflows,
)

SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class ConsoleHeaders:
    """Adds :data:`SECURITY_HEADERS` to every answer under ``/ui/``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def wants_page(request: Request) -> bool:
    """A console page, asked for by a browser (not a stream or a script's ``fetch``)."""
    return request.url.path.startswith(PREFIX + "/") and "text/html" in request.headers.get(
        "accept", ""
    )


def error_page(request: Request, status: int, message: str) -> Response | None:
    """The console's answer to an error of one of its pages; None for everything else."""
    if not wants_page(request):
        return None
    if status == 401 and request.method == "GET":
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{PREFIX}/sign-in?next={quote(here, safe='')}", status_code=303)
    if status == 401:
        return page(request, "sign_in.html", None, status_code=401, error=message, next="")
    return page(request, "error.html", None, status_code=status, status=status, message=message)


def install_console(app: FastAPI) -> None:
    app.state.error_page = error_page
    app.add_middleware(ConsoleHeaders)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="console-static")
    for module in (
        session,
        jobs,
        job_page,
        job_logs,
        tasks,
        workflows,
        launch,
        inventory,
        runners,
        audit,
    ):
        app.include_router(
            module.router,
            include_in_schema=False,
            dependencies=[Depends(write_slot), Depends(reject_repeated_query)],
        )

    @app.get("/", include_in_schema=False)
    async def _root() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    @app.get(PREFIX, include_in_schema=False)
    async def _console() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=307)
