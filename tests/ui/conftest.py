"""The web console through the real app: a TestClient signed in the way a browser is."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from craton_wf.api.app import create_app

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]*)">')
NONCE = re.compile(r'name="sign_in_nonce" value="([^"]*)"')
HTML = {"Accept": "text/html"}


class Browser:
    """A console client: cookies kept between requests, pages asked for as a browser does."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def get(self, path: str, **kwargs):  # type: ignore[no-untyped-def]
        return self.client.get(path, headers=HTML, **kwargs)

    def sign_in(self, token: str, project: str = "", next_page: str = ""):  # type: ignore[no-untyped-def]
        form = self.get("/ui/sign-in")
        nonce = NONCE.search(form.text)
        assert nonce, form.text
        return self.client.post(
            "/ui/sign-in",
            data={
                "sign_in_nonce": nonce.group(1),
                "token": token,
                "project": project,
                "next": next_page,
            },
            headers=HTML,
            follow_redirects=False,
        )

    def csrf(self, path: str = "/ui/jobs") -> str:
        found = CSRF_META.search(self.get(path).text)
        assert found and found.group(1), "no CSRF token on the page"
        return found.group(1)

    def post(self, path: str, data: dict[str, str] | None = None, csrf: str | None = ""):  # type: ignore[no-untyped-def]
        fields = dict(data or {})
        if csrf is not None:
            fields["csrf_token"] = csrf or self.csrf()
        return self.client.post(path, data=fields, headers=HTML, follow_redirects=False)


@pytest.fixture
def console(settings, sessions) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """The app, with no credentials: each test signs in as it needs."""
    with TestClient(create_app(settings, sessions), base_url="http://testserver") as client:
        yield client


@pytest.fixture
def browser(console: TestClient) -> Browser:
    return Browser(console)


@pytest.fixture
def signed_in(browser: Browser, root) -> Browser:  # type: ignore[no-untyped-def]
    answer = browser.sign_in(root.token)
    assert answer.status_code == 303, answer.text
    return browser
