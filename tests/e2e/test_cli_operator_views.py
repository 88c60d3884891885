"""What an operator sees through the ``craton`` CLI against a live server on
Docker: a build's progress, a task awaiting approval, a workflow edited as a
file, and the job list, events and exit statuses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.docker]


def _rows(table: str) -> list[dict[str, str]]:
    lines = [line for line in table.splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    return [
        dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")), strict=True))
        for line in lines[1:]
    ]


def test_the_operators_views(server, tmp_path: Path, busybox_image: str) -> None:
    craton = server.craton
    craton("cloud-create", "--name", "c")
    craton("region-create", "--name", "r", "--cloud", "c")
    craton("host-create", "--name", "h1", "--ip-address", "10.9.0.1", "--region", "r")
    task = tmp_path / "patch"
    task.mkdir()
    (task / "Dockerfile").write_text(
        "FROM craton/busybox:latest\nCOPY step.sh /step.sh\nRUN true\n"
    )
    (task / "step.sh").write_text("echo patched\n")

    # The build: its steps and the time, not the whole log, and no LABEL step.
    built = craton("task-create", "--name", "patch", "--location", str(task),
                   "--command", "sh /step.sh", "--wait")  # fmt: skip
    assert "step 1/3 FROM craton/busybox:latest" in built.stderr
    assert "step 3/3 RUN true" in built.stderr
    assert "LABEL" not in built.stderr and "intermediate container" not in built.stderr
    assert "READY (awaiting approval)" in craton("task-show", "patch").stdout
    assert "READY (awaiting approval)" in _rows(craton("task-list").stdout)[0]["status"]

    # A workflow as a file: durations, a check that writes nothing, a round trip.
    wf = tmp_path / "wf.yaml"
    wf.write_text("name: maint\nsteps:\n  - {task: patch, timeout: 5m, retry_delay: 90s}\n")
    checked = craton("workflow-validate", str(wf))
    assert checked.stderr.startswith(f"{wf} is valid: 1 step(s) (new workflow maint)")
    assert server.json("workflow-list") == []
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: [nope]\n")
    invalid = craton("workflow-validate", str(bad), check=False)
    assert invalid.returncode == 1 and "nope" in invalid.stderr
    craton("workflow-create", "--file", str(wf))
    shown = craton("workflow-show", "maint", "--format", "yaml").stdout
    assert "timeout: 300" in shown and "retry_delay: 90.0" in shown
    edited = shown.replace("timeout: 300", "timeout: 600")
    updated = subprocess.run(
        [sys.executable, "-m", "cratonclient.shell.main", "--format", "json",
         "workflow-update", "maint", "--file", "-"],
        input=edited, env=server.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert updated.returncode == 0, updated.stderr
    assert '"version": 2' in updated.stdout and '"timeout": 600' in updated.stdout

    # Jobs: refused before approval (a server's refusal exits 3), then run.
    refused = craton("job-create", "--workflow", "maint", "--host", "h1", check=False)
    assert refused.returncode == 3 and "not approved" in refused.stderr
    server.approve("patch")
    done = craton("job-create", "--workflow", "maint", "--host", "h1", "--wait", "--timeout", "1h")
    assert done.stderr.startswith("Job 1 ")
    row = _rows(craton("job-list").stdout)[0]
    assert row["workflow"] == "maint v2"
    assert row["created_by"] == server.env["OS_USERNAME"]
    assert row["hosts"] == "1/1 SUCCEEDED"
    assert row["duration"].startswith("00:00:")
    events = _rows(craton("job-events", "1").stdout)
    assert {e["host_name"] for e in events if e["kind"].startswith("run_")} == {"h1"}
    finished = craton("job-cancel", "1")
    assert finished.stderr == "Job 1 already finished (SUCCEEDED): nothing to cancel.\n"
