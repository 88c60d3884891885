"""Signing in to the console in a real browser, and what a signed-in page holds."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.support import confined_page
from tests.e2e.conftest import Server

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def test_sign_in_shows_the_jobs_and_sign_out_ends_it(
    console_server: Server, open_console: Any
) -> None:
    page, refused = open_console(console_server)
    assert page.locator("h1").inner_text() == "Jobs"
    assert "root" in page.locator("header .who").inner_text()
    assert console_server.env["OS_PASSWORD"] not in page.content()
    cookies = {c["name"]: c for c in page.context.cookies()}
    session_cookie = cookies["craton_session"]
    assert session_cookie["httpOnly"] and session_cookie["sameSite"] == "Strict"
    page.click("text=Sign out")
    page.wait_for_url("**/ui/sign-in")
    page.goto(f"{console_server.url}/ui/jobs")
    page.wait_for_url("**/ui/sign-in?next=**")
    assert refused == []


def test_a_wrong_token_stays_on_the_sign_in_page(console_server: Server, browser: Any) -> None:
    page, _ = confined_page(browser, console_server.url)
    page.goto(f"{console_server.url}/ui/sign-in")
    page.fill("input[name=token]", "wrong")
    page.click("button[type=submit]")
    assert "invalid or expired token" in page.locator(".error").inner_text()
    page.context.close()


def test_signing_in_comes_back_to_the_page_asked_for(console_server: Server, browser: Any) -> None:
    page, _ = confined_page(browser, console_server.url)
    page.goto(f"{console_server.url}/ui/jobs?status=FAILED")
    page.wait_for_url("**/ui/sign-in?next=**")
    page.fill("input[name=token]", console_server.env["OS_PASSWORD"])
    page.click("button[type=submit]")
    page.wait_for_url("**/ui/jobs?status=FAILED")
    page.context.close()
