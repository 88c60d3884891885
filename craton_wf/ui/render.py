"""The console's templates and what every page is given.

Jinja2 with autoescaping on for every template: a host named
``<script>…</script>`` is shown as text. Values the pages print (times,
durations, states) go through the filters below so that every page says them
the same way. :func:`page` renders a template with the signed-in user, their
project, the CSRF token for the page's forms and :func:`may`, which a template
asks before it shows a button (``may('POST', '/v1/jobs/{job_id}/cancel')``):
the API's own rule for that call.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import select_autoescape

from craton_wf import __version__
from craton_wf.services import policy
from craton_wf.services.console import SignedIn

HERE = Path(__file__).parent

# State → the colour class every page uses for it (console.css).
STATE_CLASSES = {
    "SUCCEEDED": "ok",
    "READY": "ok",
    "APPROVED": "ok",
    "FAILED": "bad",
    "BUILD FAILED": "bad",
    "TIMED_OUT": "bad",
    "REJECTED": "bad",
    "REVOKED": "bad",
    "CANCELLED": "off",
    "CANCELED": "off",
    "SKIPPED": "off",
    "NOT_RUNNABLE": "off",
    "RUNNING": "live",
    "BUILDING": "live",
    "STARTING": "live",
    "QUEUED": "wait",
    "PENDING": "wait",
    "BUILD PENDING": "wait",
    "PAUSED": "wait",
}


def state_class(state: str | None) -> str:
    return STATE_CLASSES.get((state or "").upper(), "wait")


def when(moment: datetime | None) -> str:
    """A time as the pages show it: UTC, to the second."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def duration(start: datetime | None, end: datetime | None = None) -> str:
    """``1h 02m``, ``3m 07s``, ``4.2s``; running ones count to now."""
    if start is None:
        return ""
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    finish = end or datetime.now(UTC)
    if finish.tzinfo is None:
        finish = finish.replace(tzinfo=UTC)
    seconds = max((finish - start) / timedelta(seconds=1), 0.0)
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s" if whole >= 60 else f"{whole}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


def as_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


@cache
def templates() -> Jinja2Templates:
    made = Jinja2Templates(directory=str(HERE / "templates"))
    made.env.autoescape = select_autoescape(default=True, default_for_string=True)
    made.env.filters.update(when=when, duration=duration, state=state_class, as_json=as_json)
    made.env.globals.update(version=__version__)
    return made


def page(
    request: Request,
    template: str,
    user: SignedIn | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """``template`` for ``user`` (None: the sign-in and error pages before sign-in)."""
    principal = user.principal if user else None

    def may(method: str, route: str) -> bool:
        return principal is not None and policy.may(principal, method, route)

    response = templates().TemplateResponse(
        request,
        template,
        {
            "user": principal,
            "csrf_token": user.csrf_token if user else "",
            "may": may,
            **context,
        },
        status_code=status_code,
    )
    # Pages hold a CSRF token and a user's data: never cached, never framed.
    response.headers["Cache-Control"] = "no-store"
    return response
