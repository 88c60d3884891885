"""Roles, users, tokens and the audit trail through the real API.

Each role is a real user with a real token, made through the API by the
bootstrap root user; every check is a request a user of that role would make.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from craton_wf.db.engine import transaction
from craton_wf.db.models import ApiToken
from tests.factories import make_inventory, make_ready_task

ROLES = ("viewer", "auditor", "operator", "admin")
TASK = {"name": "t", "location": "https://x.invalid/t", "command": "run"}


@pytest.fixture
def client_as(api, root) -> Callable[[str], TestClient]:  # type: ignore[no-untyped-def]
    """A client acting as a new user holding ``role`` in the root's project."""
    made: dict[str, TestClient] = {}

    def make(role: str) -> TestClient:
        if role not in made:
            name = f"{role}-user"
            assert api.post("/v1/users", json={"name": name, "role": role}).status_code == 201
            token = api.post("/v1/tokens", json={"user": name, "name": "test"}).json()["token"]
            made[role] = TestClient(
                api.app,
                headers={"X-Auth-Project": root.project_id, "Authorization": f"Bearer {token}"},
            )
        return made[role]

    return make


@pytest.fixture
def world(sessions, root) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Hosts, an audit task and a remediation task (READY), and a finished-free job."""
    with transaction(sessions) as session:
        hosts = make_inventory(session, root.project_id, 2)
        make_ready_task(session, root.project_id, "audit-disks", command="true")
        fix = make_ready_task(session, root.project_id, "fix-disks", command="true")
        session.get(type(fix), fix.id).kind = "remediation"
        audit = session.execute(
            __import__("sqlalchemy").select(type(fix)).where(type(fix).name == "audit-disks")
        ).scalar_one()
        audit.kind = "audit"
        return {"hosts": [h.id for h in hosts]}


def job(client: TestClient, task: str, hosts: list[int]) -> Any:
    return client.post("/v1/jobs", json={"task": task, "hosts": hosts})


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("viewer", set()),
        ("auditor", {"audit"}),
        ("operator", {"audit", "remediation"}),
        ("admin", {"audit", "remediation"}),
    ],
)
def test_who_may_run_which_task(client_as, world, role, allowed):  # type: ignore[no-untyped-def]
    client = client_as(role)
    audit = job(client, "audit-disks", world["hosts"])
    fix = job(client, "fix-disks", world["hosts"])
    assert (audit.status_code == 201) == ("audit" in allowed), audit.text
    assert (fix.status_code == 201) == ("remediation" in allowed), fix.text
    if role == "auditor":
        assert fix.status_code == 403
        assert (
            fix.json()["message"]
            == "auditors may run only audit tasks; fix-disks is a remediation task"
        )
    if role == "viewer":
        assert audit.json()["status"] == 403 and "needs the auditor role" in audit.json()["message"]


@pytest.mark.parametrize("role", ROLES)
def test_reads_writes_cancels_and_logs_by_role(client_as, api, world, role):  # type: ignore[no-untyped-def]
    client = client_as(role)
    rank = ROLES.index(role)
    assert client.get("/v1/hosts").status_code == 200  # everyone reads
    assert client.get(f"/v1/hosts/{world['hosts'][0]}").status_code == 200
    region = api.get("/v1/regions").json()["regions"][0]["id"]
    created = client.post(
        "/v1/hosts", json={"name": f"new-{role}", "ip_address": "10.9.9.9", "region_id": region}
    )
    assert created.status_code == (201 if role == "admin" else 403), created.text
    assert client.put(f"/v1/hosts/{world['hosts'][0]}/variables", json={"a": 1}).status_code == (
        200 if role == "admin" else 403
    )
    job_id = job(api, "fix-disks", world["hosts"]).json()["id"]
    assert client.get(f"/v1/jobs/{job_id}").status_code == 200
    logs = client.get(f"/v1/jobs/{job_id}/logs")
    assert logs.status_code == (200 if rank >= ROLES.index("auditor") else 403)
    cancel = client.post(f"/v1/jobs/{job_id}/cancel")
    assert cancel.status_code == (202 if rank >= ROLES.index("operator") else 403), cancel.text
    assert client.get("/v1/audit-events").status_code == (200 if role == "admin" else 403)
    assert client.post("/v1/users", json={"name": f"x-{role}", "role": "viewer"}).status_code == (
        201 if role == "admin" else 403
    )
    assert client.post("/v1/projects", json={"name": f"p-{role}"}).status_code == 403  # root only


def test_tokens_are_shown_once_listed_and_revoked(api, client_as, sessions):  # type: ignore[no-untyped-def]
    viewer = client_as("viewer")
    issued = viewer.post("/v1/tokens", json={"name": "ci", "expires_in": 3600})
    assert issued.status_code == 201, issued.text
    body = issued.json()
    token = body["token"]
    assert token.startswith("cwf_") and body["prefix"] == token[:10]
    assert body["expires_at"] is not None and body["user"] == "viewer-user"
    with transaction(sessions) as session:
        stored = session.get(ApiToken, body["id"])
        assert stored.token_hash != token and token not in stored.token_hash  # only a hash

    listed = viewer.get("/v1/tokens").json()["tokens"]
    assert {t["id"] for t in listed} >= {body["id"]}
    assert all("token" not in t for t in listed)
    assert all(t["user"] == "viewer-user" for t in listed)  # only one's own
    assert body["id"] in {t["id"] for t in api.get("/v1/tokens").json()["tokens"]}  # admin: all

    fresh = TestClient(api.app, headers={"Authorization": f"Bearer {token}"})
    assert fresh.get("/v1/hosts").status_code == 200
    assert viewer.delete(f"/v1/tokens/{body['id']}").status_code == 204
    refused = fresh.get("/v1/hosts")
    assert refused.status_code == 401 and refused.json()["message"] == "invalid or expired token"
    assert viewer.delete("/v1/tokens/99999").status_code == 404
    assert viewer.post("/v1/tokens", json={"expires_in": 5}).status_code == 400
    # A viewer cannot issue tokens for someone else.
    assert viewer.post("/v1/tokens", json={"user": "root"}).status_code == 403


def test_users_and_roles(api, client_as):  # type: ignore[no-untyped-def]
    made = api.post("/v1/users", json={"name": "alice", "role": "operator"})
    assert made.status_code == 201 and made.headers["Location"].endswith(
        f"/v1/users/{made.json()['id']}"
    )
    assert made.json()["role"] == "operator"
    assert api.post("/v1/users", json={"name": "alice", "role": "viewer"}).status_code == 409
    assert api.post("/v1/users", json={"name": "bob", "role": "superuser"}).status_code == 422
    assert api.put("/v1/users/alice", json={"role": "auditor"}).json()["role"] == "auditor"
    names = {u["name"]: u["role"] for u in api.get("/v1/users").json()["users"]}
    assert names["alice"] == "auditor" and names["root"] == "admin"
    admin = client_as("admin")
    assert admin.put("/v1/users/admin-user", json={"role": "viewer"}).status_code == 409
    assert api.delete("/v1/users/alice").status_code == 204
    gone = api.get("/v1/users/alice").json()  # root still sees her: no role, deactivated
    assert gone["role"] is None and gone["active"] is False
    assert admin.get("/v1/users/alice").status_code == 404
    assert "alice" not in {u["name"] for u in api.get("/v1/users").json()["users"]}
    # Fields a user must not set are refused, not ignored.
    refused = api.post("/v1/users", json={"name": "eve", "role": "admin", "is_root": True})
    assert refused.status_code == 422 and "is_root" in refused.text


def test_another_projects_users_and_objects_answer_404(api, client_as, sessions, root):  # type: ignore[no-untyped-def]
    other = api.post("/v1/projects", json={"name": "other"}).json()["id"]
    other_admin = TestClient(api.app, headers={**root.headers, "X-Auth-Project": other})
    made = other_admin.post("/v1/users", json={"name": "mallory", "role": "admin"})
    assert made.status_code == 201
    token = other_admin.post("/v1/tokens", json={"user": "mallory"}).json()["token"]
    mallory = TestClient(
        api.app, headers={"Authorization": f"Bearer {token}", "X-Auth-Project": other}
    )
    host = make_host(api)
    assert mallory.get(f"/v1/hosts/{host}").status_code == 404
    assert mallory.put(f"/v1/hosts/{host}/variables", json={"x": 1}).status_code == 404
    assert mallory.get("/v1/users/root").status_code == 404
    assert mallory.get("/v1/users/viewer-user").status_code == 404
    # Her token is scoped to her project: naming ours is refused.
    crossed = TestClient(
        api.app, headers={"Authorization": f"Bearer {token}", "X-Auth-Project": root.project_id}
    )
    assert crossed.get("/v1/hosts").status_code == 401


def test_creating_a_user_never_reveals_or_attaches_another_projects_user(api, client_as, root):  # type: ignore[no-untyped-def]
    other = api.post("/v1/projects", json={"name": "elsewhere"}).json()["id"]
    other_root = TestClient(api.app, headers={**root.headers, "X-Auth-Project": other})
    bob = other_root.post("/v1/users", json={"name": "bob", "role": "operator"}).json()
    assert other_root.post("/v1/users", json={"name": "gone", "role": "viewer"}).status_code == 201
    assert other_root.delete("/v1/users/gone").status_code == 204  # no role left anywhere
    admin = client_as("admin")

    taken = admin.post("/v1/users", json={"name": "bob", "role": "admin"})
    nobody = admin.post("/v1/users", json={"name": "gone", "role": "admin"})
    assert (taken.status_code, nobody.status_code) == (409, 409)
    # The same answer whoever holds the name, and nothing of theirs in it.
    assert taken.json()["message"] == nobody.json()["message"].replace("gone", "bob")
    assert "taken" in taken.json()["message"]
    for leaked in (other, "elsewhere", str(bob["id"]), "operator"):
        assert leaked not in taken.text
    assert "bob" not in {u["name"] for u in admin.get("/v1/users").json()["users"]}
    assert admin.get("/v1/users/bob").status_code == 404
    assert api.get("/v1/users/bob").json()["role"] is None  # no role here was granted
    # One of this project's users: the conflict may say so.
    client_as("viewer")
    here = admin.post("/v1/users", json={"name": "viewer-user", "role": "viewer"})
    assert here.status_code == 409 and "already has a role in this project" in here.text

    # Root attaches an existing user to another project.
    attached = api.post("/v1/users", json={"name": "bob", "role": "viewer"})
    assert attached.status_code == 201
    assert (attached.json()["id"], attached.json()["role"]) == (bob["id"], "viewer")
    assert other_root.get("/v1/users/bob").json()["role"] == "operator"


def make_host(api: TestClient) -> int:
    cloud = api.post("/v1/clouds", json={"name": "c-404"}).json()["id"]
    region = api.post("/v1/regions", json={"name": "r-404", "cloud_id": cloud}).json()["id"]
    body = {"name": "h-404", "ip_address": "10.9.9.8", "region_id": region}
    return api.post("/v1/hosts", json=body).json()["id"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/hosts", {"name": "h", "region": "region1", "project_id": "elsewhere"}),
        (
            "/v1/tasks",
            {"name": "t", "location": "https://x.invalid/t", "command": "run", "image": "evil:1"},
        ),
        (
            "/v1/tasks",
            {"name": "t", "location": "https://x.invalid/t", "command": "run", "created_by": 1},
        ),
        ("/v1/jobs", {"task": "fix-disks", "hosts": [1], "project_id": "elsewhere"}),
        ("/v1/tokens", {"name": "t", "project_id": "elsewhere"}),
    ],
)
def test_fields_a_user_must_not_set_are_refused(api, world, path, body):  # type: ignore[no-untyped-def]
    answer = api.post(path, json=body)
    assert answer.status_code == 422, answer.text
    forbidden = next(key for key in body if key in ("project_id", "image", "created_by"))
    assert forbidden in answer.text


def test_the_audit_trail_records_who_did_what_and_how_it_ended(api, client_as, root):  # type: ignore[no-untyped-def]
    viewer = client_as("viewer")
    created = api.post("/v1/clouds", json={"name": "audited"})
    assert created.status_code == 201
    assert viewer.post("/v1/clouds", json={"name": "sneaky"}).status_code == 403
    bad = TestClient(api.app, headers={"X-Auth-User": "mallory", "X-Auth-Token": "guess"})
    assert bad.delete(f"/v1/clouds/{created.json()['id']}").status_code == 401
    api.get("/v1/clouds")  # reads are not state changes

    events = api.get("/v1/audit-events").json()["audit_events"]
    mine = [e for e in events if e["object_type"] == "cloud"]
    assert [(e["action"], e["user_name"], e["status"], e["outcome"]) for e in mine] == [
        ("cloud.delete", "mallory", 401, "failure"),
        ("cloud.create", "viewer-user", 403, "failure"),
        ("cloud.create", "root", 201, "success"),
    ]
    assert mine[2]["object_id"] == str(created.json()["id"])
    assert mine[2]["project_id"] == root.project_id and mine[2]["client"] == "testclient"
    assert all(e["method"] != "GET" for e in events)

    failures = api.get("/v1/audit-events", params={"outcome": "failure", "object_type": "cloud"})
    assert [e["status"] for e in failures.json()["audit_events"]] == [401, 403]
    by_user = api.get("/v1/audit-events", params={"user": "viewer-user", "action": "cloud.create"})
    assert len(by_user.json()["audit_events"]) == 1
    page = api.get("/v1/audit-events", params={"limit": 1})
    assert len(page.json()["audit_events"]) == 1
    assert page.json()["links"][-1]["rel"] == "next"
    assert api.get("/v1/audit-events", params={"outcome": "maybe"}).status_code == 400
