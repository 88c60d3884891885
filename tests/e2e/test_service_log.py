"""The service log as an operator reads it: a line per build, job and run state
change at INFO, the API's access log governed by ``--log-level``, and
``--log-format json`` giving one JSON object per line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import start_server, stop

pytestmark = [pytest.mark.e2e, pytest.mark.docker]


def _task(tmp_path: Path) -> Path:
    directory = tmp_path / "hello"
    directory.mkdir()
    (directory / "Dockerfile").write_text("FROM craton/busybox:latest\n")
    return directory


def test_json_log_has_each_state_change_and_the_access_log(
    database_url: str, tmp_path: Path, busybox_image: str
) -> None:
    server = start_server(
        database_url, tmp_path, embedded=True, log_format="json", require_approval="false"
    )
    try:
        server.craton("cloud-create", "--name", "c")
        server.craton("region-create", "--name", "r", "--cloud", "c")
        server.craton("host-create", "--name", "h1", "--ip-address", "10.0.0.1", "--region", "r")
        server.craton(
            "task-create", "--name", "hello", "--location", str(_task(tmp_path)),
            "--command", "echo hi", "--wait",
        )  # fmt: skip
        server.craton("job-create", "--task", "hello", "--host", "h1", "--wait")
    finally:
        stop(server.processes)

    lines = server.log.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert {"ts", "level", "logger", "message"} <= set(records[0])
    messages = [(r["level"], r["logger"], r["message"]) for r in records]
    states = [m for level, _, m in messages if level == "INFO"]
    assert any(m.startswith("build 1 (task 1, number 1): BUILDING -> READY") for m in states)
    assert "job 1: RUNNING -> SUCCEEDED" in states
    assert any(
        m.startswith("run 1 (job 1, step hello, attempt 1): ") and m.endswith("-> SUCCEEDED")
        for m in states
    )
    access = [m for _, logger, m in messages if logger == "uvicorn.access"]
    assert any('"POST /v1/jobs HTTP/1.1" 201' in m for m in access)


def test_at_warning_there_is_no_access_log(database_url: str, tmp_path: Path) -> None:
    server = start_server(database_url, tmp_path, embedded=True, log_level="WARNING")
    try:
        server.craton("host-list")
    finally:
        stop(server.processes)

    log = server.log.read_text()
    assert "GET /v1/hosts" not in log
    assert " INFO " not in log
