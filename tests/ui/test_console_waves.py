"""The job page of a rollout paused at its wave gate: a Resume button for those who may."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from craton_wf.db.engine import transaction
from craton_wf.domain.states import JobStatus
from craton_wf.executors.fake import FakeExecutor
from tests.factories import make_inventory, make_ready_task
from tests.ui.conftest import Browser
from tests.unit.conftest import start_runner, wait_job  # noqa: F401 - fixtures


def test_resume_from_the_page_starts_the_next_wave(
    signed_in: Browser,
    api: TestClient,
    sessions: Any,
    root: Any,
    start_runner: Any,  # noqa: F811
    wait_job: Any,  # noqa: F811
) -> None:
    with transaction(sessions) as session:
        make_inventory(session, root.project_id, 3)
        make_ready_task(session, root.project_id, "patch")
    created = api.post(
        "/v1/jobs",
        json={"task": "patch", "hosts": ["host-000", "host-001", "host-002"],
              "waves": [1, "100%"], "wave_gate": "approve"},
    )  # fmt: skip
    job_id = created.json()["id"]
    assert 'id="resume"' not in signed_in.get(f"/ui/jobs/{job_id}").text  # not paused yet
    start_runner(FakeExecutor())
    wait_job(job_id, states=[JobStatus.PAUSED])
    page = signed_in.get(f"/ui/jobs/{job_id}").text
    assert "Resume: start wave 2/2" in page and 'id="cancel"' in page
    without = signed_in.post(f"/ui/jobs/{job_id}/resume", csrf=None)
    assert without.status_code == 403 and "CSRF" in without.text
    answer = signed_in.post(f"/ui/jobs/{job_id}/resume")
    assert answer.status_code == 303
    assert "Resumed: wave 2 started." in signed_in.get(answer.headers["location"]).text
    assert wait_job(job_id).status == "SUCCEEDED"
    again = signed_in.post(f"/ui/jobs/{job_id}/resume")
    assert again.status_code == 409
