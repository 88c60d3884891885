"""Stopping ``craton-wf serve`` (SIGTERM, as systemd or ``docker stop`` do, and
SIGINT, a Ctrl-C) stops its embedded runner the way a ``craton-wf runner``
stops: it records its stop and hands its running work over at once, so the
next runner adopts the container instead of waiting for the lease to run out."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.e2e.conftest import Server, start_server, stop, wait_ready

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

SLOW_STEP = """#!/bin/sh
echo "line 1"
sleep 6
echo "line 2"
"""


def _serve_again(first: Server) -> subprocess.Popen[bytes]:
    """A second ``craton-wf serve`` on the same database and port."""
    log = first.log.with_name("serve-again.log")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "craton_wf.cli", "serve"],
            env=first.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    wait_ready(first.url, [process], log)
    return process


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stopping_serve_hands_its_running_work_over_at_once(
    database_url: str, tmp_path: Path, busybox_image: str, signum: int
) -> None:
    # A lease far longer than the test: only a handover lets the next runner in.
    server = start_server(
        database_url, tmp_path, embedded=True, lease_seconds="300", shutdown_grace_seconds="1"
    )
    again = None
    try:
        craton = server.craton
        craton("cloud-create", "--name", "c")
        craton("region-create", "--name", "r", "--cloud", "c")
        craton("host-create", "--name", "h1", "--ip-address", "10.9.0.1", "--region", "r")
        task = tmp_path / "slow"
        task.mkdir()
        (task / "Dockerfile").write_text("FROM craton/busybox:latest\nCOPY step.sh /step.sh\n")
        (task / "step.sh").write_text(SLOW_STEP)
        craton(
            "task-create",
            "--name",
            "slow",
            "--location",
            str(task),
            "--command",
            "sh /step.sh",
            "--wait",
        )
        server.approve("slow")
        job = server.json("job-create", "--task", "slow", "--host", "h1")
        job_id = str(job["id"])  # type: ignore[index]
        first_runner = server.json("runner-list")[0]["id"]  # type: ignore[index]
        deadline = time.monotonic() + 60
        while "line 1" not in craton("job-logs", job_id).stdout:
            assert time.monotonic() < deadline, "the step did not start"
            time.sleep(0.2)

        serve = server.processes[0]
        serve.send_signal(signum)
        assert serve.wait(timeout=30) == 0
        assert "Traceback" not in server.log.read_text()

        again = _serve_again(server)
        gone = server.json("runner-list", "--gone")
        assert [r["id"] for r in gone] == [first_runner] and gone[0]["stopped_at"]  # type: ignore[index]
        alive = server.json("runner-list", "--alive")
        assert len(alive) == 1 and alive[0]["id"] != first_runner  # type: ignore[index, arg-type]
        deadline = time.monotonic() + 60  # far sooner than the 300 s lease
        while (status := server.json("job-show", job_id)["status"]) not in (  # type: ignore[index]
            "SUCCEEDED",
            "FAILED",
        ):
            assert time.monotonic() < deadline, f"the job stayed {status}"
            time.sleep(0.3)
        assert status == "SUCCEEDED"
        events = server.json("job-events", job_id)
        adopted = [e for e in events if e["kind"] == "run_adopted"]  # type: ignore[union-attr]
        assert len(adopted) == 1 and adopted[0]["data"]["previous_runner"] == first_runner
        logs = craton("job-logs", job_id).stdout
        assert logs.count("line 1") == 1 and logs.count("line 2") == 1
        # The adopting runner removes the container once its outcome is stored.
        deadline = time.monotonic() + 30
        while _containers(server):
            assert time.monotonic() < deadline, "the finished run's container was not removed"
            time.sleep(0.2)
    finally:
        stop([*server.processes, *([again] if again else [])])
        for container in _containers(server):
            container.remove(force=True)


def _containers(server: Server) -> list[Any]:
    """The containers of the server's project (its id is unique: tests share the engine)."""
    return docker.from_env().containers.list(
        ignore_removed=True,
        all=True,
        filters={"label": f"craton.project={server.env['OS_PROJECT_ID']}"},
    )
