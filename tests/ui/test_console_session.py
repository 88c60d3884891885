"""Signing in to the console: cookies, CSRF, the end of a session, escaping, tenancy."""

from __future__ import annotations

import pytest

from tests.ui.conftest import Browser


def test_root_and_ui_lead_to_the_console(console) -> None:  # type: ignore[no-untyped-def]
    for path in ("/", "/ui"):
        answer = console.get(path, follow_redirects=False)
        assert answer.status_code == 307
        assert answer.headers["location"] == "/ui/"


def test_pages_name_their_icon_so_a_browser_asks_for_no_missing_favicon(signed_in: Browser) -> None:
    # Without one a browser fetches /favicon.ico, a 404 logged as an error on every page.
    for path in ("/ui/sign-in", "/ui/jobs"):
        assert '<link rel="icon" href="data:,">' in signed_in.get(path).text


def test_a_page_without_a_session_redirects_to_sign_in_and_back(browser: Browser, root) -> None:  # type: ignore[no-untyped-def]
    answer = browser.get("/ui/jobs?status=FAILED", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/sign-in?next=%2Fui%2Fjobs%3Fstatus%3DFAILED"
    signed = browser.sign_in(root.token, next_page="/ui/jobs?status=FAILED")
    assert signed.status_code == 303
    assert signed.headers["location"] == "/ui/jobs?status=FAILED"


def test_sign_in_never_sends_the_browser_elsewhere(browser: Browser, root) -> None:  # type: ignore[no-untyped-def]
    for target in ("https://evil.example/", "//evil.example/ui/", "/ui/\\evil", "/v1/jobs"):
        answer = browser.sign_in(root.token, next_page=target)
        assert answer.headers["location"] == "/ui/jobs"


def test_the_session_cookie_is_http_only_strict_and_holds_no_token(browser: Browser, root) -> None:  # type: ignore[no-untyped-def]
    answer = browser.sign_in(root.token)
    cookie = next(
        value
        for name, value in answer.headers.multi_items()
        if name == "set-cookie" and value.startswith("craton_session=")
    )
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
    assert "Secure" not in cookie  # served over http here; https adds it
    assert root.token not in cookie


def test_a_wrong_token_is_refused_with_the_form_again(browser: Browser) -> None:
    answer = browser.sign_in("not-a-token")
    assert answer.status_code == 401
    assert "invalid or expired token" in answer.text
    assert browser.client.cookies.get("craton_session") is None


def test_sign_in_needs_the_form_it_was_given(browser: Browser, root) -> None:  # type: ignore[no-untyped-def]
    # Another site posting a sign-in form: no nonce cookie of this site, refused.
    answer = browser.client.post(
        "/ui/sign-in",
        data={"sign_in_nonce": "made-up", "token": root.token},
        headers={"Accept": "text/html"},
        follow_redirects=False,
    )
    assert answer.status_code == 401
    assert "expired" in answer.text


def test_no_page_embeds_the_token(signed_in: Browser, root) -> None:  # type: ignore[no-untyped-def]
    for path in ("/ui/jobs", "/ui/sign-in"):
        assert root.token not in signed_in.get(path).text


def test_a_form_without_its_csrf_token_is_refused(signed_in: Browser) -> None:
    refused = signed_in.post("/ui/sign-out", csrf=None)
    assert refused.status_code == 403
    assert "CSRF" in refused.text
    wrong = signed_in.post("/ui/sign-out", csrf="x" * 43)
    assert wrong.status_code == 403
    assert signed_in.get("/ui/jobs").status_code == 200  # still signed in


def test_signing_out_ends_the_session_on_the_server(signed_in: Browser) -> None:
    cookie = signed_in.client.cookies.get("craton_session")
    assert signed_in.post("/ui/sign-out").status_code == 303
    # The same cookie, replayed, no longer signs anyone in.
    signed_in.client.cookies.set("craton_session", cookie, path="/ui")
    answer = signed_in.get("/ui/jobs", follow_redirects=False)
    assert answer.status_code == 303 and "/ui/sign-in" in answer.headers["location"]


def test_revoking_the_token_ends_its_console_sessions(signed_in: Browser, root, api) -> None:  # type: ignore[no-untyped-def]
    assert signed_in.get("/ui/jobs").status_code == 200
    tokens = api.get("/v1/tokens").json()["tokens"]
    bootstrap = next(t for t in tokens if t["name"] == "bootstrap")
    assert api.delete(f"/v1/tokens/{bootstrap['id']}").status_code == 204
    answer = signed_in.get("/ui/jobs", follow_redirects=False)
    assert answer.status_code == 303 and "/ui/sign-in" in answer.headers["location"]


def test_console_answers_keep_to_their_origin(signed_in: Browser) -> None:
    answer = signed_in.get("/ui/jobs")
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["cache-control"] == "no-store"


def test_static_assets_are_served_from_the_package(console) -> None:  # type: ignore[no-untyped-def]
    for asset in ("console.css", "console.js"):
        answer = console.get(f"/ui/static/{asset}")
        assert answer.status_code == 200 and len(answer.content) > 100


@pytest.mark.parametrize("path", ["/ui/jobs?status=NOPE", "/ui/jobs?marker=abc"])
def test_bad_query_is_a_page_naming_it(signed_in: Browser, path: str) -> None:
    answer = signed_in.get(path)
    assert 400 <= answer.status_code < 500
    assert "text/html" in answer.headers["content-type"]


def test_sign_in_and_out_are_audited(signed_in: Browser, api) -> None:  # type: ignore[no-untyped-def]
    signed_in.post("/ui/sign-out")
    events = api.get("/v1/audit-events?limit=50").json()["audit_events"]
    answered = {(e["action"], e["status"]) for e in events}
    assert {("console.sign_in", 303), ("console.sign_out", 303)} <= answered, answered
