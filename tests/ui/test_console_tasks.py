"""The console's tasks pages: the list, a task's builds and logs, and approvals under the
API's rules (admins only, never a build's author, the digest the page showed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from craton_wf.db.engine import transaction
from craton_wf.db.models import Build, BuildLog
from tests.factories import finish_current_build, make_ready_task
from tests.ui.conftest import Browser
from tests.ui.console_people import browser_as, other_project

DIGEST = "sha256:" + "1" * 64
TASK = {"name": "patch", "location": "https://example.invalid/patch.git", "command": "run it"}


@pytest.fixture
def authored(console, api) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A task created (so its build asked for) by an admin, the build READY, not approved."""
    admin, name = browser_as(console, api, "admin")
    token = api.post("/v1/tokens", json={"user": name, "name": "api"}).json()["token"]
    created = api.post(
        "/v1/tasks",
        json={**TASK, "description": "<script>alert('task')</script>"},
        headers={"Authorization": f"Bearer {token}", "X-Auth-Token": token, "X-Auth-User": name},
    )
    assert created.status_code == 201, created.text
    return {"admin": admin, "name": name, "task": created.json()}


@pytest.fixture
def ready(authored, sessions) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        build = finish_current_build(session, authored["task"]["id"], DIGEST)
        for seq, line in enumerate(["Step 1/2 : FROM base", "<b>not bold</b>", "done"], 1):
            session.add(BuildLog(build_id=build.id, seq=seq, ts=datetime.now(UTC), line=line))
        authored["build_id"] = build.id
    return authored


def approval(api, task_id: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return api.get(f"/v1/tasks/{task_id}").json()["approval"]  # type: ignore[no-any-return]


def test_the_list_shows_each_task_with_its_build_and_approval(
    signed_in: Browser, sessions, root
) -> None:  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        make_ready_task(session, root.project_id, "audit-disks")
        make_ready_task(session, root.project_id, "unapproved", approve=False)
    page = signed_in.get("/ui/tasks")
    assert page.status_code == 200
    rows = page.text.split("<tr data-task=")[1:]
    assert len(rows) == 2
    approved, pending = rows  # by name
    assert "audit-disks" in approved and "approved" in approved and "#1" in approved
    assert "READY" in approved and "sha256:000000000000" in approved
    assert "unapproved" in pending and "pending" in pending


def test_a_task_page_shows_source_command_builds_and_the_log(ready, signed_in: Browser) -> None:  # type: ignore[no-untyped-def]
    task = ready["task"]
    page = signed_in.get(f"/ui/tasks/{task['id']}")
    assert page.status_code == 200
    text = page.text
    assert "https://example.invalid/patch.git" in text and "run it" in text
    assert f"by {ready['name']}" not in text  # nobody decided yet
    build_row = text.split('<tr data-build="1"')[1].split("</tr>")[0]
    assert "READY" in build_row and DIGEST[:19] in build_row and ready["name"] in build_row
    # the log, as text: the markup in a line is escaped
    assert "Step 1/2 : FROM base" in text and "&lt;b&gt;not bold&lt;/b&gt;" in text
    assert "<b>not bold</b>" not in text
    assert "<script>alert(" not in text and "&lt;script&gt;alert(" in text
    assert "data-stream" not in text  # finished: nothing to follow


def test_a_running_build_is_followed_by_its_stream(authored, signed_in: Browser, sessions) -> None:  # type: ignore[no-untyped-def]
    task_id = authored["task"]["id"]
    with transaction(sessions) as session:
        build = session.get(Build, authored["task"]["current_build"]["id"])
        build.status = "BUILDING"
        session.add(BuildLog(build_id=build.id, seq=1, ts=datetime.now(UTC), line="cloning"))
        build_id = build.id
    page = signed_in.get(f"/ui/tasks/{task_id}")
    stream = f"/ui/tasks/{task_id}/builds/{build_id}/logs/stream?after=1"
    assert f'data-stream="{stream}"' in page.text
    with transaction(sessions) as session:
        session.add(BuildLog(build_id=build_id, seq=2, ts=datetime.now(UTC), line="building"))
        session.get(Build, build_id).status = "BUILD FAILED"
    answer = signed_in.client.get(stream, headers={"Accept": "text/event-stream"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    events = [block for block in answer.text.split("\n\n") if "event:" in block]
    assert events[0].startswith("id: 2\nevent: line\n")
    assert json.loads(events[0].split("data: ", 1)[1])["line"] == "building"
    assert "event: end" in events[-1] and "BUILD FAILED" in events[-1]
    # a reconnect resumes after the last id it got
    again = signed_in.client.get(
        stream, headers={"Accept": "text/event-stream", "Last-Event-ID": "2"}
    )
    assert "event: line" not in again.text and "event: end" in again.text


def test_the_author_sees_no_approve_button_and_is_refused(ready, api) -> None:  # type: ignore[no-untyped-def]
    admin, task_id = ready["admin"], ready["task"]["id"]
    page = admin.get(f"/ui/tasks/{task_id}").text
    assert 'name="approve"' not in page
    assert "you asked for this build: another admin must approve it" in page
    assert 'name="reject"' in page  # an author may still reject their own build
    refused = admin.post(f"/ui/tasks/{task_id}/approve", {"build": "1", "digest": DIGEST})
    assert refused.status_code == 403
    assert "another admin must approve it" in refused.text
    assert approval(api, task_id)["status"] == "pending"


def test_another_admin_approves_the_digest_shown_then_revokes(
    ready, signed_in: Browser, api
) -> None:  # type: ignore[no-untyped-def]
    task_id = ready["task"]["id"]
    page = signed_in.get(f"/ui/tasks/{task_id}").text
    assert 'name="approve"' in page and f'name="digest" value="{DIGEST}"' in page
    done = signed_in.post(f"/ui/tasks/{task_id}/approve", {"build": "1", "digest": DIGEST})
    assert done.status_code == 303
    assert done.headers["location"].startswith(f"/ui/tasks/{task_id}?build=")
    assert approval(api, task_id) | {"at": None} == {
        "status": "approved",
        "build": 1,
        "digest": DIGEST,
        "by": "root",
        "at": None,
        "reason": None,
    }
    shown = signed_in.get(done.headers["location"]).text
    assert "build 1: approved" in shown and 'name="revoke"' in shown
    revoked = signed_in.post(
        f"/ui/tasks/{task_id}/revoke", {"build": "1", "digest": DIGEST, "reason": "<i>CVE</i>"}
    )
    assert revoked.status_code == 303
    assert approval(api, task_id)["status"] == "revoked"
    assert "&lt;i&gt;CVE&lt;/i&gt;" in signed_in.get(f"/ui/tasks/{task_id}").text
    actions = [
        e["action"] for e in api.get("/v1/audit-events?object_type=task").json()["audit_events"]
    ]
    assert actions[:2] == ["task.revoke", "task.approve"]


def test_a_digest_other_than_the_builds_is_refused(ready, signed_in: Browser, api) -> None:  # type: ignore[no-untyped-def]
    task_id = ready["task"]["id"]
    other = "sha256:" + "2" * 64
    refused = signed_in.post(f"/ui/tasks/{task_id}/approve", {"build": "1", "digest": other})
    assert refused.status_code == 409 and f"not {other}" in refused.text
    bad = signed_in.post(f"/ui/tasks/{task_id}/approve", {"build": "one"})
    assert bad.status_code == 400
    assert approval(api, task_id)["status"] == "pending"


def test_a_viewer_sees_no_decisions_and_is_refused(ready, console, api) -> None:  # type: ignore[no-untyped-def]
    viewer, _ = browser_as(console, api, "viewer")
    task_id = ready["task"]["id"]
    page = viewer.get(f"/ui/tasks/{task_id}")
    assert page.status_code == 200
    for button in ('name="approve"', 'name="reject"', 'name="revoke"', "/launch"):
        assert button not in page.text
    for action in ("approve", "reject", "revoke"):
        refused = viewer.post(f"/ui/tasks/{task_id}/{action}", {"build": "1", "digest": DIGEST})
        assert refused.status_code == 403, action
        assert "needs the admin role" in refused.text
    assert approval(api, task_id)["status"] == "pending"


def test_another_projects_task_is_not_found(signed_in: Browser, api, sessions) -> None:  # type: ignore[no-untyped-def]
    project = other_project(api)
    with transaction(sessions) as session:
        task_id = make_ready_task(session, project, "theirs").id
    for path in (f"/ui/tasks/{task_id}", f"/ui/tasks/{task_id}/launch", "/ui/tasks/theirs"):
        assert signed_in.get(path).status_code == 404, path
    refused = signed_in.post(f"/ui/tasks/{task_id}/approve", {"build": "1"})
    assert refused.status_code == 404
    stream = signed_in.client.get(f"/ui/tasks/{task_id}/builds/1/logs/stream")
    assert stream.status_code == 404 and stream.json()["status"] == 404


def test_a_public_task_of_another_project_shows_without_its_history(
    signed_in: Browser, api, sessions
) -> None:  # type: ignore[no-untyped-def]
    project = other_project(api)
    with transaction(sessions) as session:
        task_id = make_ready_task(session, project, "shared-audit", public=True).id
    page = signed_in.get(f"/ui/tasks/{task_id}")
    assert page.status_code == 200
    assert "public task of another project" in page.text and 'id="builds"' not in page.text
    assert signed_in.post(f"/ui/tasks/{task_id}/approve", {"build": "1"}).status_code == 404


@pytest.mark.parametrize("query", ["build=999", "build=abc", "after=99999999999", "after=-1"])
def test_a_bad_build_or_line_is_a_page_naming_it(ready, signed_in: Browser, query: str) -> None:  # type: ignore[no-untyped-def]
    answer = signed_in.get(f"/ui/tasks/{ready['task']['id']}?{query}")
    assert 400 <= answer.status_code < 500 and "text/html" in answer.headers["content-type"]
