"""Watching and stopping jobs from the ``craton`` CLI against a live server on
Docker: a cancel stops a task without a signal handler at once, and a
``--follow`` outlives a restart of the server."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import Server, start_server, stop, wait_ready

pytestmark = [pytest.mark.e2e, pytest.mark.docker]


def _inventory_and_task(server: Server, tmp_path: Path, name: str, script: str) -> None:
    craton = server.craton
    craton("cloud-create", "--name", "c")
    craton("region-create", "--name", "r", "--cloud", "c")
    craton("host-create", "--name", "h1", "--ip-address", "10.9.0.1", "--region", "r")
    task = tmp_path / name
    task.mkdir()
    (task / "Dockerfile").write_text("FROM craton/busybox:latest\nCOPY step.sh /step.sh\n")
    (task / "step.sh").write_text(script)
    craton("task-create", "--name", name, "--location", str(task), "--command", "sh /step.sh",
           "--wait")  # fmt: skip
    server.approve(name)


def _wait_for_log(server: Server, job_id: str, text: str) -> None:
    deadline = time.monotonic() + 60
    while text not in server.craton("job-logs", job_id).stdout:
        assert time.monotonic() < deadline, f"no {text!r} in job {job_id}'s log"
        time.sleep(0.2)


def test_cancel_stops_a_task_that_ignores_sigterm_well_within_the_grace(
    database_url: str, tmp_path: Path, busybox_image: str
) -> None:
    # busybox sh as PID 1 would ignore SIGTERM and wait out the 30 s grace.
    server = start_server(database_url, tmp_path, embedded=True, stop_grace_seconds="30")
    try:
        _inventory_and_task(server, tmp_path, "sleeper", "echo started\nsleep 300\n")
        job_id = str(server.json("job-create", "--task", "sleeper", "--host", "h1")["id"])  # type: ignore[index]
        _wait_for_log(server, job_id, "started")

        started = time.monotonic()
        server.craton("job-cancel", job_id)
        while server.json("job-show", job_id)["status"] != "CANCELLED":  # type: ignore[index]
            assert time.monotonic() - started < 15, "the cancel waited for the grace"
            time.sleep(0.2)
        again = server.craton("job-cancel", job_id)
    finally:
        stop(server.processes)

    assert again.stderr == f"Job {job_id} already finished (CANCELLED): nothing to cancel.\n"


def test_follow_reconnects_across_a_server_restart_and_exits_0(
    database_url: str, tmp_path: Path, busybox_image: str
) -> None:
    server = start_server(database_url, tmp_path, embedded=True, shutdown_grace_seconds="1")
    again = None
    try:
        script = "echo before\nsleep 8\necho after\n"
        _inventory_and_task(server, tmp_path, "slow", script)
        follow = subprocess.Popen(
            [sys.executable, "-m", "cratonclient.shell.main", "job-create", "--task", "slow",
             "--host", "h1", "--follow"],
            env=server.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(1)
        _wait_for_log(server, "1", "before")
        stop(server.processes)  # the server goes away while the job runs
        time.sleep(2)
        log = server.log.with_name("serve-again.log")
        with log.open("wb") as out:
            again = subprocess.Popen(
                [sys.executable, "-m", "craton_wf.cli", "serve"],
                env=server.env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_ready(server.url, [again], log)
        out, err = follow.communicate(timeout=120)
    finally:
        stop([*server.processes, *([again] if again else [])])

    assert follow.returncode == 0, err
    assert err.startswith("Job 1 ")  # the job's id before anything else
    assert "Lost the server (Cannot reach the craton server" in err
    assert "Reconnected." in err
    lines = out.splitlines()
    assert "[h1 slow] before" in lines and "[h1 slow] after" in lines
    assert lines.count("[h1 slow] before") == 1  # nothing printed twice
