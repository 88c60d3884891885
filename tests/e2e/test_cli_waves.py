"""A rollout in waves from the ``craton`` CLI against a live server (fake executor):
``job-create --waves 1,25%,100% --wave-gate approve`` pauses after each wave until
``job-resume``; ``job-abort`` ends a paused job; bad waves are an ``ERROR``."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from craton_wf.db.engine import make_engine, make_session_factory, transaction
from craton_wf.settings import Settings
from tests.e2e.conftest import Server, start_server, stop
from tests.factories import make_inventory, make_ready_task

pytestmark = pytest.mark.e2e


def _prepare(database_url: str, project_id: str, hosts: int) -> list[str]:
    engine = make_engine(Settings(database_url=database_url))
    try:
        with transaction(make_session_factory(engine)) as session:
            made = [h.name for h in make_inventory(session, project_id, hosts)]
            make_ready_task(session, project_id, "patch", command="true")
    finally:
        engine.dispose()
    return made


def _wait_status(server: Server, job_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        job: Any = server.json("job-show", job_id)
        if job["status"] == status:
            return job
        assert time.monotonic() < deadline, f"job {job_id} stayed {job['status']}"
        time.sleep(0.2)


def _host_statuses(server: Server, job_id: str) -> list[str]:
    hosts: Any = server.json("job-hosts", job_id)
    return [h["status"] for h in hosts]


def test_a_gated_rollout_pauses_after_each_wave_until_job_resume(
    database_url: str, tmp_path: Path
) -> None:
    server = start_server(database_url, tmp_path, embedded=True, executor="fake")
    try:
        hosts = _prepare(database_url, server.env["OS_PROJECT_ID"], 8)
        created: Any = server.json(
            "job-create", "--task", "patch", "--host", *hosts, "--concurrency", "8",
            "--waves", "1,25%,100%", "--wave-gate", "approve",
        )  # fmt: skip
        job_id = str(created["id"])
        assert created["wave_sizes"] == [1, 2, 5]

        _wait_status(server, job_id, "PAUSED")
        assert _host_statuses(server, job_id) == ["SUCCEEDED"] + ["PENDING"] * 7
        shown = server.craton("job-show", job_id).stdout
        assert "PAUSED" in shown

        server.craton("job-resume", job_id)
        paused = _wait_status(server, job_id, "PAUSED")
        assert paused["current_wave"] == 2
        assert _host_statuses(server, job_id) == ["SUCCEEDED"] * 3 + ["PENDING"] * 5

        waited = server.craton("job-resume", job_id, "--wait")
        assert "SUCCEEDED" in waited.stdout + waited.stderr
        assert _host_statuses(server, job_id) == ["SUCCEEDED"] * 8

        again = server.craton("job-resume", job_id, check=False)
        assert again.returncode == 3  # the server refused (exit 1 is a usage error)
        assert again.stderr.strip().splitlines()[-1].startswith("ERROR: ")
        assert "not PAUSED" in again.stderr

        events: Any = server.json("job-events", job_id)
        kinds = [e["kind"] for e in events if e["kind"] in ("wave_started", "job_paused")]
        assert kinds == ["wave_started", "job_paused", "wave_started", "job_paused", "wave_started"]
    finally:
        stop(server.processes)


def test_wait_progress_says_the_job_waits_for_job_resume_and_abort_ends_it(
    database_url: str, tmp_path: Path
) -> None:
    server = start_server(database_url, tmp_path, embedded=True, executor="fake")
    try:
        hosts = _prepare(database_url, server.env["OS_PROJECT_ID"], 3)
        bad = server.craton(
            "job-create", "--task", "patch", "--host", *hosts, "--waves", "1,0%", check=False
        )
        assert bad.returncode == 3  # refused by the server, naming the entry
        assert "ERROR: " in bad.stderr and "waves entry 2 ('0%')" in bad.stderr

        watch = subprocess.Popen(
            [sys.executable, "-m", "cratonclient.shell.main", "job-create", "--task", "patch",
             "--host", *hosts, "--waves", "1,100%", "--wave-gate", "approve", "--wait"],
            env=server.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert watch.stderr is not None
        seen = []
        for line in watch.stderr:  # one line per change: not a terminal
            seen.append(line)
            if "waiting for job-resume" in line:
                break
        assert seen, "no progress"
        assert "PAUSED: waiting for job-resume (wave 1/2 done)" in seen[-1], seen
        job_id = seen[-1].split()[1]
        assert "hosts 2 PENDING, 1 SUCCEEDED" in seen[-1]

        aborted: Any = server.json("job-abort", job_id)
        assert aborted["status"] == "CANCELLED"
        assert aborted["message"].startswith("aborted by ")
        out, err = watch.communicate(timeout=60)
        assert "CANCELLED" in out + err
        assert _host_statuses(server, job_id) == ["SUCCEEDED", "CANCELLED", "CANCELLED"]
    finally:
        stop(server.processes)
