"""Editing a workflow as a file: show it, change it, check it, send it back."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

SHOWN = {
    "id": 4,
    "project_id": "p1",
    "name": "maint",
    "description": "host maintenance",
    "version": 2,
    "latest_version": 2,
    "steps": [
        {
            "name": "patch",
            "task_id": 9,
            "task_name": "patch",
            "args": {"reboot": True},
            "timeout": 600,
            "retries": 1,
            "retry_delay": 5.0,
            "required": True,
            "once": False,
            "depends_on": None,
            "secrets": [],
        }
    ],
    "created_at": "2026-12-04T10:00:00Z",
    "updated_at": None,
}


def test_workflow_show_as_yaml_piped_to_workflow_update_round_trips(
    router, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    router.collection("/v1/workflows", "workflows", [SHOWN])
    router.add("GET", "/v1/workflows/4", SHOWN)
    router.add("PUT", "/v1/workflows/4", {**SHOWN, "version": 3, "latest_version": 3})

    shown = cli("workflow-show", "maint", "--format", "yaml")
    monkeypatch.setattr("sys.stdin", io.StringIO(shown.out))
    updated = cli("workflow-update", "maint", "--file", "-")

    assert shown.code == 0 and updated.code == 0, updated.err
    sent = json.loads(router.sent("PUT", "/v1/workflows/4")[0].content)
    step = {k: v for k, v in SHOWN["steps"][0].items() if k not in ("task_id", "task_name")}
    assert sent == {"description": "host maintenance", "steps": [{**step, "task": "patch"}]}


def test_durations_in_the_file_and_on_the_command_line(router, cli, tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(
        "name: maint\nsteps:\n"
        "  - {task: drain, timeout: 5m, retries: 2, retry_delay: 90s}\n"
        "  - {task: patch, timeout: 1h}\n"
        "  - {task: check, timeout: 45}\n"
    )
    router.add("POST", "/v1/workflows", SHOWN)
    router.add("POST", "/v1/jobs", {"id": 7, "status": "PENDING"})
    router.add("GET", "/v1/jobs/7/hosts", {"hosts": []})

    created = cli("workflow-create", "--file", str(path))
    job = cli("job-create", "--workflow", "maint", "--host", "a", "--timeout", "1h30m")

    assert created.code == job.code == 0, created.err + job.err
    steps = json.loads(router.sent("POST", "/v1/workflows")[0].content)["steps"]
    assert [(s["timeout"], s.get("retry_delay")) for s in steps] == [
        (300, 90.0),
        (3600, None),
        (45, None),
    ]
    assert json.loads(router.sent("POST", "/v1/jobs")[0].content)["timeout"] == 5400


@pytest.mark.parametrize("bad", ["5 minutes", "-1m", "0s", "m"])
def test_a_bad_duration_is_a_usage_error(router, cli, tmp_path: Path, bad: str) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(json.dumps({"name": "w", "steps": [{"task": "t", "timeout": bad}]}))

    from_file = cli("workflow-create", "--file", str(path))
    from_option = cli("job-create", "--task", "t", "--host", "a", "--timeout", bad)

    assert from_file.code == from_option.code == 2
    assert "step 1: timeout" in from_file.err
    assert "--timeout" in from_option.err
    assert router.requests == []


def test_workflow_validate_checks_with_the_server_and_writes_nothing(
    router, cli, tmp_path: Path
) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text("name: maint\nsteps: [patch]\n")
    router.add(
        "POST",
        "/v1/workflows/validate",
        {"valid": True, "name": "maint", "exists": True, "steps": SHOWN["steps"]},
    )

    result = cli("workflow-validate", str(path))

    assert result.code == 0, result.err
    assert result.err == f"{path} is valid: 1 step(s) (updates workflow maint).\n"
    assert "patch" in result.out
    assert [r.method + " " + r.url.path for r in router.requests] == ["POST /v1/workflows/validate"]


def test_workflow_validate_of_an_invalid_file_exits_1_with_the_reason(
    router, cli, tmp_path: Path
) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text("steps: [nope]\n")
    router.add(
        "POST", "/v1/workflows/validate", router.error(404, "no task with name or id 'nope'")
    )

    result = cli("workflow-validate", str(path))

    assert result.code == 1
    assert result.err == f"ERROR: {path}: no task with name or id 'nope'\n"
