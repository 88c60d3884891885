"""``/metrics`` of a live ``craton-wf serve``, scraped before and after a real job.

The server runs two API worker processes and its runner in the parent, tasks
run in containers on the local Docker engine: whichever worker answers a
scrape, it tells the same figures, which moved by exactly what the job did.
A standalone ``craton-wf runner`` serves its own figures on its metrics port.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from craton_wf.db.engine import make_engine, make_session_factory, transaction
from craton_wf.settings import Settings
from tests.e2e.conftest import Server, free_port, start_server, stop
from tests.factories import make_inventory, make_ready_task
from tests.unit.test_metrics import Samples, parse, value

pytestmark = [pytest.mark.e2e]

# The payload is the last argument: sh's $0. host-001 fails after its third line.
SCRIPT = 'echo "$0" | cut -c1-40; echo two; echo three; case "$0" in *host-001*) exit 3;; esac'


def _headers(server: Server) -> dict[str, str]:
    return {
        "X-Auth-Project": server.env["OS_PROJECT_ID"],
        "X-Auth-User": server.env["OS_USERNAME"],
        "X-Auth-Token": server.env["OS_PASSWORD"],
    }


def _prepare(database_url: str, project_id: str, **task: Any) -> list[int]:
    engine = make_engine(Settings(database_url=database_url))
    try:
        with transaction(make_session_factory(engine)) as session:
            hosts = [host.id for host in make_inventory(session, project_id, 3)]
            make_ready_task(session, project_id, "patch", **task)
    finally:
        engine.dispose()
    return hosts


def _run_job(client: httpx.Client, hosts: list[int]) -> tuple[dict[str, Any], int]:
    """The finished job, and how many times it was asked for."""
    created = client.post(
        "/v1/jobs", json={"task": "patch", "hosts": hosts, "concurrency": 3, "max_failures": 3}
    )
    assert created.status_code == 201, created.text
    deadline, polls = time.monotonic() + 120, 0
    while True:
        job = client.get(f"/v1/jobs/{created.json()['id']}").json()
        polls += 1
        if job["status"] in ("SUCCEEDED", "FAILED"):
            return job, polls
        assert time.monotonic() < deadline, f"the job stayed {job['status']}"
        time.sleep(0.2)


def _scrape(url: str) -> Samples:
    answer = httpx.get(url, timeout=30)
    assert answer.status_code == 200, answer.text
    return parse(answer.text)


@pytest.mark.docker
def test_a_scrape_of_any_worker_tells_what_the_job_did(
    database_url: str, tmp_path: Path, busybox_image: str
) -> None:
    server = start_server(
        database_url, tmp_path, embedded=True, workers="2", metrics_cache_seconds="0"
    )
    try:
        hosts = _prepare(
            database_url,
            server.env["OS_PROJECT_ID"],
            command=["sh", "-c", SCRIPT],
            image=busybox_image,
        )
        metrics = f"{server.url}/metrics"
        before = _scrape(metrics)
        with httpx.Client(base_url=server.url, headers=_headers(server), timeout=30) as client:
            job, polls = _run_job(client, hosts)
            runs = client.get(f"/v1/jobs/{job['id']}/runs").json()["runs"]
            logs = client.get(f"/v1/jobs/{job['id']}/logs", params={"limit": 1000}).json()["logs"]
        assert sorted(run["status"] for run in runs) == ["FAILED", "SUCCEEDED", "SUCCEEDED"]
        assert len(logs) == 9  # three lines printed on each of three hosts
        # Several scrapes land on either worker: each tells the same.
        scrapes = [_scrape(metrics) for _ in range(6)]
        after = scrapes[0]

        def moved(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        for name, labels in (
            ("craton_runs_finished_total", {"status": "SUCCEEDED"}),
            ("craton_log_lines_stored_total", {}),
            ("craton_container_start_seconds_count", {"executor": "docker"}),
            (
                "craton_http_requests_total",
                {"method": "POST", "route": "/v1/jobs", "status": "201"},
            ),
        ):
            assert {value(s, name, **labels) for s in scrapes} == {value(after, name, **labels)}
        assert moved("craton_runs_finished_total", status="SUCCEEDED") == 2
        assert moved("craton_runs_finished_total", status="FAILED") == 1
        assert moved("craton_jobs_finished_total", status=job["status"]) == 1
        assert moved("craton_log_lines_stored_total") == 9
        assert moved("craton_log_bytes_stored_total") == sum(len(e["line"].encode()) for e in logs)
        assert moved("craton_container_start_seconds_count", executor="docker") == 3
        assert moved("craton_run_duration_seconds_count", outcome="SUCCEEDED") == 2
        assert moved("craton_run_duration_seconds_count", outcome="FAILED") == 1
        assert (
            moved("craton_http_requests_total", method="POST", route="/v1/jobs", status="201") == 1
        )
        # the job's polls, each counted by whichever worker answered it
        polls_route = {"method": "GET", "route": "/v1/jobs/{job_id}", "status": "200"}
        assert moved("craton_http_requests_total", **polls_route) == polls
        assert (
            moved(
                "craton_http_request_duration_seconds_count",
                method="GET",
                route="/v1/jobs/{job_id}",
            )
            == polls
        )
        assert value(after, "craton_runners_alive") == 1
        assert value(after, "craton_runs", status="RUNNING") == 0
        figures = Path(tempfile.gettempdir()) / f"craton-wf-metrics-{server.processes[0].pid}"
        assert figures.is_dir() and any(figures.iterdir())  # the workers' shared figures
    finally:
        stop(server.processes)
    assert not figures.exists()  # they go with the server


def test_a_standalone_runner_serves_its_own_figures(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    server = start_server(
        database_url, tmp_path, embedded=False, executor="fake", runner_metrics_port=str(port)
    )
    try:
        runner_metrics = f"http://127.0.0.1:{port}/metrics"
        before = _scrape(runner_metrics)
        hosts = _prepare(database_url, server.env["OS_PROJECT_ID"])
        with httpx.Client(base_url=server.url, headers=_headers(server), timeout=30) as client:
            job, _ = _run_job(client, hosts)
        after = _scrape(runner_metrics)
        assert job["status"] == "SUCCEEDED"
        assert (
            value(after, "craton_run_duration_seconds_count", outcome="SUCCEEDED")
            - value(before, "craton_run_duration_seconds_count", outcome="SUCCEEDED")
            == 3
        )
        assert (
            value(after, "craton_log_lines_stored_total")
            - value(before, "craton_log_lines_stored_total")
            == 3
        )  # the fake container prints its payload
        assert value(after, "process_resident_memory_bytes") > 0
        assert not any(name.startswith("craton_http") for name, _ in after)  # the API's
        api = _scrape(f"{server.url}/metrics")
        assert value(api, "craton_runs_finished_total", status="SUCCEEDED") == 3
        assert value(api, "craton_run_duration_seconds_count", outcome="SUCCEEDED") == 0
    finally:
        stop(server.processes)


def test_a_runner_whose_metrics_port_is_taken_refuses_to_start(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "craton_wf.cli", "runner", "--metrics-port", str(port)],
            env={
                **os.environ,
                "CRATON_WF_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
                "CRATON_WF_EXECUTOR": "fake",
                "CRATON_WF_DATA_DIR": str(tmp_path / "data"),
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert done.stderr.startswith(f"ERROR: cannot serve the runner's metrics on 127.0.0.1:{port}")
    assert "Traceback" not in done.stderr
