"""``craton-wf serve --workers 2``: the API in two processes, one embedded runner.

Requests land in either worker; a job created in one is run by the runner of
the parent process, woken at once (its poll is set far longer than the test);
``/v1/runners`` lists one runner; SIGTERM stops the whole server cleanly.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from bench.host_pages import bootstrap, environment, serve
from craton_wf.db.engine import make_engine, make_session_factory, transaction
from craton_wf.db.models import RunnerRecord
from craton_wf.settings import Settings
from tests.e2e.conftest import stop
from tests.factories import make_inventory, make_ready_task

pytestmark = [pytest.mark.e2e]


def test_two_workers_answer_and_one_runner_runs_their_jobs(
    database_url: str, tmp_path: Path
) -> None:
    env = environment(database_url, tmp_path, runner_poll_seconds="60")  # only a wake-up is in time
    server = serve(env, bootstrap(env), tmp_path / "serve.log", "--workers", "2")
    process, url, headers = server.process, server.url, server.headers
    try:
        engine = make_engine(Settings(database_url=database_url))
        with transaction(make_session_factory(engine)) as session:
            project_id = headers["X-Auth-Project"]
            hosts = [h.id for h in make_inventory(session, project_id, 3)]
            make_ready_task(session, project_id, "ready")
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            assert all(client.get("/v1/hosts").status_code == 200 for _ in range(4))
            workers = {
                child
                for child in _children(process.pid)
                if "multiprocessing.spawn" in _command_line(child)
            }
            assert len(workers) == 2, workers
            started = time.monotonic()
            job = client.post("/v1/jobs", json={"task": "ready", "hosts": hosts})
            assert job.status_code == 201, job.text
            while (status := client.get(f"/v1/jobs/{job.json()['id']}").json()["status"]) not in (
                "SUCCEEDED",
                "FAILED",
            ):
                assert time.monotonic() - started < 30, f"the job stayed {status}"
                time.sleep(0.1)
            assert status == "SUCCEEDED"
            runners = client.get("/v1/runners").json()["runners"]
            assert [r["pid"] for r in runners] == [process.pid], runners
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        assert not _children(process.pid)
        log = (tmp_path / "serve.log").read_text()
        assert "Traceback" not in log
        with transaction(make_session_factory(engine)) as session:
            stopped = session.execute(select(RunnerRecord.stopped_at)).scalars().all()
        assert len(stopped) == 1 and stopped[0] is not None  # the runner recorded its stop
        engine.dispose()
    finally:
        stop([process])


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            return [int(child) for child in children.read().split()]
    except FileNotFoundError:
        return []


def _command_line(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""
