"""An approval covers the environment a task starts with, through the real CLI on Docker.

The attack: admin 1 writes a bash task, admin 2 approves its digest; admin 1,
alone, then creates a secret named ``BASH_ENV`` (or ``LD_PRELOAD``) and a
workflow step that hands it to the task. Bash expands ``BASH_ENV`` before the
script, so ``$(echo INJECTED >&2)`` would run code the approved image does not
hold. Each way in is refused, and a task's own declared secret still works.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.timeout(300)]

SCRIPT = """#!/bin/bash
echo "greeting: ${GREETING:-none}"
"""


def bash_task(root: Path) -> Path:
    directory = root / "greeter"
    directory.mkdir(parents=True)
    (directory / "Dockerfile").write_text("FROM craton/python:3\nCOPY greet.sh /craton/greet.sh\n")
    (directory / "greet.sh").write_text(SCRIPT)
    return directory


def value_file(tmp_path: Path, name: str, value: str) -> str:
    path = tmp_path / f"{name}.value"
    path.write_text(value)
    return str(path)


def workflow_file(tmp_path: Path, name: str, secrets: list[str]) -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"name": name, "steps": [{"task": "greeter", "secrets": secrets}]}))
    return str(path)


def test_a_lone_admin_cannot_steer_an_approved_task_through_its_environment(
    server, tmp_path, python_image
):
    craton = server.craton
    craton("cloud-create", "--name", "lab")
    craton("region-create", "--name", "dc1", "--cloud", "lab")
    craton("host-create", "--name", "node0", "--ip-address", "10.1.0.1", "--region", "dc1")
    craton(
        "task-create",
        "--name",
        "greeter",
        "--location",
        str(bash_task(tmp_path)),
        "--command",
        "bash /craton/greet.sh",
        "--secret",
        "GREETING",
        "--wait",
    )
    server.approve("greeter")

    # The secrets that would run code before the approved script: refused by name.
    for name, value in (
        ("BASH_ENV", "$(echo INJECTED >&2)"),
        ("LD_PRELOAD", "/tmp/evil.so"),
        ("PYTHONSTARTUP", "/tmp/evil.py"),
        ("http_proxy", "http://127.0.0.1:1"),
    ):
        refused = craton(
            "secret-create",
            "--name",
            name,
            "--value-file",
            value_file(tmp_path, name, value),
            check=False,
        )
        assert refused.returncode == 3, refused.stdout
        assert refused.stderr.startswith(f"ERROR: secret name '{name}' is refused")
        assert value not in refused.stderr
    assert server.json("secret-list") == []

    # Nor may a task declare one (a task change would need a new approval anyway).
    declared = craton("task-update", "greeter", "--secret", "BASH_ENV", check=False)
    assert declared.returncode == 3 and "BASH_ENV" in declared.stderr
    assert server.json("task-show", "greeter")["approval"]["status"] == "approved"

    # A workflow step may hand the task only the secrets the task declares.
    craton(
        "secret-create",
        "--name",
        "EXTRA",
        "--value-file",
        value_file(tmp_path, "EXTRA", "never-handed"),
    )
    undeclared = craton(
        "workflow-create", "--file", workflow_file(tmp_path, "sneaky", ["EXTRA"]), check=False
    )
    assert undeclared.returncode == 3
    assert "step 'greeter'" in undeclared.stderr and "EXTRA" in undeclared.stderr
    assert "does not declare" in undeclared.stderr
    env_named = craton(
        "workflow-create", "--file", workflow_file(tmp_path, "loader", ["LD_PRELOAD"]), check=False
    )
    assert env_named.returncode == 3 and "LD_PRELOAD" in env_named.stderr
    assert server.json("workflow-list") == []

    # The approved task with its declared secret runs, the value redacted from its log.
    craton(
        "secret-create",
        "--name",
        "GREETING",
        "--value-file",
        value_file(tmp_path, "GREETING", "hello-from-the-vault"),
    )
    craton("workflow-create", "--file", workflow_file(tmp_path, "greet", ["GREETING"]))
    done = craton("job-create", "--workflow", "greet", "--host", "node0", "--wait")
    assert done.returncode == 0, done.stdout + done.stderr
    job = server.json("job-list")[-1]
    assert job["status"] == "SUCCEEDED"
    logs = craton("job-logs", str(job["id"])).stdout
    assert "greeting: [redacted]" in logs
    assert "INJECTED" not in logs and "hello-from-the-vault" not in logs
