"""A task's page in a real browser against a live ``craton-wf serve``: the build's
author (an admin) has no approve button and a post of their own is refused with the
service's message; a second admin approves the digest the page shows; an operator
sees no decision at all; a build's log arrives line by line while it builds. The
screenshot of a task's page in ``docs/console/`` is taken here."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy.orm import Session

from craton_wf.db.engine import make_engine, make_session_factory, transaction
from craton_wf.db.models import Build, BuildLog
from craton_wf.engine import builds as build_service
from craton_wf.engine.leases import take_lease
from craton_wf.services import tasks as task_service
from craton_wf.services.inputs import TaskCreate
from craton_wf.settings import Settings
from tests.browser.support import screenshot
from tests.e2e.conftest import Server
from tests.factories import finish_current_build

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

T = TypeVar("T")
DIGEST = "sha256:5f1d0c6a" + "3" * 56
BUILD_LOG = [
    "Cloning https://git.example.internal/ops/patch-host.git at 4be1f2a",
    "Step 1/3 : FROM craton/python:3",
    "Step 2/3 : COPY patch.py /craton/patch.py",
    'Step 3/3 : CMD ["python3", "/craton/patch.py"]',
    "Successfully built 9d1c0e7f3b2a",
    "Pushed registry.internal:5000/craton/patch-host@" + DIGEST,
]


def person(server: Server, name: str, role: str) -> dict[str, Any]:
    headers = {
        "X-Auth-Project": server.env["OS_PROJECT_ID"],
        "X-Auth-User": server.env["OS_USERNAME"],
        "X-Auth-Token": server.env["OS_PASSWORD"],
    }
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        user = client.post("/v1/users", json={"name": name, "role": role})
        assert user.status_code == 201, user.text
        token = client.post("/v1/tokens", json={"user": name, "name": "console"}).json()["token"]
    return {"id": user.json()["id"], "token": token}


def in_database(server: Server, work: Callable[[Session], T]) -> T:
    """``work`` in a transaction on the live server's database."""
    engine = make_engine(Settings(database_url=server.env["CRATON_WF_DATABASE_URL"]))
    try:
        with transaction(make_session_factory(engine)) as session:
            return work(session)
    finally:
        engine.dispose()


def new_task(session: Session, server: Server, author_id: int | None) -> Any:
    return task_service.create_task(
        session,
        server.env["OS_PROJECT_ID"],
        author_id,
        TaskCreate(
            name="patch-host",
            location="https://git.example.internal/ops/patch-host.git",
            command=["python3", "/craton/patch.py"],
            description="Apply the pending kernel and package updates",
            restricted_to=["operator"],
        ),
        None,
        1024,
    )


def authored_task(server: Server, author_id: int) -> int:
    """A task whose build ``author_id`` asked for, READY (finished in the same transaction,
    so the server's runner never picks it up), with its build log, not approved."""

    def make(session: Session) -> int:
        task = new_task(session, server, author_id)
        build = finish_current_build(session, task.id, DIGEST)
        for seq, line in enumerate(BUILD_LOG, start=1):
            session.add(BuildLog(build_id=build.id, seq=seq, ts=datetime.now(UTC), line=line))
        return int(task.id)

    return in_database(server, make)


def test_a_second_admin_approves_and_the_author_is_refused(
    console_server: Server, open_console: Any
) -> None:
    author = person(console_server, "alice", "admin")
    operator = person(console_server, "olga", "operator")  # may see it, not decide
    task_id = authored_task(console_server, author["id"])
    url = f"{console_server.url}/ui/tasks/{task_id}"

    page, refused = open_console(console_server, author["token"])
    page.goto(url)
    row = page.locator('#builds tr[data-build="1"]')
    assert row.locator("button[name=approve]").count() == 0
    assert "another admin must approve it" in row.locator(".why-not").inner_text()
    # A post made by hand (the page's own script helper) is refused with the reason.
    answer = page.evaluate(
        """async (digest) => {
            const r = await window.craton.post(location.pathname + "/approve",
                                               {build: "1", digest: digest});
            return {status: r.status, body: await r.json()};
        }""",
        DIGEST,
    )
    assert answer["status"] == 403
    assert "you asked for build 1 of task patch-host" in answer["body"]["message"]

    watcher, _ = open_console(console_server, operator["token"])
    watcher.goto(url)
    assert watcher.locator("#builds button").count() == 0
    assert watcher.locator("#approval-state").inner_text() == "pending"

    approver, refused_too = open_console(console_server)  # root: another admin
    approver.set_viewport_size({"width": 1400, "height": 900})
    approver.goto(url)
    assert approver.locator("#build-log .line").count() == len(BUILD_LOG)
    approver.locator('#builds tr[data-build="1"] button[name=approve]').click()
    approver.wait_for_url(f"**/ui/tasks/{task_id}?build=*&notice=*")
    assert approver.locator(".notice").inner_text() == "build 1: approved"
    assert approver.locator("#approval-state").inner_text() == "approved"
    row = approver.locator('#builds tr[data-build="1"]')
    assert "approved" in row.inner_text() and "by root" in row.inner_text()
    assert row.locator("button[name=revoke]").count() == 1
    screenshot(approver, "task.png")

    page.reload()  # the author now sees the approval, and may only revoke it
    assert page.locator("#approval-state").inner_text() == "approved"
    assert refused == [] and refused_too == []


def test_a_builds_log_arrives_live_while_it_builds(
    console_server: Server, open_console: Any
) -> None:
    """The build is held under a lease of the test's own (as a builder holds it), so the
    server's runner leaves it alone; its lines are written as a builder writes them."""

    def start(session: Session) -> tuple[int, int, int]:
        task = new_task(session, console_server, None)
        build = session.get(Build, task.current_build_id)
        build.status = "BUILDING"
        epoch = take_lease(session, build, "test-builder", 600)
        build_service.append_build_logs(
            session, build.id, "test-builder", epoch, [(datetime.now(UTC), BUILD_LOG[0])]
        )
        return int(task.id), int(build.id), epoch

    task_id, build_id, epoch = in_database(console_server, start)
    page, refused = open_console(console_server)
    page.goto(f"{console_server.url}/ui/tasks/{task_id}")
    assert page.locator("#build-log[data-stream]").count() == 1
    assert page.locator("#build-log .line").count() == 1

    def write(lines: list[str], finish: bool = False) -> None:
        def work(session: Session) -> None:
            stamped = [(datetime.now(UTC), line) for line in lines]
            build_service.append_build_logs(session, build_id, "test-builder", epoch, stamped)
            if finish:
                build_service.finish_build(
                    session, build_id, "test-builder", epoch, image="patch:1", digest=DIGEST
                )

        in_database(console_server, work)

    write(BUILD_LOG[1:3])
    page.wait_for_function("() => document.querySelectorAll('#build-log .line').length === 3")
    write(BUILD_LOG[3:], finish=True)
    page.wait_for_selector("#build-log[data-ended]")
    lines = page.locator("#build-log .line").all_inner_texts()
    assert lines == BUILD_LOG  # each once, in order
    assert page.locator("#build-state").inner_text() == "READY"
    assert refused == []
