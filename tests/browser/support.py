"""A real browser for the tests: Debian's Chromium driven by playwright (no download),
confined to the server under test: every request to another host is refused and
kept, so a test can assert that a page loads nothing from elsewhere."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = next(
    (p for p in (shutil.which("chromium"), "/usr/bin/chromium") if p and Path(p).exists()), None
)


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium; the test is skipped without playwright or Chromium."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (test extra)")
    if CHROMIUM is None:
        pytest.skip("needs Chromium (Debian's chromium package)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield browser
        finally:
            browser.close()


def confined_page(browser: Any, base_url: str, **context: Any) -> tuple[Any, list[str]]:
    """A new page (in a context of its own: its own cookies) that reaches only ``base_url``;
    the requests it tried elsewhere are in the list, refused."""
    refused: list[str] = []

    def only_the_server(route: Any) -> None:
        url = route.request.url
        if url.startswith(base_url) or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            refused.append(url)
            route.abort()

    context.setdefault("viewport", {"width": 1400, "height": 1000})
    page = browser.new_context(**context).new_page()
    page.route("**/*", only_the_server)
    return page, refused


DOCS = Path(__file__).resolve().parents[2] / "docs" / "console"
UPDATE_SCREENSHOTS = "CRATON_WF_UPDATE_SCREENSHOTS"


def screenshot(page: Any, name: str, **options: Any) -> Path:
    """A screenshot of ``page``: into ``docs/console/`` when ``CRATON_WF_UPDATE_SCREENSHOTS``
    is set (``scripts/console-screenshots``), else beside the test's other temporary files,
    so that a test run leaves the checkout as it was."""
    folder = DOCS if os.environ.get(UPDATE_SCREENSHOTS) else Path(tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    page.screenshot(path=str(path), **options)
    return path
