"""Rollout waves through the API: what is refused, resume and abort, who may, the audit trail."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from craton_wf.db.engine import transaction
from craton_wf.domain.states import JobStatus
from craton_wf.executors.fake import FakeExecutor
from tests.factories import make_inventory, make_ready_task


@pytest.fixture
def client_as(api, root):  # type: ignore[no-untyped-def]
    """A client acting as a new user holding ``role`` in the root's project."""

    def make(role: str) -> TestClient:
        name = f"{role}-user"
        assert api.post("/v1/users", json={"name": name, "role": role}).status_code == 201
        token = api.post("/v1/tokens", json={"user": name, "name": "test"}).json()["token"]
        headers = {"X-Auth-Project": root.project_id, "Authorization": f"Bearer {token}"}
        return TestClient(api.app, headers=headers)

    return make


@pytest.fixture
def hosts(sessions, root) -> list[int]:  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        made = make_inventory(session, root.project_id, 4)
        make_ready_task(session, root.project_id, "patch", command="true")
        return [h.id for h in made]


def launch(client: TestClient, hosts: list[int], **waves: Any) -> Any:
    return client.post(
        "/v1/jobs", json={"task": "patch", "hosts": hosts, "concurrency": 4, **waves}
    )


@pytest.mark.parametrize(
    ("waves", "named"),
    [
        ({"waves": [1, 0]}, "waves entry 2 (0)"),
        ({"waves": ["150%"]}, "waves entry 1 ('150%')"),
        ({"waves": ["0%", "100%"]}, "waves entry 1 ('0%')"),
        ({"waves": [1, "half"]}, "waves entry 2 ('half')"),
        ({"waves": [1], "wave_pause": "10 minutes"}, "wave_pause ('10 minutes')"),
        ({"wave_pause": "10m"}, "need waves"),
    ],
)
def test_bad_waves_are_refused_naming_the_entry(api, hosts, waves, named):  # type: ignore[no-untyped-def]
    answer = launch(api, hosts, **waves)
    assert answer.status_code == 422, answer.text
    assert named in answer.json()["message"]
    assert answer.json()["status"] == 422


@pytest.mark.parametrize(
    "waves",
    [{"waves": []}, {"waves": [1, True]}, {"waves": [1.5]}, {"waves": [1], "wave_gate": "later"}],
)
def test_malformed_waves_are_refused_by_the_schema(api, hosts, waves):  # type: ignore[no-untyped-def]
    answer = launch(api, hosts, **waves)
    assert answer.status_code == 422, answer.text
    assert answer.json()["message"]


def test_a_job_shows_its_waves(api, hosts):  # type: ignore[no-untyped-def]
    job = launch(api, hosts, waves=[1, "50%", "100%"], wave_pause="10m", wave_gate="approve")
    assert job.status_code == 201, job.text
    shown = api.get(f"/v1/jobs/{job.json()['id']}").json()
    assert shown["waves"] == [1, "50%", "100%"]
    assert shown["wave_sizes"] == [1, 2, 1]  # half of the 3 left, rounded up; then the rest
    assert shown["current_wave"] == 1
    assert shown["wave_pause_seconds"] == 600 and shown["wave_gate"] == "approve"
    plain = api.get(f"/v1/jobs/{launch(api, hosts).json()['id']}").json()
    assert plain["wave_sizes"] is None and plain["current_wave"] == 0


def test_resume_is_refused_unless_the_job_is_paused(api, hosts, start_runner, wait_job):  # type: ignore[no-untyped-def]
    job = launch(api, hosts, waves=[1, "100%"]).json()
    refused = api.post(f"/v1/jobs/{job['id']}/resume")
    assert refused.status_code == 409, refused.text
    assert "not PAUSED" in refused.json()["message"]
    start_runner(FakeExecutor())
    assert wait_job(job["id"]).status == "SUCCEEDED"
    assert api.post(f"/v1/jobs/{job['id']}/resume").status_code == 409
    assert api.post("/v1/jobs/999999/resume").status_code == 404


def test_a_gated_job_pauses_resumes_and_is_audited(  # type: ignore[no-untyped-def]
    api, client_as, hosts, start_runner, wait_job
):
    job = launch(api, hosts, waves=[1, "100%"], wave_gate="approve").json()
    start_runner(FakeExecutor())
    assert wait_job(job["id"], states=[JobStatus.PAUSED]).status == "PAUSED"
    assert client_as("auditor").post(f"/v1/jobs/{job['id']}/resume").status_code == 403
    resumed = client_as("operator").post(f"/v1/jobs/{job['id']}/resume")
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["status"] == "RUNNING" and resumed.json()["current_wave"] == 2
    assert wait_job(job["id"]).status == "SUCCEEDED"
    events = api.get(f"/v1/jobs/{job['id']}/events").json()["events"]
    kinds = [e["kind"] for e in events if e["kind"].startswith(("wave_", "job_paused", "job_re"))]
    assert kinds == ["wave_started", "wave_finished", "job_paused", "job_resumed", "wave_started"]
    resumed_by = [e["message"] for e in events if e["kind"] == "job_resumed"]
    assert resumed_by == ["resumed by operator-user"]
    audit = api.get("/v1/audit-events", params={"object_type": "job"}).json()["audit_events"]
    assert [(e["action"], e["user_name"], e["status"]) for e in audit[:2]] == [
        ("job.resume", "operator-user", 200),
        ("job.resume", "auditor-user", 403),
    ]


def test_abort_ends_a_paused_job_and_its_hosts_left_never_run(  # type: ignore[no-untyped-def]
    api, hosts, start_runner, wait_job
):
    job = launch(api, hosts, waves=[1, "100%"], wave_gate="approve").json()
    executor = FakeExecutor()
    start_runner(executor)
    wait_job(job["id"], states=[JobStatus.PAUSED])
    aborted = api.post(f"/v1/jobs/{job['id']}/abort")
    assert aborted.status_code == 202, aborted.text
    assert aborted.json()["status"] == "CANCELLED"
    assert aborted.json()["message"].startswith("aborted by root")
    statuses = [h["status"] for h in api.get(f"/v1/jobs/{job['id']}/hosts").json()["hosts"]]
    assert statuses == ["SUCCEEDED", "CANCELLED", "CANCELLED", "CANCELLED"]
    assert len(executor.created) == 1
    again = api.post(f"/v1/jobs/{job['id']}/abort")
    assert again.status_code == 409 and "finished" in again.json()["message"]
    actions = [
        (e["action"], e["status"])
        for e in api.get("/v1/audit-events", params={"object_type": "job"}).json()["audit_events"]
    ]
    assert actions[:2] == [("job.abort", 409), ("job.abort", 202)]


def test_a_retry_rolls_out_in_the_same_waves(api, hosts, start_runner, wait_job):  # type: ignore[no-untyped-def]
    job = launch(api, hosts, waves=[1, "100%"], wave_pause=1).json()
    start_runner(FakeExecutor())
    assert wait_job(job["id"]).status == "SUCCEEDED"
    retry = api.post(f"/v1/jobs/{job['id']}/retry").json()
    assert retry["waves"] == [1, "100%"] and retry["wave_sizes"] == [1, 3]
    assert retry["wave_pause_seconds"] == 1
    assert wait_job(retry["id"]).status == "SUCCEEDED"
