"""People and places for the console's object pages' tests: a user of a role signed in
to the console, and another project."""

from __future__ import annotations

import itertools

from fastapi.testclient import TestClient

from tests.ui.conftest import Browser

_numbers = itertools.count(1)


def browser_as(console: TestClient, api: TestClient, role: str) -> tuple[Browser, str]:
    """A console signed in as a new user holding ``role`` in the root's project."""
    name = f"{role}-{next(_numbers)}"
    assert api.post("/v1/users", json={"name": name, "role": role}).status_code == 201
    token = api.post("/v1/tokens", json={"user": name, "name": "console"}).json()["token"]
    browser = Browser(TestClient(console.app, base_url="http://testserver"))
    assert browser.sign_in(token).status_code == 303
    return browser, name


def other_project(api: TestClient) -> str:
    answer = api.post("/v1/projects", json={"name": f"other-{next(_numbers)}"})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])
