"""Approvals, task visibility, tenancy, secrets, task tokens and limits through the real API.

Users are real users with real tokens made through the API; runs go through a
runner on the fake executor, which records the container spec it was given.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

from craton_wf.db.engine import transaction
from craton_wf.db.models import ApiToken, AuditEvent, Secret
from craton_wf.executors.base import ContainerSpec
from craton_wf.executors.fake import FakeExecutor, FakeOutcome
from craton_wf.settings import DEVELOPMENT_SECRET_KEY, Settings
from tests.factories import finish_current_build, make_inventory, make_ready_task

DIGEST_1, DIGEST_2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64
GIT_TASK = {"location": "https://example.invalid/t.git", "command": "run"}


def as_user(api: TestClient, project_id: str, name: str, role: str) -> TestClient:
    """A client acting as a new user ``name`` with ``role`` in ``project_id`` (made by root)."""
    headers = httpx.Headers(api.headers)
    headers["X-Auth-Project"] = project_id
    root = TestClient(api.app, headers=headers)
    made = root.post("/v1/users", json={"name": name, "role": role})
    assert made.status_code == 201, made.text
    token = root.post("/v1/tokens", json={"user": name}).json()["token"]
    return TestClient(
        api.app, headers={"Authorization": f"Bearer {token}", "X-Auth-Project": project_id}
    )


@pytest.fixture
def users(api, root) -> Callable[[str, str], TestClient]:  # type: ignore[no-untyped-def]
    made: dict[str, TestClient] = {}

    def user(name: str, role: str) -> TestClient:
        if name not in made:
            made[name] = as_user(api, root.project_id, name, role)
        return made[name]

    return user


def hosts_of(sessions: Any, project_id: str, count: int = 2) -> list[int]:
    with transaction(sessions) as session:
        return [h.id for h in make_inventory(session, project_id, count)]


def built(sessions: Any, task_id: int, digest: str) -> None:
    with transaction(sessions) as session:
        finish_current_build(session, task_id, digest)


# --- approvals --------------------------------------------------------------------


def test_a_build_runs_only_once_another_admin_approved_its_digest(api, users, sessions, root):
    author, approver = users("author", "admin"), users("approver", "admin")
    hosts = hosts_of(sessions, root.project_id)
    task = author.post("/v1/tasks", json={"name": "patch", **GIT_TASK}).json()
    built(sessions, task["id"], DIGEST_1)
    shown = author.get(f"/v1/tasks/{task['id']}").json()["approval"]
    assert shown == {
        "status": "pending",
        "build": 1,
        "digest": DIGEST_1,
        "by": None,
        "at": None,
        "reason": None,
    }

    refused = author.post("/v1/jobs", json={"task": "patch", "hosts": hosts})
    assert refused.status_code == 409
    assert "build 1 of task patch" in refused.json()["message"]
    assert "not approved" in refused.json()["message"]
    mine = author.post(f"/v1/tasks/{task['id']}/approve")
    assert mine.status_code == 403 and "another admin must approve it" in mine.json()["message"]
    operator = users("op", "operator")
    assert operator.post(f"/v1/tasks/{task['id']}/approve").status_code == 403
    wrong = approver.post(f"/v1/tasks/{task['id']}/approve", json={"digest": DIGEST_2})
    assert wrong.status_code == 409 and DIGEST_1 in wrong.json()["message"]

    approved = approver.post(
        f"/v1/tasks/{task['id']}/approve", json={"digest": DIGEST_1, "reason": "reviewed"}
    )
    assert approved.status_code == 200, approved.text
    state = approved.json()["approval"]
    assert (state["status"], state["by"], state["digest"], state["reason"]) == (
        "approved",
        "approver",
        DIGEST_1,
        "reviewed",
    )
    job = author.post("/v1/jobs", json={"task": "patch", "hosts": hosts})
    assert job.status_code == 201, job.text
    assert job.json()["steps"][0]["digest"] == DIGEST_1  # the job pins the approved digest

    # A new build (a new commit) is a new digest: it needs its own approval.
    assert author.post(f"/v1/tasks/{task['id']}/builds", json={}).status_code == 201
    built(sessions, task["id"], DIGEST_2)
    assert author.get(f"/v1/tasks/{task['id']}").json()["approval"]["status"] == "pending"
    again = author.post("/v1/jobs", json={"task": "patch", "hosts": hosts})
    assert again.status_code == 409 and "build 2 of task patch" in again.json()["message"]

    # Rejected, then approved and revoked: each decision is recorded, the newest holds.
    rejected = approver.post(f"/v1/tasks/{task['id']}/reject", json={"reason": "curl | sh"})
    assert rejected.json()["approval"]["status"] == "rejected"
    assert author.post("/v1/jobs", json={"task": "patch", "hosts": hosts}).status_code == 409
    assert approver.post(f"/v1/tasks/{task['id']}/approve").status_code == 200
    second_job = author.post("/v1/jobs", json={"task": "patch", "hosts": hosts})
    assert second_job.status_code == 201 and second_job.json()["steps"][0]["digest"] == DIGEST_2
    revoked = approver.post(f"/v1/tasks/{task['id']}/revoke", json={"reason": "CVE"})
    assert revoked.json()["approval"]["status"] == "revoked"
    last = author.post("/v1/jobs", json={"task": "patch", "hosts": hosts})
    assert last.status_code == 409 and "revoked" in last.json()["message"]
    # Retrying a job of the revoked build is refused too; of the approved one, not.
    for made, status in ((second_job, 409), (job, 201)):
        api.post(f"/v1/jobs/{made.json()['id']}/cancel")
        assert api.post(f"/v1/jobs/{made.json()['id']}/retry").status_code == status

    decisions = [
        (e["action"], e["user_name"], e["outcome"])
        for e in api.get("/v1/audit-events", params={"object_type": "task"}).json()["audit_events"]
        if e["action"] in ("task.approve", "task.reject", "task.revoke")
    ]
    assert decisions[0] == ("task.revoke", "approver", "success")
    assert ("task.reject", "approver", "success") in decisions
    assert ("task.approve", "author", "failure") in decisions  # the refused self-approval
    assert ("task.approve", "op", "failure") in decisions


def test_a_decision_holds_for_its_digest_whichever_build_has_it(api, users, sessions, root):
    """An unchanged rebuild reuses the image: same digest, same decisions about it."""
    author, approver = users("author2", "admin"), users("approver2", "admin")
    hosts = hosts_of(sessions, root.project_id)
    task = author.post("/v1/tasks", json={"name": "steady", **GIT_TASK}).json()
    built(sessions, task["id"], DIGEST_1)
    assert approver.post(f"/v1/tasks/{task['id']}/approve").status_code == 200

    # Build 2 has build 1's digest: it is approved, and a job runs it.
    assert author.post(f"/v1/tasks/{task['id']}/builds", json={}).status_code == 201
    built(sessions, task["id"], DIGEST_1)
    shown = author.get(f"/v1/tasks/{task['id']}").json()["approval"]
    assert (shown["status"], shown["build"], shown["by"]) == ("approved", 2, "approver2")
    job = author.post("/v1/jobs", json={"task": "steady", "hosts": hosts})
    assert job.status_code == 201, job.text

    # Revoked on build 2, the digest is revoked on every build that has it.
    assert approver.post(f"/v1/tasks/{task['id']}/revoke").status_code == 200
    assert author.post(f"/v1/tasks/{task['id']}/builds", json={}).status_code == 201
    built(sessions, task["id"], DIGEST_1)
    assert author.get(f"/v1/tasks/{task['id']}").json()["approval"]["status"] == "revoked"
    refused = author.post("/v1/jobs", json={"task": "steady", "hosts": hosts})
    assert refused.status_code == 409 and "revoked" in refused.json()["message"]

    # Whoever changed what the digest runs may not approve it on a later build either.
    changed = approver.put(f"/v1/tasks/{task['id']}", json={"command": "other"})
    assert changed.status_code == 200, changed.text
    assert author.post(f"/v1/tasks/{task['id']}/builds", json={}).status_code == 201
    built(sessions, task["id"], DIGEST_1)
    mine = approver.post(f"/v1/tasks/{task['id']}/approve")
    assert mine.status_code == 403, mine.text


def test_a_public_task_needs_roots_approval_and_runs_in_other_projects_on_their_hosts(
    api, users, sessions, root
):
    author, approver = users("author", "admin"), users("approver", "admin")
    ours = hosts_of(sessions, root.project_id, 1)
    task = author.post("/v1/tasks", json={"name": "audit-ssh", "public": True, **GIT_TASK})
    task_id = task.json()["id"]
    built(sessions, task_id, DIGEST_1)
    refused = approver.post(f"/v1/tasks/{task_id}/approve")
    assert refused.status_code == 403 and "only a root user" in refused.json()["message"]

    other = api.post("/v1/projects", json={"name": "tenant-b"}).json()["id"]
    theirs = hosts_of(sessions, other, 1)
    b_operator = as_user(api, other, "b-op", "operator")
    assert b_operator.get(f"/v1/tasks/{task_id}").json()["name"] == "audit-ssh"
    assert "audit-ssh" in {t["name"] for t in b_operator.get("/v1/tasks").json()["tasks"]}
    unapproved = b_operator.post("/v1/jobs", json={"task": "audit-ssh", "hosts": theirs})
    assert unapproved.status_code == 409

    assert api.post(f"/v1/tasks/{task_id}/approve").status_code == 200  # root
    job = b_operator.post("/v1/jobs", json={"task": "audit-ssh", "hosts": theirs})
    assert job.status_code == 201, job.text
    assert job.json()["project_id"] == other
    # Its own inventory only, whatever the task's origin.
    foreign = b_operator.post("/v1/jobs", json={"task": task_id, "hosts": ours})
    assert foreign.status_code == 404
    # Another project may run it but not change, rebuild or approve it.
    b_admin = as_user(api, other, "b-admin", "admin")
    assert b_admin.put(f"/v1/tasks/{task_id}", json={"command": "rm -rf /"}).status_code == 404
    assert b_admin.post(f"/v1/tasks/{task_id}/builds", json={}).status_code == 404
    assert b_admin.post(f"/v1/tasks/{task_id}/approve").status_code == 404
    # A private task of ours stays invisible to them.
    with transaction(sessions) as session:
        private = make_ready_task(session, root.project_id, "private-fix").id
    assert b_operator.get(f"/v1/tasks/{private}").status_code == 404
    assert b_operator.post("/v1/jobs", json={"task": private, "hosts": theirs}).status_code == 404


def test_a_root_user_can_make_another_root_user_an_admin_cannot(api, users):
    admin = users("admin-1", "admin")
    assert admin.post("/v1/users", json={"name": "r2", "role": "root"}).status_code == 403
    made = api.post("/v1/users", json={"name": "r2", "role": "root"})
    assert made.status_code == 201 and made.json()["is_root"] is True


def test_restricted_tasks_are_seen_and_run_only_by_their_roles(api, users, sessions, root):
    hosts = hosts_of(sessions, root.project_id)
    with transaction(sessions) as session:
        task = make_ready_task(session, root.project_id, "drain", restricted_to=["operator"])
        make_ready_task(session, root.project_id, "look", kind="audit")
        task_id = task.id
    operator, auditor = users("op", "operator"), users("aud", "auditor")
    viewer = users("view", "viewer")
    assert operator.get(f"/v1/tasks/{task_id}").status_code == 200
    assert auditor.get(f"/v1/tasks/{task_id}").status_code == 404
    assert viewer.get(f"/v1/tasks/{task_id}").status_code == 404
    assert {t["name"] for t in auditor.get("/v1/tasks").json()["tasks"]} == {"look"}
    assert {t["name"] for t in api.get("/v1/tasks").json()["tasks"]} == {"drain", "look"}
    assert auditor.post("/v1/jobs", json={"task": "drain", "hosts": hosts}).status_code == 404
    assert operator.post("/v1/jobs", json={"task": "drain", "hosts": hosts}).status_code == 201
    assert auditor.post("/v1/jobs", json={"task": "look", "hosts": hosts}).status_code == 201
    bad = api.post("/v1/tasks", json={"name": "x", "restricted_to": ["wizard"], **GIT_TASK})
    assert bad.status_code == 422


# --- tenancy ----------------------------------------------------------------------


def test_every_object_of_another_project_answers_404(api, sessions, root):
    """Project B's admin probes each of project A's objects, nested routes included."""
    hosts = hosts_of(sessions, root.project_id, 1)
    with transaction(sessions) as session:
        task_id = make_ready_task(session, root.project_id, "t").id
    ids = {
        "cloud": api.get("/v1/clouds").json()["clouds"][0]["id"],
        "region": api.get("/v1/regions").json()["regions"][0]["id"],
        "cell": api.get("/v1/cells").json()["cells"][0]["id"],
        "host": hosts[0],
    }
    workflow = api.post("/v1/workflows", json={"name": "wf", "steps": ["t"]}).json()["id"]
    job = api.post("/v1/jobs", json={"task": "t", "hosts": hosts}).json()["id"]
    build = api.get(f"/v1/tasks/{task_id}/builds").json()["builds"][0]["id"]
    secret = api.post("/v1/secrets", json={"name": "PW", "value": "hunter22"}).json()["id"]
    token = api.post("/v1/tokens", json={"name": "ours"}).json()["id"]

    other = api.post("/v1/projects", json={"name": "tenant-b"}).json()["id"]
    mallory = as_user(api, other, "mallory", "admin")
    reads = [
        f"/v1/clouds/{ids['cloud']}",
        f"/v1/regions/{ids['region']}",
        f"/v1/cells/{ids['cell']}",
        f"/v1/hosts/{ids['host']}",
        f"/v1/hosts/{ids['host']}/labels",
        f"/v1/hosts/{ids['host']}/variables",
        f"/v1/regions/{ids['region']}/variables",
        f"/v1/projects/{root.project_id}",
        f"/v1/tasks/{task_id}",
        f"/v1/tasks/{task_id}/builds",
        f"/v1/tasks/{task_id}/builds/{build}",
        f"/v1/tasks/{task_id}/builds/{build}/logs",
        f"/v1/workflows/{workflow}",
        f"/v1/workflows/{workflow}/versions",
        f"/v1/jobs/{job}",
        f"/v1/jobs/{job}/hosts",
        f"/v1/jobs/{job}/runs",
        f"/v1/jobs/{job}/events",
        f"/v1/jobs/{job}/logs",
        f"/v1/secrets/{secret}",
        "/v1/users/root",
    ]
    for path in reads:
        answer = mallory.get(path)
        assert answer.status_code == 404, (path, answer.status_code, answer.text)
    writes = [
        ("put", f"/v1/clouds/{ids['cloud']}", {"name": "x"}),
        ("delete", f"/v1/clouds/{ids['cloud']}", None),
        ("put", f"/v1/hosts/{ids['host']}", {"name": "x"}),
        ("delete", f"/v1/hosts/{ids['host']}", None),
        ("put", f"/v1/hosts/{ids['host']}/labels", {"labels": ["x"]}),
        ("put", f"/v1/hosts/{ids['host']}/variables", {"x": 1}),
        ("put", f"/v1/tasks/{task_id}", {"command": "x"}),
        ("delete", f"/v1/tasks/{task_id}", None),
        ("post", f"/v1/tasks/{task_id}/approve", {}),
        ("put", f"/v1/workflows/{workflow}", {"steps": ["t"]}),
        ("delete", f"/v1/workflows/{workflow}", None),
        ("post", f"/v1/jobs/{job}/cancel", None),
        ("post", f"/v1/jobs/{job}/retry", None),
        ("put", f"/v1/secrets/{secret}", {"value": "pwned!"}),
        ("delete", f"/v1/secrets/{secret}", None),
        ("delete", f"/v1/tokens/{token}", None),
        ("put", "/v1/users/root", {"role": "viewer"}),
        ("delete", "/v1/users/root", None),
    ]
    for method, path, body in writes:
        kwargs = {"json": body} if body is not None else {}
        answer = mallory.request(method.upper(), path, **kwargs)
        assert answer.status_code == 404, (method, path, answer.status_code, answer.text)
    # Lists and their filters show nothing of ours.
    for path, key in [
        ("/v1/clouds", "clouds"),
        ("/v1/hosts", "hosts"),
        ("/v1/tasks", "tasks"),
        ("/v1/workflows", "workflows"),
        ("/v1/jobs", "jobs"),
        ("/v1/secrets", "secrets"),
    ]:
        assert mallory.get(path).json()[key] == [], path
    assert mallory.get("/v1/hosts", params={"region": ids["region"]}).status_code == 404
    assert mallory.get("/v1/hosts", params={"name": "host-000"}).json()["hosts"] == []
    assert mallory.post("/v1/jobs", json={"task": "t", "hosts": hosts}).status_code == 404
    assert mallory.get("/v1/ansible-inventory").json().get("all", {}).get("hosts", []) == []
    assert api.get(f"/v1/jobs/{job}").status_code == 200  # still ours


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/clouds", {"name": "c", "project_id": "elsewhere"}, "project_id"),
        ("/v1/tasks", {"name": "t", **GIT_TASK, "approval": "approved"}, "approval"),
        ("/v1/tasks", {"name": "t", **GIT_TASK, "owner": 1}, "owner"),
        ("/v1/tasks", {"name": "t", **GIT_TASK, "project_id": "x"}, "project_id"),
        ("/v1/workflows", {"name": "w", "steps": ["t"], "project_id": "x"}, "project_id"),
        ("/v1/jobs", {"task": "t", "hosts": [1], "image": "evil:1"}, "image"),
        ("/v1/jobs", {"task": "t", "hosts": [1], "owner": 1}, "owner"),
        ("/v1/users", {"name": "u", "role": "viewer", "project_id": "x"}, "project_id"),
        ("/v1/secrets", {"name": "S", "value": "abcdef", "project_id": "x"}, "project_id"),
        ("/v1/tokens", {"name": "t", "role": "admin"}, "role"),
    ],
)
def test_fields_nobody_may_set_are_refused_with_422(api, path, body, field):
    answer = api.post(path, json=body)
    assert answer.status_code == 422, answer.text
    assert field in answer.json()["message"]


def test_fields_nobody_may_set_are_refused_on_update_too(api, sessions, root):
    with transaction(sessions) as session:
        task_id = make_ready_task(session, root.project_id, "t").id
    for body in ({"image": "evil:1"}, {"approval": "approved"}, {"project_id": "x"}):
        answer = api.put(f"/v1/tasks/{task_id}", json=body)
        assert answer.status_code == 422 and next(iter(body)) in answer.json()["message"]
    host = hosts_of(sessions, root.project_id, 1)[0]
    assert api.put(f"/v1/hosts/{host}", json={"project_id": "x"}).status_code == 422


# --- secrets ----------------------------------------------------------------------


def test_secrets_are_stored_encrypted_and_never_answered(api, users, sessions, settings):
    made = api.post(
        "/v1/secrets", json={"name": "DB_PASSWORD", "value": "s3cr3t-value", "description": "db"}
    )
    assert made.status_code == 201, made.text
    assert made.headers["Location"].endswith(f"/v1/secrets/{made.json()['id']}")
    assert "s3cr3t-value" not in made.text and "value" not in made.json()
    with transaction(sessions) as session:
        row = session.execute(select(Secret)).scalar_one()
        assert "s3cr3t-value" not in row.ciphertext
        key = settings.secret_key_value.encode()
        assert Fernet(key).decrypt(row.ciphertext.encode()) == b"s3cr3t-value"
    listed = api.get("/v1/secrets").json()["secrets"]
    assert [s["name"] for s in listed] == ["DB_PASSWORD"] and "value" not in listed[0]
    assert "s3cr3t" not in api.get(f"/v1/secrets/{made.json()['id']}").text
    assert api.post("/v1/secrets", json={"name": "DB_PASSWORD", "value": "xxxx"}).status_code == 409
    reserved = api.post("/v1/secrets", json={"name": "CRATON_TOKEN", "value": "xxxx"})
    assert reserved.status_code == 422
    assert reserved.json()["code"] == "environment_name_refused"
    assert "reserved for the platform" in reserved.json()["message"]
    assert api.post("/v1/secrets", json={"name": "1BAD", "value": "xxxx"}).status_code == 400
    assert api.post("/v1/secrets", json={"name": "SHORT", "value": "x"}).status_code == 422
    assert users("op", "operator").get("/v1/secrets").status_code == 200
    assert users("view", "viewer").get("/v1/secrets").status_code == 403
    assert (
        users("op", "operator").post("/v1/secrets", json={"name": "X", "value": "abcd"}).status_code
        == 403
    )
    assert api.put("/v1/secrets/DB_PASSWORD", json={"value": "rotated!"}).status_code == 200
    assert api.delete("/v1/secrets/DB_PASSWORD").status_code == 204
    assert api.get("/v1/secrets").json()["secrets"] == []


def test_production_mode_refuses_a_placeholder_key(settings):
    for key in (None, "changethis", DEVELOPMENT_SECRET_KEY):
        with pytest.raises(ValueError, match="production mode needs a real CRATON_WF_SECRET_KEY"):
            Settings(database_url=settings.database_url, production=True, secret_key=key)
    real = Fernet.generate_key().decode()
    assert Settings(production=True, secret_key=real).secret_key_value == real


def test_the_app_refuses_a_malformed_key(settings, sessions):
    from craton_wf.api.app import create_app
    from craton_wf.services.project_secrets import SecretKeyError

    with pytest.raises(SecretKeyError):
        create_app(settings.model_copy(update={"secret_key": SecretStr("not-a-key")}), sessions)


def test_secrets_reach_the_container_as_env_and_are_redacted_from_logs(
    api, sessions, root, start_runner, wait_job
):
    hosts = hosts_of(sessions, root.project_id, 1)
    with transaction(sessions) as session:
        make_ready_task(session, root.project_id, "leaky", secrets=["API_KEY"])
        make_ready_task(session, root.project_id, "plain")
    refused = api.post("/v1/jobs", json={"task": "leaky", "hosts": hosts})
    assert refused.status_code == 400 and "no secret named API_KEY" in refused.json()["message"]
    api.post("/v1/secrets", json={"name": "API_KEY", "value": "tok-123456"})
    api.post("/v1/secrets", json={"name": "OTHER", "value": "never-sent"})

    def leak(spec: ContainerSpec) -> FakeOutcome:
        value = spec.env.get("API_KEY", "absent")
        return FakeOutcome(
            lines=[
                ("stdout", f"the key is {value}!"),
                ("stderr", f"again:{value}"),
                ("stdout", f'CRATON_OUTPUT {{"key": "{value}"}}'),
            ]
        )

    executor = FakeExecutor(leak)
    start_runner(executor)
    job = api.post("/v1/jobs", json={"task": "leaky", "hosts": hosts}).json()
    wait_job(job["id"])
    spec = executor.created[0]
    assert spec.env["API_KEY"] == "tok-123456" and "OTHER" not in spec.env
    assert "tok-123456" not in " ".join(spec.command)  # never in the payload argument
    logs = api.get(f"/v1/jobs/{job['id']}/logs").text
    assert "tok-123456" not in logs
    assert "the key is [redacted]!" in logs and "again:[redacted]" in logs
    runs = api.get(f"/v1/jobs/{job['id']}/runs").text
    assert "tok-123456" not in runs

    # A workflow step may not hand a task a secret the task does not declare:
    # its approval did not cover it.
    refused = api.post(
        "/v1/workflows", json={"name": "wf", "steps": [{"task": "plain", "secrets": ["OTHER"]}]}
    )
    assert refused.status_code == 422 and refused.json()["code"] == "secret_not_declared"
    assert "step 'plain'" in refused.json()["message"] and "OTHER" in refused.json()["message"]
    # Naming one the task declares is what a step may do (the task gets it anyway).
    made = api.post(
        "/v1/workflows", json={"name": "wf", "steps": [{"task": "leaky", "secrets": ["API_KEY"]}]}
    )
    assert made.status_code == 201, made.text
    second = api.post("/v1/jobs", json={"workflow": "wf", "hosts": hosts}).json()
    wait_job(second["id"])
    assert executor.created[1].env["API_KEY"] == "tok-123456"
    assert "OTHER" not in executor.created[1].env


# --- the task's own token ------------------------------------------------------------


def test_a_tasks_write_back_is_audited_as_its_run_on_behalf_of_the_creator(
    api, users, sessions, root, start_runner
):
    import json

    hosts = hosts_of(sessions, root.project_id, 1)
    with transaction(sessions) as session:
        make_ready_task(session, root.project_id, "audit-disk", kind="audit")
    seen: list[ContainerSpec] = []

    def hold(spec: ContainerSpec) -> FakeOutcome:
        seen.append(spec)
        return FakeOutcome(lines=[("stdout", "auditing")], delay=3.0)

    start_runner(FakeExecutor(hold))
    alice = users("alice", "auditor")
    job = alice.post("/v1/jobs", json={"task": "audit-disk", "hosts": hosts}).json()
    for _ in range(200):
        if seen:
            break
        time.sleep(0.05)
    task = TestClient(api.app, headers={"Authorization": f"Bearer {seen[0].env['CRATON_TOKEN']}"})
    assert task.put(f"/v1/hosts/{hosts[0]}/variables", json={"disk": "ok"}).status_code == 200
    assert alice.post("/v1/clouds", json={"name": "nope"}).status_code == 403  # alice's own
    run = api.get(f"/v1/jobs/{job['id']}/runs").json()["runs"][0]
    host_name = api.get(f"/v1/hosts/{hosts[0]}").json()["name"]

    events = api.get("/v1/audit-events", params={"action": "host.variables.update"}).json()
    (event,) = events["audit_events"]
    assert event["user_name"] == (
        f"alice (job {job['id']} run {run['id']}, task audit-disk, host {host_name})"
    )
    assert event["object_id"] == str(hosts[0]) and event["outcome"] == "success"
    assert json.loads(event["detail"]) == {
        "on_behalf_of": "alice",
        "job_id": job["id"],
        "run_id": run["id"],
        "task": "audit-disk",
        "host": host_name,
    }
    # Asking for alice's calls finds her own and her job's run's, told apart.
    mine = api.get("/v1/audit-events", params={"user": "alice"}).json()["audit_events"]
    assert {e["user_name"] for e in mine} >= {"alice", event["user_name"]}


def test_a_tasks_token_reads_its_hosts_sets_their_variables_and_dies_with_the_run(
    api, users, sessions, root, start_runner, wait_job, settings
):
    hosts = hosts_of(sessions, root.project_id, 3)
    job_hosts, other_host = hosts[:2], hosts[2]
    with transaction(sessions) as session:
        make_ready_task(session, root.project_id, "audit", kind="audit")
    seen: list[ContainerSpec] = []

    def hold(spec: ContainerSpec) -> FakeOutcome:
        seen.append(spec)
        return FakeOutcome(lines=[("stdout", "auditing")], delay=3.0)

    start_runner(FakeExecutor(hold))
    auditor = users("aud", "auditor")
    job = auditor.post(
        "/v1/jobs", json={"task": "audit", "hosts": job_hosts, "concurrency": 1}
    ).json()
    for _ in range(200):
        if seen:
            break
        time.sleep(0.05)
    env = seen[0].env
    assert env["CRATON_URL"] == f"http://host.docker.internal:{settings.api_port}"
    task_token = env["CRATON_TOKEN"]
    task = TestClient(api.app, headers={"Authorization": f"Bearer {task_token}"})

    listed = task.get("/v1/hosts").json()["hosts"]
    assert sorted(h["id"] for h in listed) == sorted(job_hosts)
    assert task.get(f"/v1/hosts/{job_hosts[0]}").status_code == 200
    assert task.get(f"/v1/hosts/{other_host}").status_code == 404
    put = task.put(f"/v1/hosts/{job_hosts[0]}/variables", json={"audit": {"ssh": "ok"}})
    assert put.status_code == 200, put.text
    assert api.get(f"/v1/hosts/{job_hosts[0]}/variables").json()["variables"]["audit"] == {
        "ssh": "ok"
    }
    assert task.put(f"/v1/hosts/{other_host}/variables", json={"x": 1}).status_code == 404
    for method, path in [
        ("GET", "/v1/jobs"),
        ("GET", f"/v1/jobs/{job['id']}"),
        ("GET", "/v1/secrets"),
        ("GET", "/v1/regions"),
        ("PUT", f"/v1/hosts/{job_hosts[0]}"),
        ("POST", "/v1/clouds"),
        ("POST", "/v1/tokens"),
        ("POST", f"/v1/jobs/{job['id']}/cancel"),
        ("PUT", "/v1/regions/1/variables"),
    ]:
        answer = task.request(method, path, json={"name": "x"} if method != "GET" else None)
        assert answer.status_code == 403, (method, path, answer.text)
    # A token is never listed among the user's tokens.
    assert all(
        t["name"].startswith("job ") is False for t in api.get("/v1/tokens").json()["tokens"]
    )

    wait_job(job["id"], timeout=30)
    gone = task.get("/v1/hosts")
    assert gone.status_code == 401
    with transaction(sessions) as session:
        tokens = session.execute(select(ApiToken).where(ApiToken.job_id == job["id"])).scalars()
        rows = list(tokens)
        assert len(rows) == 2 and all(t.revoked_at is not None for t in rows)
        assert all(t.expires_at is not None for t in rows)


# --- limits -------------------------------------------------------------------------


def test_a_task_may_ask_for_more_resources_within_the_maxima(
    api, sessions, root, start_runner, wait_job, settings
):
    over = api.post(
        "/v1/tasks",
        json={
            "name": "big",
            **GIT_TASK,
            "resources": {"memory_mb": settings.task_max_memory_mb + 1},
        },
    )
    assert over.status_code == 400 and "memory_mb" in over.json()["message"]
    hosts = hosts_of(sessions, root.project_id, 1)
    with transaction(sessions) as session:
        make_ready_task(session, root.project_id, "small")
        make_ready_task(
            session,
            root.project_id,
            "bigger",
            resources={"memory_mb": 1024, "cpus": 2, "pids": 512},
        )
    executor = FakeExecutor()
    start_runner(executor)
    for name in ("small", "bigger"):
        wait_job(api.post("/v1/jobs", json={"task": name, "hosts": hosts}).json()["id"])
    small, bigger = (spec.limits for spec in executor.created)
    assert small.memory_bytes == settings.task_memory_mb * 1024 * 1024
    assert small.pids == settings.task_pids and small.nano_cpus == 1_000_000_000
    assert small.tmpfs_bytes == settings.task_tmpfs_mb * 1024 * 1024
    assert bigger.memory_bytes == 1024 * 1024 * 1024
    assert bigger.nano_cpus == 2_000_000_000 and bigger.pids == 512
    assert not executor.created[0].network


def test_network_is_refused_when_the_platform_forbids_it(api, settings, sessions):
    from craton_wf.api.app import create_app

    closed = settings.model_copy(update={"task_network_allowed": False})
    with TestClient(create_app(closed, sessions), headers=api.headers) as client:
        answer = client.post("/v1/tasks", json={"name": "n", **GIT_TASK, "needs_network": True})
    assert answer.status_code == 400 and "network" in answer.json()["message"]


def test_audit_events_record_secret_changes_without_their_values(api):
    api.post("/v1/secrets", json={"name": "PW", "value": "value-of-pw"})
    api.delete("/v1/secrets/PW")
    events = api.get("/v1/audit-events", params={"object_type": "secret"}).json()["audit_events"]
    assert [(e["action"], e["outcome"]) for e in events] == [
        ("secret.delete", "success"),
        ("secret.create", "success"),
    ]
    assert "value-of-pw" not in str(events)


def test_audit_events_are_scoped_to_the_admins_project(api, root, sessions):
    other = api.post("/v1/projects", json={"name": "tenant-b"}).json()["id"]
    b_admin = as_user(api, other, "b-admin", "admin")
    b_admin.post("/v1/clouds", json={"name": "theirs"})
    api.post("/v1/clouds", json={"name": "ours"})
    theirs = b_admin.get("/v1/audit-events").json()["audit_events"]
    assert theirs and all(e["project_id"] == other for e in theirs)
    with transaction(sessions) as session:
        projects = set(session.execute(select(AuditEvent.project_id)).scalars())
    assert {root.project_id, other} <= projects
    assert {e["project_id"] for e in api.get("/v1/audit-events").json()["audit_events"]} >= {
        root.project_id,
        other,
    }


def test_a_tasks_placement_is_checked_stored_and_reaches_the_executor(
    api, sessions, root, start_runner, wait_job
):
    bad = api.post("/v1/tasks", json={"name": "p", **GIT_TASK, "placement": ["zone=a"]})
    assert bad.status_code == 400 and "placement" in bad.json()["message"]
    assert api.get("/v1/tasks").json()["tasks"] == []
    hosts = hosts_of(sessions, root.project_id, 1)
    with transaction(sessions) as session:
        task_id = make_ready_task(
            session, root.project_id, "placed", placement=["node.labels.zone == a"]
        ).id
    shown = api.get(f"/v1/tasks/{task_id}").json()
    assert shown["placement"] == ["node.labels.zone==a"]
    executor = FakeExecutor()
    start_runner(executor)
    wait_job(api.post("/v1/jobs", json={"task": "placed", "hosts": hosts}).json()["id"])
    assert executor.created[0].placement == ("node.labels.zone==a",)
