"""Job templates through the real API: written by admins, launched with typed
parameters (a 422 naming the parameter when one does not fit), launched by
operators and, for audit-only templates, auditors; another project's template
does not exist for a caller."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from craton_wf.db.engine import transaction
from craton_wf.db.models import Project, RoleAssignment, User
from craton_wf.services.auth import issue_token
from tests.factories import make_inventory, make_ready_task

PARAMETERS = [
    {"name": "depth", "type": "int", "default": 2, "description": "how deep to look"},
    {"name": "mode", "type": "choice", "choices": ["quick", "full"], "required": True},
    {"name": "dry_run", "type": "bool", "default": True},
    {"name": "ticket", "type": "string"},
]


@pytest.fixture
def world(sessions, root) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        hosts = make_inventory(session, root.project_id, 3)
        make_ready_task(session, root.project_id, "audit-disks", command="true", kind="audit")
        make_ready_task(session, root.project_id, "fix-disks", command="true")
        return {"hosts": [h.id for h in hosts]}


@pytest.fixture
def client_as(api, root) -> Callable[[str], TestClient]:  # type: ignore[no-untyped-def]
    made: dict[str, TestClient] = {}

    def make(role: str) -> TestClient:
        if role not in made:
            name = f"{role}-user"
            assert api.post("/v1/users", json={"name": name, "role": role}).status_code == 201
            token = api.post("/v1/tokens", json={"user": name, "name": "t"}).json()["token"]
            made[role] = TestClient(
                api.app,
                headers={"X-Auth-Project": root.project_id, "Authorization": f"Bearer {token}"},
            )
        return made[role]

    return make


def template(api: TestClient, name: str = "nightly-audit", **fields: Any) -> Any:
    body = {
        "name": name,
        "task": "audit-disks",
        "targets": {"filters": {"label": "compute"}},
        "variables": {"depth": 1, "owner": "ops"},
        "parameters": PARAMETERS,
        "concurrency": 2,
        "max_failures": 1,
        "timeout": 600,
    } | fields
    return api.post("/v1/job-templates", json=body)


def test_create_show_list_update_delete(api, world):  # type: ignore[no-untyped-def]
    made = template(api)
    assert made.status_code == 201, made.text
    body = made.json()
    assert made.headers["Location"].endswith(f"/v1/job-templates/{body['id']}")
    assert body["task_name"] == "audit-disks" and body["workflow_id"] is None
    assert body["targets"] == {"hosts": [], "filters": {"label": "compute"}}
    assert [p["name"] for p in body["parameters"]] == ["depth", "mode", "dry_run", "ticket"]
    assert body["concurrency"] == 2 and body["timeout_seconds"] == 600

    assert api.get("/v1/job-templates/nightly-audit").json()["id"] == body["id"]
    template(api, "second")
    page = api.get("/v1/job-templates", params={"limit": 1}).json()
    assert [t["name"] for t in page["job_templates"]] == ["nightly-audit"]
    assert any(link["rel"] == "next" for link in page["links"])
    rest = api.get(next(link["href"] for link in page["links"] if link["rel"] == "next"))
    assert [t["name"] for t in rest.json()["job_templates"]] == ["second"]

    changed = api.put(f"/v1/job-templates/{body['id']}", json={"concurrency": 5})
    assert changed.status_code == 200 and changed.json()["concurrency"] == 5
    assert changed.json()["parameters"] == body["parameters"]  # untouched

    assert api.delete(f"/v1/job-templates/{body['id']}").status_code == 204
    gone = api.get(f"/v1/job-templates/{body['id']}")
    assert gone.status_code == 404 and gone.json()["status"] == 404


def test_a_workflow_template_pins_a_version_or_runs_the_latest(api, world):  # type: ignore[no-untyped-def]
    flow = api.post("/v1/workflows", json={"name": "audit-flow", "steps": ["audit-disks"]})
    assert flow.status_code == 201
    api.put("/v1/workflows/audit-flow", json={"steps": ["audit-disks", "audit-disks"]})
    hosts = {"hosts": world["hosts"][:1]}
    pinned = template(api, "pinned", task=None, workflow="audit-flow", workflow_version=1)
    latest = template(api, "latest", task=None, workflow="audit-flow", targets=hosts)
    assert pinned.status_code == 201 and latest.status_code == 201, pinned.text + latest.text
    one = api.post("/v1/job-templates/pinned/launch", json={"params": {"mode": "quick"}}).json()
    two = api.post("/v1/job-templates/latest/launch", json={"params": {"mode": "quick"}}).json()
    assert one["workflow_version"] == 1 and len(one["steps"]) == 1
    assert two["workflow_version"] == 2 and len(two["steps"]) == 2
    assert two["summary"]["hosts"] == {"PENDING": 1} or sum(two["summary"]["hosts"].values()) == 1
    missing = template(api, "bad", task=None, workflow="audit-flow", workflow_version=9)
    assert missing.status_code == 404, missing.text


def test_launch_merges_parameters_over_defaults_and_variables(api, world):  # type: ignore[no-untyped-def]
    assert template(api).status_code == 201
    launched = api.post(
        "/v1/job-templates/nightly-audit/launch",
        json={"params": {"mode": "full", "depth": "7", "ticket": "OPS-1"}},
    )
    assert launched.status_code == 201, launched.text
    job = launched.json()
    assert launched.headers["Location"].endswith(f"/v1/jobs/{job['id']}")
    assert job["variables"] == {
        "depth": 7,
        "owner": "ops",
        "mode": "full",
        "dry_run": True,
        "ticket": "OPS-1",
    }
    assert job["template_params"] == {
        "depth": 7,
        "mode": "full",
        "dry_run": True,
        "ticket": "OPS-1",
    }
    assert job["template_id"] is not None and job["name"] == "nightly-audit"
    assert job["concurrency"] == 2 and job["max_failures"] == 1 and job["timeout_seconds"] == 600
    assert sum(job["summary"]["hosts"].values()) == 3  # the label filter, resolved at launch
    shown = api.get(f"/v1/jobs/{job['id']}").json()
    assert shown["template_id"] == job["template_id"]
    assert shown["template_params"] == job["template_params"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"mode": "quick", "colour": "red"}, "unknown parameter 'colour'"),
        ({}, "parameter 'mode' is required"),
        ({"mode": "quick", "depth": "deep"}, "parameter 'depth': value 'deep' is not an int"),
        ({"mode": "quick", "depth": True}, "parameter 'depth': value True is not an int"),
        ({"mode": "quick", "dry_run": "maybe"}, "parameter 'dry_run': value 'maybe' is not a bool"),
        ({"mode": "slow"}, "parameter 'mode': 'slow' is not one of quick, full"),
        ({"mode": "quick", "ticket": 5}, "parameter 'ticket': value 5 is not a string"),
    ],
)
def test_a_launch_whose_parameters_do_not_fit_is_a_422_naming_it(  # type: ignore[no-untyped-def]
    api, world, params, message
):
    assert template(api).status_code == 201
    answer = api.post("/v1/job-templates/nightly-audit/launch", json={"params": params})
    assert answer.status_code == 422, answer.text
    assert message in answer.json()["message"]
    assert answer.json()["code"] == "parameter_invalid"
    assert api.get("/v1/jobs").json()["jobs"] == []


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"parameters": [{"name": "a"}, {"name": "a"}]}, 422, "'a' is declared twice"),
        ({"parameters": [{"name": "a", "type": "choice"}]}, 422, "a choice needs choices"),
        ({"parameters": [{"name": "a", "type": "int", "default": "x"}]}, 422, "default 'x'"),
        ({"parameters": [{"name": "a", "type": "float"}]}, 422, "type"),
        ({"parameters": [{"name": "bad name"}]}, 422, "name"),
        ({"task": None}, 400, "exactly one of workflow or task"),
        ({"workflow": "nope"}, 400, "exactly one of workflow or task"),
        ({"targets": {}}, 400, "name the hosts"),
        ({"task": "no-such-task"}, 404, "no-such-task"),
        ({"concurrency": 0}, 422, "concurrency"),
    ],
)
def test_a_template_that_is_wrong_is_refused_naming_why(  # type: ignore[no-untyped-def]
    api, world, fields, status, message
):
    answer = template(api, **fields)
    assert answer.status_code == status, answer.text
    assert message in answer.text


def test_a_name_is_unique_in_the_project(api, world):  # type: ignore[no-untyped-def]
    assert template(api).status_code == 201
    again = template(api)
    assert again.status_code == 409 and "already exists" in again.json()["message"]


def test_operators_launch_auditors_only_audits_admins_write(  # type: ignore[no-untyped-def]
    api, world, client_as
):
    assert template(api, "audit").status_code == 201
    assert template(api, "fix", task="fix-disks").status_code == 201
    go = {"params": {"mode": "quick"}}
    auditor, operator, viewer = client_as("auditor"), client_as("operator"), client_as("viewer")
    assert auditor.post("/v1/job-templates/audit/launch", json=go).status_code == 201
    refused = auditor.post("/v1/job-templates/fix/launch", json=go)
    assert refused.status_code == 403 and "only audit tasks" in refused.json()["message"]
    assert operator.post("/v1/job-templates/fix/launch", json=go).status_code == 201
    assert viewer.post("/v1/job-templates/audit/launch", json=go).status_code == 403
    assert viewer.get("/v1/job-templates/audit").status_code == 200
    assert operator.post("/v1/job-templates", json={"name": "x"}).status_code == 403
    assert operator.put("/v1/job-templates/audit", json={"concurrency": 3}).status_code == 403
    assert operator.delete("/v1/job-templates/audit").status_code == 403
    trail = api.get("/v1/audit-events", params={"limit": 1000}).json()["audit_events"]
    launches = [e for e in trail if e["path"].endswith("/launch")]
    assert {(e["user_name"], e["status"]) for e in launches} >= {
        ("auditor-user", 201),
        ("auditor-user", 403),
        ("operator-user", 201),
    }


def test_another_projects_template_does_not_exist(api, world, sessions, root):  # type: ignore[no-untyped-def]
    made = template(api).json()
    with transaction(sessions) as session:
        other = Project(name="other", variables={})
        session.add(other)
        session.flush()
        user = User(name="other-admin", default_project_id=other.id)
        session.add(user)
        session.flush()
        session.add(RoleAssignment(user_id=user.id, project_id=other.id, role="admin"))
        token = issue_token(session, user, name="t", project_id=other.id).token
    stranger = TestClient(
        api.app, headers={"X-Auth-Project": other.id, "Authorization": f"Bearer {token}"}
    )
    for method, path, body in [
        ("GET", f"/v1/job-templates/{made['id']}", None),
        ("GET", "/v1/job-templates/nightly-audit", None),
        ("PUT", f"/v1/job-templates/{made['id']}", {"concurrency": 3}),
        ("DELETE", f"/v1/job-templates/{made['id']}", None),
        ("POST", f"/v1/job-templates/{made['id']}/launch", {"params": {"mode": "quick"}}),
    ]:
        answer = stranger.request(method, path, json=body)
        assert answer.status_code == 404, (method, path, answer.text)
    assert stranger.get("/v1/job-templates").json()["job_templates"] == []
    assert api.get(f"/v1/job-templates/{made['id']}").status_code == 200


def test_a_deleted_template_leaves_its_jobs_their_record(api, world):  # type: ignore[no-untyped-def]
    made = template(api).json()
    job = api.post("/v1/job-templates/nightly-audit/launch", json={"params": {"mode": "quick"}})
    assert api.delete(f"/v1/job-templates/{made['id']}").status_code == 204
    shown = api.get(f"/v1/jobs/{job.json()['id']}").json()
    assert shown["template_id"] == made["id"] and shown["template_params"]["mode"] == "quick"


def test_a_default_typed_as_text_is_kept_as_its_type(api, world):  # type: ignore[no-untyped-def]
    """The CLI sends ``default=2`` as text: an int parameter keeps 2, a bool true."""
    parameters = [
        {"name": "depth", "type": "int", "default": "2"},
        {"name": "dry_run", "type": "bool", "default": "yes"},
        {"name": "ticket", "type": "string", "default": "007"},
    ]
    made = template(api, parameters=parameters).json()
    assert [p["default"] for p in made["parameters"]] == [2, True, "007"]


def test_a_template_rolls_its_jobs_out_in_waves_sized_at_each_launch(api, world):  # type: ignore[no-untyped-def]
    made = template(api, waves=[1, "50%", "100%"], wave_pause="10m", wave_gate="approve")
    assert made.status_code == 201, made.text
    shown = made.json()
    assert shown["waves"] == [1, "50%", "100%"]
    assert shown["wave_pause_seconds"] == 600 and shown["wave_gate"] == "approve"
    launched = api.post(
        "/v1/job-templates/nightly-audit/launch", json={"params": {"mode": "quick"}}
    )
    assert launched.status_code == 201, launched.text
    job = launched.json()
    assert job["waves"] == [1, "50%", "100%"] and job["wave_sizes"] == [1, 1, 1]
    assert job["wave_pause_seconds"] == 600 and job["wave_gate"] == "approve"
    # Waves off again: the template's jobs roll out at once.
    cleared = api.put(
        "/v1/job-templates/nightly-audit",
        json={"waves": None, "wave_pause": None, "wave_gate": None},
    )
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["waves"] is None and cleared.json()["wave_gate"] is None


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"waves": [1, "0%"]}, "waves entry 2"),
        ({"waves": [0]}, "waves entry 1"),
        ({"wave_gate": "approve"}, "need waves"),
        ({"waves": [1], "wave_pause": "ten minutes"}, "wave_pause"),
    ],
)
def test_waves_a_launch_could_not_roll_out_are_refused_with_the_template(  # type: ignore[no-untyped-def]
    api, world, fields: dict[str, Any], named: str
):
    refused = template(api, **fields)
    assert refused.status_code in (400, 422), refused.text
    assert named in refused.json()["message"]
    assert api.get("/v1/job-templates").json()["job_templates"] == []
