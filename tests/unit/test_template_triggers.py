"""Template triggers through the real app: made by admins, called without a token.

A call proves it holds the trigger's secret by signing ``<timestamp>.<body>``
(HMAC-SHA256) or by sending the secret as a bearer; a forged signature, a
timestamp outside the window (a replay), an unknown or deleted trigger all
answer 401, the same for each. A launch acts as the trigger's maker, with
that user's roles at the time of the call; it is rate-limited per trigger and
recorded in the audit trail as that user with the trigger's id.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from craton_wf.db.engine import transaction
from craton_wf.db.models import Job, Project, RoleAssignment, User
from craton_wf.services.auth import issue_token
from tests.factories import make_inventory, make_ready_task

PARAMETERS = [
    {"name": "depth", "type": "int", "default": 2},
    {"name": "mode", "type": "choice", "choices": ["quick", "full"], "required": True},
]


@pytest.fixture
def template_id(api, sessions, root) -> int:  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        make_inventory(session, root.project_id, 2)
        make_ready_task(session, root.project_id, "audit-disks", command="true", kind="audit")
    made = api.post(
        "/v1/job-templates",
        json={
            "name": "nightly-audit",
            "task": "audit-disks",
            "targets": {"filters": {"label": "compute"}},
            "parameters": PARAMETERS,
        },
    )
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


@pytest.fixture
def anonymous(api) -> TestClient:  # type: ignore[no-untyped-def]
    """A client that sends no token: a trigger's caller."""
    return TestClient(api.app)


def make_trigger(client: TestClient, template_id: int) -> dict[str, Any]:
    made = client.post(f"/v1/job-templates/{template_id}/triggers", json={"description": "ci"})
    assert made.status_code == 201, made.text
    return made.json()


def signed(
    secret: str, document: Any, at: float | None = None, body: bytes | None = None
) -> tuple[bytes, dict[str, str]]:
    raw = body if body is not None else json.dumps(document).encode()
    timestamp = str(int(time.time() if at is None else at))
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + raw, hashlib.sha256)
    return raw, {
        "X-Craton-Timestamp": timestamp,
        "X-Craton-Signature": "sha256=" + digest.hexdigest(),
        "Content-Type": "application/json",
    }


def call(client: TestClient, trigger: dict[str, Any], raw: bytes, headers: dict[str, str]) -> Any:
    return client.post(f"/v1/triggers/{trigger['id']}", content=raw, headers=headers)


def jobs_of(sessions: Any, template_id: int) -> list[Job]:
    with transaction(sessions) as session:
        found = session.execute(select(Job).where(Job.template_id == template_id)).scalars()
        return list(found)


def test_a_signed_call_launches_exactly_one_job_with_its_params(
    api, anonymous, sessions, template_id
):  # type: ignore[no-untyped-def]
    trigger = make_trigger(api, template_id)
    assert trigger["url"].endswith(f"/v1/triggers/{trigger['id']}")
    assert len(trigger["secret"]) >= 43  # 32 random bytes, URL-safe base64
    raw, headers = signed(trigger["secret"], {"params": {"mode": "full"}, "name": "from-ci"})
    answer = call(anonymous, trigger, raw, headers)
    assert answer.status_code == 201, answer.text
    job = answer.json()
    assert answer.headers["Location"].endswith(f"/v1/jobs/{job['id']}")
    assert job["name"] == "from-ci" and job["template_params"] == {"mode": "full", "depth": 2}
    assert [j.id for j in jobs_of(sessions, template_id)] == [job["id"]]


def test_a_forged_signature_is_refused(api, anonymous, sessions, template_id):  # type: ignore[no-untyped-def]
    trigger = make_trigger(api, template_id)
    raw, headers = signed("not-the-secret-" * 3, {"params": {"mode": "full"}})
    answer = call(anonymous, trigger, raw, headers)
    assert answer.status_code == 401, answer.text
    assert answer.json()["message"] == "unknown trigger or wrong secret"
    # The right signature over another body: the body was changed on the way.
    raw, headers = signed(trigger["secret"], {"params": {"mode": "quick"}})
    tampered = raw.replace(b"quick", b"full!")
    assert call(anonymous, trigger, tampered, headers).status_code == 401
    assert jobs_of(sessions, template_id) == []


def test_a_replay_outside_the_timestamp_window_is_refused(api, anonymous, sessions, template_id):  # type: ignore[no-untyped-def]
    trigger = make_trigger(api, template_id)
    raw, headers = signed(trigger["secret"], {"params": {"mode": "full"}}, at=time.time() - 301)
    answer = call(anonymous, trigger, raw, headers)
    assert answer.status_code == 401, answer.text
    assert "old" in answer.json()["message"] and "300 s" in answer.json()["message"]
    raw, headers = signed(trigger["secret"], {"params": {"mode": "full"}}, at=time.time() + 400)
    assert call(anonymous, trigger, raw, headers).status_code == 401
    assert jobs_of(sessions, template_id) == []


def test_a_signed_call_is_accepted_once(api, anonymous, sessions, template_id):  # type: ignore[no-untyped-def]
    trigger = make_trigger(api, template_id)
    raw, headers = signed(trigger["secret"], {"params": {"mode": "full"}})
    assert call(anonymous, trigger, raw, headers).status_code == 201
    again = call(anonymous, trigger, raw, headers)
    assert again.status_code == 409, again.text
    assert len(jobs_of(sessions, template_id)) == 1


def test_the_secret_as_bearer_works_and_a_token_does_not(api, anonymous, root, template_id):  # type: ignore[no-untyped-def]
    trigger = make_trigger(api, template_id)
    url = f"/v1/triggers/{trigger['id']}"
    bearer = {"Authorization": f"Bearer {trigger['secret']}"}
    answer = anonymous.post(url, json={"params": {"mode": "quick"}}, headers=bearer)
    assert answer.status_code == 201, answer.text
    wrong = {"Authorization": f"Bearer {trigger['secret']}x"}
    assert anonymous.post(url, json={"params": {"mode": "quick"}}, headers=wrong).status_code == 401
    # The API's own token is not the trigger's secret.
    token = {"Authorization": f"Bearer {root.token}"}
    assert anonymous.post(url, json={"params": {"mode": "quick"}}, headers=token).status_code == 401
    nothing = anonymous.post(url, json={"params": {"mode": "quick"}})
    assert nothing.status_code == 401 and "X-Craton-Signature" in nothing.json()["message"]


@pytest.mark.parametrize(
    ("document", "named"),
    [
        ({"params": {"mode": "slow"}}, "mode"),
        ({"params": {"depth": "deep", "mode": "full"}}, "depth"),
        ({"params": {}}, "mode"),
        ({"params": {"mode": "full", "colour": "red"}}, "colour"),
        ({"params": ["mode"]}, "params"),
    ],
)
def test_wrong_params_answer_422_naming_the_parameter(
    api, anonymous, sessions, template_id, document, named
):  # type: ignore[no-untyped-def]
    trigger = make_trigger(api, template_id)
    raw, headers = signed(trigger["secret"], document)
    answer = call(anonymous, trigger, raw, headers)
    assert answer.status_code == 422, answer.text
    assert named in answer.json()["message"]
    assert jobs_of(sessions, template_id) == []


def test_a_body_that_is_not_json_answers_422(api, anonymous, template_id):  # type: ignore[no-untyped-def]
    trigger = make_trigger(api, template_id)
    raw, headers = signed(trigger["secret"], None, body=b"mode=full")
    headers["Content-Type"] = "text/plain"
    answer = call(anonymous, trigger, raw, headers)
    assert answer.status_code == 422, answer.text


def test_the_rate_limit_answers_429_with_retry_after(
    api, anonymous, sessions, settings, template_id
):  # type: ignore[no-untyped-def]
    api.app.state.settings = settings.model_copy(update={"trigger_rate_per_minute": 3})
    trigger = make_trigger(api, template_id)
    for n in range(3):
        raw, headers = signed(trigger["secret"], {"params": {"mode": "full"}, "name": f"n{n}"})
        assert call(anonymous, trigger, raw, headers).status_code == 201
    raw, headers = signed(trigger["secret"], {"params": {"mode": "full"}, "name": "n3"})
    answer = call(anonymous, trigger, raw, headers)
    assert answer.status_code == 429, answer.text
    assert 1 <= int(answer.headers["Retry-After"]) <= 60
    assert "TRIGGER_RATE_PER_MINUTE=3" in answer.json()["message"]
    assert len(jobs_of(sessions, template_id)) == 3
    # Another trigger of the same template has its own minute.
    other = make_trigger(api, template_id)
    raw, headers = signed(other["secret"], {"params": {"mode": "full"}})
    assert call(anonymous, other, raw, headers).status_code == 201


def test_a_deleted_trigger_answers_as_an_unknown_one(api, anonymous, template_id):  # type: ignore[no-untyped-def]
    trigger = make_trigger(api, template_id)
    deleted = api.delete(f"/v1/job-templates/{template_id}/triggers/{trigger['id']}")
    assert deleted.status_code == 204, deleted.text
    raw, headers = signed(trigger["secret"], {"params": {"mode": "full"}})
    answer = call(anonymous, trigger, raw, headers)
    unknown = call(anonymous, {"id": "0" * 36}, raw, headers)
    assert answer.status_code == unknown.status_code == 401
    assert answer.json() == unknown.json()
    listed = api.get(f"/v1/job-templates/{template_id}/triggers").json()["triggers"]
    assert listed == []


def test_the_secret_is_never_in_a_get_answer(api, template_id):  # type: ignore[no-untyped-def]
    trigger = make_trigger(api, template_id)
    for path in (
        f"/v1/job-templates/{template_id}/triggers",
        f"/v1/job-templates/{template_id}",
        "/v1/job-templates",
        "/v1/audit-events",
    ):
        answer = api.get(path)
        assert answer.status_code == 200, answer.text
        assert trigger["secret"] not in answer.text, path
    listed = api.get(f"/v1/job-templates/{template_id}/triggers").json()["triggers"]
    assert [t["id"] for t in listed] == [trigger["id"]]
    assert "secret" not in listed[0] and listed[0]["created_by_name"] == "root"


def test_the_audit_event_names_the_triggers_user_and_the_trigger(api, anonymous, template_id):  # type: ignore[no-untyped-def]
    trigger = make_trigger(api, template_id)
    raw, headers = signed(trigger["secret"], {"params": {"mode": "full"}})
    job = call(anonymous, trigger, raw, headers).json()
    raw, headers = signed("forged-" * 6, {"params": {"mode": "full"}})
    assert call(anonymous, trigger, raw, headers).status_code == 401
    events = api.get("/v1/audit-events", params={"action": "trigger.launch"}).json()
    launched, refused = sorted(events["audit_events"], key=lambda e: e["status"])
    assert launched["user_name"] == "root" and launched["status"] == 201
    assert launched["object_id"] == trigger["id"]
    assert json.loads(launched["detail"]) == {
        "trigger_id": trigger["id"],
        "template_id": template_id,
        "job_id": job["id"],
    }
    assert refused["status"] == 401 and refused["user_name"] is None


def admin_of(sessions: Any, project_id: str, name: str) -> tuple[int, str]:
    with transaction(sessions) as session:
        user = User(name=name, default_project_id=project_id)
        session.add(user)
        session.flush()
        session.add(RoleAssignment(user_id=user.id, project_id=project_id, role="admin"))
        return user.id, issue_token(session, user, name="t", project_id=project_id).token


def test_a_trigger_whose_user_lost_the_right_to_launch_is_refused(
    api, anonymous, sessions, root, template_id
):  # type: ignore[no-untyped-def]
    user_id, token = admin_of(sessions, root.project_id, "ci-admin")
    admin = TestClient(
        api.app, headers={"X-Auth-Project": root.project_id, "Authorization": f"Bearer {token}"}
    )
    trigger = make_trigger(admin, template_id)
    raw, headers = signed(trigger["secret"], {"params": {"mode": "full"}})
    assert call(anonymous, trigger, raw, headers).status_code == 201
    changed = api.put(f"/v1/users/{user_id}", json={"role": "viewer"})
    assert changed.status_code == 200, changed.text
    raw, headers = signed(trigger["secret"], {"params": {"mode": "full"}, "name": "later"})
    answer = call(anonymous, trigger, raw, headers)
    assert answer.status_code == 403, answer.text
    assert "ci-admin" in answer.json()["message"]
    assert len(jobs_of(sessions, template_id)) == 1


def test_another_projects_admin_cannot_list_or_delete(api, sessions, template_id):  # type: ignore[no-untyped-def]
    trigger = make_trigger(api, template_id)
    with transaction(sessions) as session:
        other = Project(name="other", variables={})
        session.add(other)
        session.flush()
        other_id = other.id
    _, token = admin_of(sessions, other_id, "other-admin")
    stranger = TestClient(
        api.app, headers={"X-Auth-Project": other_id, "Authorization": f"Bearer {token}"}
    )
    base = f"/v1/job-templates/{template_id}/triggers"
    assert stranger.get(base).status_code == 404
    assert stranger.post(base, json={}).status_code == 404
    assert stranger.delete(f"{base}/{trigger['id']}").status_code == 404
    assert [t["id"] for t in api.get(base).json()["triggers"]] == [trigger["id"]]


def test_operators_cannot_manage_triggers(api, root, template_id):  # type: ignore[no-untyped-def]
    assert api.post("/v1/users", json={"name": "op", "role": "operator"}).status_code == 201
    token = api.post("/v1/tokens", json={"user": "op", "name": "t"}).json()["token"]
    operator = TestClient(
        api.app, headers={"X-Auth-Project": root.project_id, "Authorization": f"Bearer {token}"}
    )
    base = f"/v1/job-templates/{template_id}/triggers"
    assert operator.post(base, json={}).status_code == 403
    assert operator.get(base).status_code == 403


def test_deleting_the_template_deletes_its_triggers(api, anonymous, template_id):  # type: ignore[no-untyped-def]
    trigger = make_trigger(api, template_id)
    assert api.delete(f"/v1/job-templates/{template_id}").status_code == 204
    raw, headers = signed(trigger["secret"], {"params": {"mode": "full"}})
    assert call(anonymous, trigger, raw, headers).status_code == 401


def test_a_body_over_the_cap_is_refused_before_anything(
    api, anonymous, sessions, settings, template_id
):  # type: ignore[no-untyped-def]
    trigger = make_trigger(api, template_id)
    padding = "x" * (settings.request_max_bytes + 1)
    raw, headers = signed(trigger["secret"], {"params": {"mode": "full"}, "name": padding})
    answer = call(anonymous, trigger, raw, headers)
    assert answer.status_code == 413, answer.text
    assert jobs_of(sessions, template_id) == []
