"""``/docs`` and ``/redoc`` of a live ``craton-wf serve``, in a real browser with no
way out: Debian's Chromium driven by playwright, every request to another host
refused. Swagger UI lists every operation under its tag and authenticates with a
token; ReDoc renders the API's title. Skipped without playwright or Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.support import chromium, confined_page
from tests.e2e.conftest import Server, start_server, stop

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture
def docs_server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    running = start_server(database_url, tmp_path, embedded=True, executor="fake")
    yield running
    stop(running.processes)


@pytest.fixture
def browser_page(docs_server: Server) -> Iterator[tuple[Any, list[str]]]:
    """A page of a headless Chromium that reaches only the server; the other
    requests it tried, refused, are in the list."""
    with chromium() as browser:
        yield confined_page(browser, docs_server.url, viewport={"width": 1280, "height": 1600})


def test_swagger_ui_shows_every_operation_and_authenticates(
    docs_server: Server, browser_page: tuple[Any, list[str]], tmp_path: Path
) -> None:
    page, refused = browser_page
    document = httpx.get(f"{docs_server.url}/openapi.json").json()
    tags = [tag["name"] for tag in document["tags"]]
    operations = sum(len(item) for item in document["paths"].values())

    page.goto(f"{docs_server.url}/docs")
    page.locator(".opblock-tag").first.wait_for(timeout=30_000)
    shown_tags = page.locator(".opblock-tag").evaluate_all(
        "nodes => nodes.map(n => n.getAttribute('data-tag'))"
    )
    assert shown_tags == tags
    assert page.locator(".opblock").count() == operations
    page.screenshot(path=str(tmp_path / "swagger-ui.png"), full_page=False)

    # "Authorize" with the token, then "Try it out" on GET /v1/users.
    page.locator(".auth-wrapper .authorize").click()
    dialog = page.locator(".modal-ux")
    token_form = dialog.locator(".auth-container", has_text="X-Auth-Token")
    token_form.locator("input").fill(docs_server.env["OS_PASSWORD"])
    token_form.locator("button.authorize").click()
    dialog.locator("button.btn-done").first.click()
    users = page.locator("#operations-users-list_users_v1_users_get")
    users.locator(".opblock-summary").click()
    users.locator("button.try-out__btn").click()
    users.locator("button.execute").click()
    status = users.locator(".live-responses-table .response .response-col_status").first
    status.wait_for(timeout=30_000)
    assert status.inner_text().strip() == "200"
    assert '"name": "root"' in users.locator(".live-responses-table .microlight").first.inner_text()

    assert refused == []


def test_redoc_renders_the_api(
    docs_server: Server, browser_page: tuple[Any, list[str]], tmp_path: Path
) -> None:
    page, refused = browser_page
    page.goto(f"{docs_server.url}/redoc")
    title = page.locator(".api-info h1")
    title.wait_for(timeout=30_000)
    assert title.inner_text().startswith("craton-wf")
    document = httpx.get(f"{docs_server.url}/openapi.json").json()
    for tag in document["tags"]:  # the side menu: an entry per tag
        assert page.locator(f'[data-item-id="tag/{tag["name"]}"]').count() == 1, tag
    page.screenshot(path=str(tmp_path / "redoc.png"))
    assert refused == []
