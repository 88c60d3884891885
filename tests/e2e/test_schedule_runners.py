"""Three runner processes share one database and fire one every-minute schedule:
each fire is exactly one job, and a runner SIGKILLed meanwhile changes nothing
(the others go on firing). Real minutes: the test waits for three minute
boundaries at most (marked e2e; the fake executor runs the jobs)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from craton_wf.db.engine import make_engine, make_session_factory, transaction
from craton_wf.settings import Settings
from tests.e2e.conftest import Server, start_server, stop
from tests.factories import make_inventory, make_ready_task

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]


def launched(server: Server) -> list[dict]:
    fires = server.json("schedule-fires", "every-minute")
    return [f for f in fires if f["outcome"] == "launched"]  # type: ignore[union-attr,index]


def wait_for_fires(server: Server, count: int, seconds: float) -> list[dict]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        fires = launched(server)
        if len(fires) >= count:
            return fires
        time.sleep(2)
    raise AssertionError(f"fewer than {count} fires within {seconds} s: {launched(server)}")


def test_three_runners_one_job_per_fire_and_a_killed_runner(
    database_url: str, tmp_path: Path
) -> None:
    server = start_server(database_url, tmp_path, embedded=False, executor="fake")
    engine = make_engine(Settings(database_url=database_url))
    try:
        for index in (2, 3):
            server.processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "craton_wf.cli", "runner", "--name", f"e2e-{index}"],
                    env=server.env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        with transaction(make_session_factory(engine)) as session:
            project = server.env["OS_PROJECT_ID"]
            make_inventory(session, project, 2)
            make_ready_task(session, project, "disk-audit", command="audit", kind="audit")
        server.json("template-create", "disks", "--task", "disk-audit", "--label", "compute")
        server.json("schedule-create", "every-minute", "--template", "disks", "--cron", "* * * * *")

        first = wait_for_fires(server, 2, 150)
        os.kill(server.processes[-1].pid, signal.SIGKILL)  # a runner dies
        fires = wait_for_fires(server, len(first) + 1, 90)

        times = [datetime.fromisoformat(f["fire_time"]) for f in fires]
        assert len(set(times)) == len(times)  # one row per fire time
        gaps = sorted(times)
        assert all((b - a).total_seconds() == 60 for a, b in zip(gaps, gaps[1:], strict=False))
        jobs = server.json("job-list", "--all")
        assert sorted(j["id"] for j in jobs) == sorted(f["job_id"] for f in fires)  # type: ignore[union-attr,index]
    finally:
        stop(server.processes)
        engine.dispose()
