"""The jobs pages in a real browser against a live server (fake executor): who sees
which buttons and what a hand-made post gets, another project's job, a host
name that is markup, and the jobs list updating itself while a job runs.

The tasks are made READY in the server's database directly (as a runner
would finish their builds), so these tests need no Docker engine; jobs are
launched with the ``craton`` CLI.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import update

from craton_wf.db.engine import make_engine, make_session_factory, transaction
from craton_wf.db.models import Job, JobHost
from craton_wf.settings import Settings
from tests.e2e.conftest import Server
from tests.factories import make_ready_task

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

MARKUP = "<script>alert(1)</script>"


@pytest.fixture
def database(database_url: str) -> Iterator[Any]:
    engine = make_engine(Settings(database_url=database_url))
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def finished(console_server: Server, database: Any) -> int:
    """Job 1: task ``probe`` over h1 and h2, finished."""
    server = console_server
    server.craton("cloud-create", "--name", "c")
    server.craton("region-create", "--name", "r", "--cloud", "c")
    for index, host in enumerate(("h1", "h2"), start=1):
        server.craton("host-create", "--name", host, "--ip-address", f"10.8.0.{index}",
                      "--region", "r")  # fmt: skip
    with transaction(database) as session:
        make_ready_task(session, server.env["OS_PROJECT_ID"], "probe")
    job = server.json("job-create", "--task", "probe", "--host", "h1", "h2", "--wait")
    return int(job["id"])  # type: ignore[index]


def user_token(server: Server, name: str, role: str) -> str:
    server.craton("user-create", "--name", name, "--role", role)
    return str(server.json("token-create", "--user", name, "--name", "browser")["token"])  # type: ignore[index]


def test_a_viewer_sees_no_buttons_and_a_post_with_its_csrf_token_is_refused(
    console_server: Server, open_console: Any, finished: int
) -> None:
    page, refused = open_console(console_server, user_token(console_server, "vic", "viewer"))
    page.goto(f"{console_server.url}/ui/jobs/{finished}")
    assert page.locator("#job-status").inner_text() == "SUCCEEDED"
    assert page.locator("#job-actions button").count() == 0
    assert page.locator("#job-grid a.run").count() == 0  # logs need the auditor role
    for action in ("cancel", "retry"):
        status = page.evaluate(
            "url => window.craton.post(url, {failed_hosts: 'false'}).then(r => r.status)",
            f"/ui/jobs/{finished}/{action}",
        )
        assert status == 403, action
    jobs = console_server.json("job-list")
    assert [job["id"] for job in jobs] == [finished]  # type: ignore[index]
    # The same posts by root go through: the page's own forms work.
    root, _ = open_console(console_server)
    root.goto(f"{console_server.url}/ui/jobs/{finished}")
    root.click("#retry")
    root.wait_for_url("**/ui/jobs/2?notice=**")
    assert refused == []


def test_another_projects_job_is_not_found(
    console_server: Server, browser: Any, finished: int
) -> None:
    from tests.browser.conftest import sign_in
    from tests.browser.support import confined_page

    console_server.craton("project-create", "--name", "elsewhere")
    page, refused = confined_page(browser, console_server.url)
    sign_in(page, console_server, console_server.env["OS_PASSWORD"], project="elsewhere")
    answer = page.goto(f"{console_server.url}/ui/jobs/{finished}")
    assert answer.status == 404
    assert "job" in page.locator(".error").inner_text()
    assert page.locator("#jobs tbody tr").count() == 0 or "No jobs" in page.content()
    page.goto(f"{console_server.url}/ui/jobs")
    assert page.locator(f'#jobs tr[data-job="{finished}"]').count() == 0
    page.context.close()
    assert refused == []


def test_a_host_name_that_is_markup_is_shown_as_text(
    console_server: Server, open_console: Any, finished: int, database: Any
) -> None:
    # Names are checked when hosts are made; one stored otherwise is still text.
    with transaction(database) as session:
        session.execute(update(JobHost).where(JobHost.host_name == "h2").values(host_name=MARKUP))
    page, refused = open_console(console_server)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{console_server.url}/ui/jobs/{finished}")
    names = page.locator("#job-grid th.host .name").all_inner_texts()
    assert names == ["h1", MARKUP]
    page.locator("#job-grid a.run").last.click()
    page.wait_for_function(
        "() => document.getElementById('log-title').textContent.includes('alert')"
    )
    assert MARKUP in page.locator("#log-title").inner_text()
    page.wait_for_timeout(300)
    assert dialogs == []
    assert page.evaluate("() => document.querySelectorAll('main script').length") == 0
    assert refused == []


def test_the_jobs_list_updates_itself_while_a_job_runs(
    console_server: Server, open_console: Any, finished: int, database: Any
) -> None:
    # The fake executor finishes a job at once: the job is shown running by setting
    # its row back, then finished again as a runner would, while the page is open.
    def set_status(status: str) -> None:
        with transaction(database) as session:
            session.execute(update(Job).where(Job.id == finished).values(status=status))

    page, refused = open_console(console_server)
    assert page.locator("#jobs").get_attribute("data-live") == "false"
    set_status("RUNNING")
    page.reload()
    assert page.locator("#jobs").get_attribute("data-live") == "true"
    row = page.locator(f'#jobs tr[data-job="{finished}"]')
    assert row.get_attribute("data-final") == "false"
    page.evaluate("() => { window.notReloaded = true; }")
    set_status("SUCCEEDED")
    deadline = time.monotonic() + 30
    while row.get_attribute("data-final") != "true":
        assert time.monotonic() < deadline, "the row did not update"
        time.sleep(0.2)
    assert "SUCCEEDED" in row.inner_text()
    assert page.evaluate("() => window.notReloaded") is True
    assert refused == []
