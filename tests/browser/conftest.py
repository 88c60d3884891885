"""The web console in a real browser against a live ``craton-wf serve``.

``console_server`` runs the embedded default (API and one runner) with the
fake executor unless a test asks for Docker (``docker_console_server``);
``browser`` is one Chromium per module; ``open_console`` gives a new page of
its own (own cookies), signed in with a token, confined to the server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.support import chromium, confined_page
from tests.e2e.conftest import Server, start_server, stop

pytestmark = [pytest.mark.e2e]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def console_server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    running = start_server(database_url, tmp_path, embedded=True, executor="fake")
    yield running
    stop(running.processes)


def sign_in(page: Any, server: Server, token: str, project: str = "") -> None:
    page.goto(f"{server.url}/ui/")
    page.wait_for_url("**/ui/sign-in**")
    page.fill("input[name=token]", token)
    if project:
        page.fill("input[name=project]", project)
    page.click("button[type=submit]")
    page.wait_for_url("**/ui/jobs**")


@pytest.fixture
def open_console(browser: Any) -> Iterator[Callable[..., tuple[Any, list[str]]]]:
    """``open_console(server, token=None)``: a new confined page, signed in with
    ``token`` (the server's bootstrap token by default)."""
    pages: list[Any] = []

    def open_page(server: Server, token: str | None = None) -> tuple[Any, list[str]]:
        page, refused = confined_page(browser, server.url)
        pages.append(page)
        sign_in(page, server, token or server.env["OS_PASSWORD"])
        return page, refused

    yield open_page
    for page in pages:
        page.context.close()
