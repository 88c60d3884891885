"""Every console route, held to the rules a hand-made request meets.

The API's matrix (tests/unit/test_authorization_matrix.py) calls every API
route as every role; the console's routes sign in by cookie, so they are held
here: without a session, a page redirects to the sign-in page and anything
else is refused with 401; with a session, a state-changing form without its
CSRF token is refused with 403 before it does anything. A console route added
later is covered without being listed.
"""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from craton_wf.api.app import create_app
from tests.ui.conftest import HTML, Browser

OPEN = {"/", "/ui", "/ui/", "/ui/sign-in"}  # they lead to, or are, the sign-in page


def console_routes(settings, sessions) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    app = create_app(settings, sessions)
    return sorted(
        (method, str(route.path))
        for route in iter_route_contexts(app.routes)
        if isinstance(route.original_route, APIRoute) and str(route.path).startswith("/ui")
        for method in route.methods or ()
        if method != "HEAD"
    )


def filled(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_the_console_has_routes_to_hold(settings, sessions) -> None:  # type: ignore[no-untyped-def]
    routes = console_routes(settings, sessions)
    assert len(routes) > 15
    assert ("POST", "/ui/sign-out") in routes


def test_without_a_session_pages_lead_to_sign_in_and_the_rest_is_refused(
    settings, sessions, console
) -> None:  # type: ignore[no-untyped-def]
    for method, path in console_routes(settings, sessions):
        if path in OPEN:
            continue
        url = filled(path)
        page = console.request(method, url, headers=HTML, follow_redirects=False)
        if method == "GET":
            assert page.status_code == 303, f"{method} {url}: {page.status_code}"
            assert page.headers["location"].startswith("/ui/sign-in?next="), url
        else:
            assert page.status_code == 401, f"{method} {url}: {page.status_code}"
        script = console.request(
            method, url, headers={"Accept": "application/json"}, follow_redirects=False
        )
        assert script.status_code == 401, f"{method} {url} from a script: {script.status_code}"
        assert script.json()["code"] == "authentication_failed"


@pytest.mark.parametrize("csrf", [None, "forged-token-of-the-right-length-0123456789ab"])
def test_no_form_acts_without_its_csrf_token(
    settings, sessions, signed_in: Browser, csrf: str | None
) -> None:  # type: ignore[no-untyped-def]
    posts = [p for m, p in console_routes(settings, sessions) if m == "POST" and p not in OPEN]
    assert posts
    for path in posts:
        answer = signed_in.post(filled(path), {"reason": "x"}, csrf=csrf)
        assert answer.status_code == 403, f"POST {path}: {answer.status_code} {answer.text[:200]}"
        assert "CSRF" in answer.text
