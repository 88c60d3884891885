"""The single-operator mode of a lab (``CRATON_WF_REQUIRE_APPROVAL=false``) is never silent:
``serve`` logs it at start, ``/readyz`` lists it, and every ``craton`` command prints it once."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from craton_wf.api.operator_warnings import APPROVAL_OFF
from tests.e2e.conftest import start_server, stop

pytestmark = pytest.mark.e2e


def test_approval_off_is_said_in_the_log_readyz_and_the_cli(
    database_url: str, tmp_path: Path
) -> None:
    server = start_server(
        database_url, tmp_path, embedded=True, executor="fake", require_approval="false"
    )
    try:
        ready = httpx.get(f"{server.url}/readyz", timeout=10)
        assert ready.status_code == 200
        assert ready.json()["warnings"] == [APPROVAL_OFF]

        listed = server.craton("--format", "json", "host-list", "--all")
        assert listed.stdout.strip() == "[]"
        assert listed.stderr.splitlines() == [f"WARNING: {APPROVAL_OFF}"]

        failed = server.craton("host-show", "nowhere", check=False)
        assert failed.returncode == 3
        assert failed.stderr.splitlines()[0] == f"WARNING: {APPROVAL_OFF}"
        assert failed.stderr.splitlines()[-1].startswith("ERROR: ")
    finally:
        stop(server.processes)
    said = [line for line in server.log.read_text().splitlines() if APPROVAL_OFF in line]
    assert len(said) == 1 and " WARNING " in said[0], said


def test_nothing_is_said_while_approval_is_on(database_url: str, tmp_path: Path) -> None:
    server = start_server(database_url, tmp_path, embedded=True, executor="fake")
    try:
        assert httpx.get(f"{server.url}/readyz", timeout=10).json()["warnings"] == []
        assert server.craton("host-list").stderr == ""
    finally:
        stop(server.processes)
    assert "approval is off" not in server.log.read_text()
