"""The whole central path through the ``craton`` CLI against a live server on Docker:
inventory, tasks built from a directory and from git, a workflow, jobs, logs, errors."""

from __future__ import annotations

import json
from pathlib import Path

import git
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

STEP_SCRIPT = """#!/bin/sh
# $1 is the payload; print it, and fail when the host says so.
echo "step {name} running"
echo "payload $1"
echo "to stderr" >&2
case "$1" in *'"fail_{name}":true'*) echo "failing as asked" >&2; exit 4;; esac
echo '::craton-output:: {{"{name}": "done"}}'
"""


def task_dir(root: Path, name: str) -> Path:
    directory = root / name
    directory.mkdir(parents=True)
    (directory / "Dockerfile").write_text(
        "FROM craton/busybox:latest\nCOPY step.sh /craton/step.sh\n"
    )
    (directory / "step.sh").write_text(STEP_SCRIPT.format(name=name))
    return directory


def test_operator_path_through_the_cli(server, tmp_path, busybox_image):
    craton = server.craton
    craton("cloud-create", "--name", "lab")
    craton("region-create", "--name", "dc1", "--cloud", "lab")
    craton("cell-create", "--name", "rack1", "--region", "dc1")
    craton("region-vars-set", "dc1", "ntp=10.0.0.1")
    for index in range(3):
        craton(
            "host-create",
            "--name",
            f"node{index}",
            "--ip-address",
            f"10.1.0.{index}",
            "--region",
            "dc1",
            "--cell",
            "rack1",
            "--label",
            "compute",
        )
    craton("host-vars-set", "node1", "fail_second=true")
    hosts = server.json("host-list", "--label", "compute")
    assert [h["name"] for h in hosts] == ["node0", "node1", "node2"]

    first = task_dir(tmp_path, "first")
    craton(
        "task-create",
        "--name",
        "first",
        "--location",
        str(first),
        "--command",
        "sh /craton/step.sh",
        "--wait",
    )
    repo_dir = tmp_path / "repo"
    second = task_dir(repo_dir, "second")
    repo = git.Repo.init(repo_dir)
    repo.index.add([str(p.relative_to(repo_dir)) for p in second.iterdir()])
    repo.index.commit("second task")
    craton(
        "task-create",
        "--name",
        "second",
        "--location",
        f"file://{repo_dir}",
        "--subdir",
        "second",
        "--command",
        "sh /craton/step.sh",
        "--wait",
    )
    shown = craton("task-show", "second").stdout
    assert "READY" in shown and repo.head.commit.hexsha in shown

    craton("workflow-create", "--name", "wf", "--task", "first", "--task", "second")
    unapproved = craton("job-create", "--workflow", "wf", "--region", "dc1", check=False)
    assert unapproved.returncode == 3  # refused by the server
    assert "build 1 of task first" in unapproved.stderr and "not approved" in unapproved.stderr
    mine = craton("task-approve", "first", check=False)  # the author may not approve
    assert mine.returncode == 3 and "another admin must approve it" in mine.stderr
    server.approve("first", "second")
    approval = server.json("task-show", "second")["approval"]
    assert approval["status"] == "approved" and approval["by"] == "approver"
    failed = craton(
        "job-create",
        "--workflow",
        "wf",
        "--region",
        "dc1",
        "--concurrency",
        "2",
        "--max-failures",
        "1",
        "--var",
        "ticket=CHG-7",
        "--wait",
        check=False,
    )
    assert failed.returncode == 1, failed.stdout + failed.stderr
    job = server.json("job-list")[-1]
    assert job["status"] == "FAILED"
    job_hosts = {h["host_name"]: h["status"] for h in server.json("job-hosts", str(job["id"]))}
    assert job_hosts == {"node0": "SUCCEEDED", "node1": "FAILED", "node2": "SUCCEEDED"}

    logs = craton("job-logs", str(job["id"]), "--host", "node0").stdout
    assert "[node0 first] step first running" in logs
    assert "[node0 second] step second running" in logs
    assert "[node0 second stderr] to stderr" in logs
    payload_line = next(
        line for line in logs.splitlines() if "payload" in line and "second" in line
    )
    payload = json.loads(payload_line.split("payload ", 1)[1])
    assert payload["host"]["variables"]["ntp"] == "10.0.0.1"
    assert payload["variables"] == {"ticket": "CHG-7"}
    assert payload["outputs"] == {"first": {"first": "done"}}
    failing = craton("job-logs", str(job["id"]), "--host", "node1", "--step", "second").stdout
    assert "failing as asked" in failing

    ok = craton("job-create", "--workflow", "wf", "--host", "node0", "--host", "node2", "--wait")
    assert ok.returncode == 0

    craton("host-vars-set", "node1", "fail_second=false")
    craton("job-retry", str(job["id"]), "--failed-hosts", "--wait")
    retry = server.json("job-list")[-1]
    assert retry["retry_of_job_id"] == job["id"] and retry["status"] == "SUCCEEDED"
    assert [h["host_name"] for h in server.json("job-hosts", str(retry["id"]))] == ["node1"]

    # The failed job's history, as the operator reads it afterwards.
    events = server.json("job-events", str(job["id"]))
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "job_created" and kinds[-1] == "job_retried"  # by the retry above
    assert {"run_failed", "host_failed", "job_finished"} <= set(kinds)
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    table = craton("job-events", str(job["id"])).stdout
    assert "run_failed" in table and "job_finished" in table


def test_cli_errors(server):
    missing = server.craton("task-show", "nope", check=False)
    assert missing.returncode == 3 and missing.stderr.startswith("ERROR: ")
    no_dockerfile = server.craton(
        "task-create",
        "--name",
        "bad",
        "--location",
        "/nonexistent/dir",
        "--command",
        "x",
        "--wait",
        check=False,
    )
    assert no_dockerfile.returncode == 2  # a usage error
    assert no_dockerfile.stderr == "ERROR: No such directory: /nonexistent/dir\n"


def test_runner_as_its_own_process(split_server, tmp_path, busybox_image):
    craton = split_server.craton
    runners = split_server.json("runner-list")
    assert [r["name"] for r in runners] == ["e2e"] and runners[0]["alive"]
    craton("cloud-create", "--name", "c")
    craton("region-create", "--name", "r", "--cloud", "c")
    craton("host-create", "--name", "h1", "--ip-address", "10.9.0.1", "--region", "r")
    craton(
        "task-create",
        "--name",
        "first",
        "--location",
        str(task_dir(tmp_path, "first")),
        "--command",
        "sh /craton/step.sh",
        "--wait",
    )
    split_server.approve("first")
    done = craton("job-create", "--task", "first", "--host", "h1", "--follow")
    assert "[h1 first] step first running" in done.stdout
