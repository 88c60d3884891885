"""A run whose stored log misses lines or stopped at the cap says so: in its
record (the API's run view) and in its job's events, even when it succeeded."""

from __future__ import annotations

import pytest

from craton_wf.db.engine import transaction
from craton_wf.executors.fake import FakeExecutor, FakeOutcome
from tests.factories import make_inventory, make_ready_task

GAP = "[craton] log gap: an unknown number of lines of the container's output are missing"


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return settings.model_copy(update={"run_log_max_bytes": 2048})


def run_job(api, sessions, root, start_runner, wait_job, lines):  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        hosts = [host.id for host in make_inventory(session, root.project_id, 1)]
        make_ready_task(session, root.project_id, "chatty")
    made = api.post("/v1/workflows", json={"name": "wf", "steps": ["chatty"]})
    assert made.status_code == 201, made.text
    created = api.post("/v1/jobs", json={"workflow": "wf", "hosts": hosts})
    assert created.status_code == 201, created.text
    job = created.json()
    start_runner(FakeExecutor(lambda spec: FakeOutcome(lines=lines)))
    assert wait_job(job["id"]).status == "SUCCEEDED"
    (run,) = api.get(f"/v1/jobs/{job['id']}/runs").json()["runs"]
    kinds = [e["kind"] for e in api.get(f"/v1/jobs/{job['id']}/events").json()["events"]]
    logs = api.get(f"/v1/jobs/{job['id']}/logs").json()["logs"]
    return run, kinds, logs


def test_a_gap_line_flags_the_run_and_tells_the_job(api, sessions, root, start_runner, wait_job):  # type: ignore[no-untyped-def]
    lines = [("stdout", "1"), ("system", GAP), ("stdout", "9")]
    run, kinds, logs = run_job(api, sessions, root, start_runner, wait_job, lines)
    assert run["log_gap"] is True and run["log_capped"] is False
    assert kinds.count("run_log_gap") == 1
    assert [entry["line"] for entry in logs] == ["1", GAP, "9"]


def test_the_cap_line_is_last_and_flags_the_run(api, sessions, root, start_runner, wait_job):  # type: ignore[no-untyped-def]
    lines = [("stdout", f"{i:04d} " + "x" * 95) for i in range(100)]  # 10 KB, the cap 2 KiB
    run, kinds, logs = run_job(api, sessions, root, start_runner, wait_job, lines)
    assert run["log_capped"] is True and run["log_gap"] is False
    assert kinds.count("run_log_capped") == 1
    assert logs[-1]["stream"] == "system" and logs[-1]["line"].startswith("[craton] log capped")
    assert [entry["line"][:4] for entry in logs[:-1]] == [f"{i:04d}" for i in range(len(logs) - 1)]


def test_a_whole_log_flags_nothing(api, sessions, root, start_runner, wait_job):  # type: ignore[no-untyped-def]
    run, kinds, _ = run_job(api, sessions, root, start_runner, wait_job, [("stdout", "ok")])
    assert run["log_gap"] is False and run["log_capped"] is False
    assert "run_log_gap" not in kinds and "run_log_capped" not in kinds
