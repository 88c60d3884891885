"""The security commands of the CLI: approvals, roles, secrets (against a routed transport;
how a secret's value may be given, with the CLI as a subprocess)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

TASK = {"id": 4, "name": "patch", "status": "READY", "approval": {"status": "approved"}}
SECRET = {"id": 2, "name": "DB_PASSWORD", "project_id": "p", "description": None}


def test_task_approve_names_the_digest_and_reject_and_revoke_give_reasons(router, cli) -> None:
    router.add("POST", "/v1/tasks/4/(approve|reject|revoke)", TASK)

    assert cli("task-approve", "4", "--digest", "sha256:abc", "--reason", "ok").code == 0
    assert cli("task-reject", "4", "--build", "2", "--reason", "curl | sh").code == 0
    assert cli("task-revoke", "4").code == 0

    sent = [(r.url.path, json.loads(r.content or b"{}")) for r in router.requests]
    assert sent == [
        ("/v1/tasks/4/approve", {"digest": "sha256:abc", "reason": "ok"}),
        ("/v1/tasks/4/reject", {"build": 2, "reason": "curl | sh"}),
        ("/v1/tasks/4/revoke", {}),
    ]


def test_an_authors_approval_is_refused_with_the_servers_message(router, cli) -> None:
    router.add(
        "POST",
        "/v1/tasks/4/approve",
        router.error(403, "you asked for build 1 of task patch: another admin must approve it"),
    )

    result = cli("task-approve", "4")

    assert result.code == 3
    assert result.err.startswith("ERROR: you asked for build 1 of task patch")


def test_user_role_add_updates_or_adds_and_remove_deletes(router, cli) -> None:
    router.add("PUT", "/v1/users/ann", {"id": 5, "name": "ann", "role": "operator"})
    router.add("PUT", "/v1/users/bob", router.error(404, "no user bob", "not_found"))
    router.add("POST", "/v1/users", {"id": 6, "name": "bob", "role": "auditor"})
    router.add("DELETE", "/v1/users/ann", router.error(204, ""))

    assert cli("user-role-add", "ann", "--role", "operator").code == 0
    assert cli("user-role-add", "bob", "--role", "auditor").code == 0
    removed = cli("user-role-remove", "ann")

    assert removed.code == 0 and "no longer has a role" in removed.err
    assert json.loads(router.sent("POST", "/v1/users")[0].content) == {
        "name": "bob",
        "role": "auditor",
    }
    assert router.sent("DELETE", "/v1/users/ann")


def test_secret_create_reads_the_value_from_a_file_and_never_prints_it(
    router, cli, tmp_path: Path
) -> None:
    router.add("POST", "/v1/secrets", SECRET)
    value = tmp_path / "pw"
    value.write_text("s3cr3t-value\n")

    result = cli("secret-create", "--name", "DB_PASSWORD", "--value-file", str(value))

    assert result.code == 0, result.err
    assert json.loads(router.sent("POST", "/v1/secrets")[0].content) == {
        "name": "DB_PASSWORD",
        "value": "s3cr3t-value",
    }
    assert "s3cr3t" not in result.out + result.err and "DB_PASSWORD" in result.out


def test_secret_create_from_standard_input(router, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    router.add("POST", "/v1/secrets", SECRET)
    monkeypatch.setattr("sys.stdin", io.StringIO("from-stdin"))

    assert cli("secret-create", "--name", "DB_PASSWORD", "--value-file", "-").code == 0
    assert json.loads(router.sent("POST", "/v1/secrets")[0].content)["value"] == "from-stdin"


def test_secret_create_from_value_stdin(router, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    router.add("POST", "/v1/secrets", SECRET)
    monkeypatch.setattr("sys.stdin", io.StringIO("piped-value\n"))

    assert cli("secret-create", "--name", "DB_PASSWORD", "--value-stdin").code == 0
    assert json.loads(router.sent("POST", "/v1/secrets")[0].content)["value"] == "piped-value"


VALUE = "hunter2-s3cr3t"


@pytest.mark.parametrize(
    "words",
    [
        ["--value", VALUE],  # once taken as --value-file's abbreviation, and echoed
        [f"--value={VALUE}"],
        [VALUE],
        ["--value-file", VALUE],  # a value typed where a file name goes
        ["--value-file", "-", "--value-stdin", VALUE],
    ],
)
def test_a_secret_value_on_the_command_line_is_refused_and_never_echoed(words) -> None:  # type: ignore[no-untyped-def]
    result = subprocess.run(
        [sys.executable, "-m", "cratonclient.shell.main", "--craton-url", "http://127.0.0.1:9"]
        + ["secret-create", "--name", "DB_PASSWORD", *words],
        input="",
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2  # a usage error
    assert result.stderr.splitlines()[-1].startswith("ERROR: ")
    assert VALUE not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_options_are_never_abbreviated(router, cli) -> None:
    result = cli("secret-create", "--name", "DB_PASSWORD", "--value-f", "-")

    assert result.code == 2 and "unrecognized option --value-f" in result.err
    assert not router.requests


def test_secret_list_and_delete_by_name(router, cli) -> None:
    router.collection("/v1/secrets", "secrets", [SECRET])
    router.add("DELETE", "/v1/secrets/DB_PASSWORD", router.error(204, ""))

    listed = cli("secret-list")
    deleted = cli("secret-delete", "DB_PASSWORD")

    assert listed.code == 0 and "DB_PASSWORD" in listed.out
    assert deleted.code == 0 and router.sent("DELETE", "/v1/secrets/DB_PASSWORD")


def test_task_create_sends_secrets_and_resources(router, cli) -> None:
    router.add("POST", "/v1/tasks", {**TASK, "current_build": None})

    result = cli(
        "task-create", "--name", "patch", "--location", "https://git.example/p.git",
        "--command", "sh run.sh", "--secret", "DB_PASSWORD", "--memory-mb", "1024",
        "--cpus", "2", "--placement", "node.labels.zone==a", "--placement", "node.role==worker",
    )  # fmt: skip

    assert result.code == 0, result.err
    body = json.loads(router.sent("POST", "/v1/tasks")[0].content)
    assert body["secrets"] == ["DB_PASSWORD"]
    assert body["resources"] == {"memory_mb": 1024, "cpus": 2.0}
    assert body["placement"] == ["node.labels.zone==a", "node.role==worker"]
