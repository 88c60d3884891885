"""Job templates through the real ``craton`` CLI against a live ``craton-wf serve``
(fake executor: a container prints its payload, job variables included, and exits 0):
an admin saves an audit as a template with typed parameters, launches it with
``--param`` and ``--follow``, sees the values in the containers' payloads and on
the job; a parameter that does not fit is an ``ERROR:`` naming it; an auditor
launches the audit but not a remediation's template."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from craton_wf.db.engine import make_engine, make_session_factory, transaction
from craton_wf.settings import Settings
from tests.e2e.conftest import start_server, stop
from tests.factories import make_inventory, make_ready_task

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def test_templates_through_the_cli(database_url: str, tmp_path: Path) -> None:
    server = start_server(database_url, tmp_path, embedded=True, executor="fake")
    engine = make_engine(Settings(database_url=database_url))
    try:
        with transaction(make_session_factory(engine)) as session:
            project = server.env["OS_PROJECT_ID"]
            make_inventory(session, project, 3)
            make_ready_task(session, project, "disk-audit", command="audit", kind="audit")
            make_ready_task(session, project, "disk-fix", command="fix")

        made = server.json(
            "template-create",
            "nightly-disks",
            "--task",
            "disk-audit",
            "--label",
            "compute",
            "--var",
            "owner=ops",
            "--parameter",
            "name=depth,type=int,default=2",
            "--parameter",
            "name=mode,type=choice,choices=quick|full,required,description=how, and how much",
            "--parameter",
            '{"name": "ticket", "type": "string"}',
            "--concurrency",
            "2",
            "--timeout",
            "10m",
        )
        assert made["task_name"] == "disk-audit" and made["timeout_seconds"] == 600  # type: ignore[index]
        assert made["parameters"][1] == {  # type: ignore[index]
            "name": "mode",
            "type": "choice",
            "choices": ["quick", "full"],
            "required": True,
            "description": "how, and how much",
        }
        listed = server.craton("template-list").stdout
        assert "nightly-disks" in listed and "mode:choice*" in listed

        followed = server.craton(
            "template-launch",
            "nightly-disks",
            "--param",
            "mode=full",
            "--param",
            "ticket=007",
            "--follow",
        )
        payloads = [
            json.loads(line[line.index("{") :])
            for line in followed.stdout.splitlines()
            if '"job"' in line or '"variables"' in line
        ]
        assert len(payloads) == 3, followed.stdout  # one container per host
        for payload in payloads:
            variables = payload.get("variables") or payload["job"]["variables"]
            assert variables == {"owner": "ops", "depth": 2, "mode": "full", "ticket": "007"}
        jobs = server.json("job-list", "--all")
        assert len(jobs) == 1 and jobs[0]["status"] == "SUCCEEDED"  # type: ignore[index]
        job = server.json("job-show", str(jobs[0]["id"]))  # type: ignore[index]
        assert job["template_id"] == made["id"]  # type: ignore[index]
        assert job["template_params"] == {"depth": 2, "mode": "full", "ticket": "007"}  # type: ignore[index]

        wrong = server.craton(
            "template-launch", "nightly-disks", "--param", "mode=slow", check=False
        )
        assert wrong.returncode != 0
        assert wrong.stderr.strip().splitlines()[-1] == (
            "ERROR: parameter 'mode': 'slow' is not one of quick, full"
        )
        missing = server.craton("template-launch", "nightly-disks", check=False)
        assert missing.returncode != 0 and "parameter 'mode' is required" in missing.stderr
        typo = server.craton(
            "template-launch",
            "nightly-disks",
            "--param",
            "mode=quick",
            "--param",
            "dept=3",
            check=False,
        )
        assert typo.returncode != 0 and "unknown parameter 'dept'" in typo.stderr

        updated = server.json("template-update", "nightly-disks", "--concurrency", "3")
        assert updated["concurrency"] == 3 and updated["parameters"] == made["parameters"]  # type: ignore[index]
        server.json("template-create", "fix-disks", "--task", "disk-fix", "--host", "host-000")

        server.craton("user-create", "--name", "ann", "--role", "auditor")
        token = server.json("token-create", "--user", "ann", "--name", "e2e")["token"]  # type: ignore[index]
        saved, server.env = server.env, {**server.env, "OS_USERNAME": "ann", "OS_PASSWORD": token}
        try:
            waited = server.craton(
                "template-launch", "nightly-disks", "--param", "mode=quick", "--wait"
            )
            assert "SUCCEEDED" in waited.stdout
            refused = server.craton("template-launch", "fix-disks", check=False)
            assert refused.returncode == 3
            assert "auditors may run only audit tasks" in refused.stderr
            denied = server.craton("template-delete", "nightly-disks", check=False)
            assert denied.returncode == 3 and "needs the admin role" in denied.stderr
        finally:
            server.env = saved

        server.craton("template-delete", "fix-disks")
        gone = server.craton("template-show", "fix-disks", check=False)
        assert gone.returncode != 0 and gone.stderr.startswith("ERROR: ")

        # A runbook template that rolls out in waves, with a gate after the first host.
        waved = server.json(
            "template-update", "nightly-disks", "--waves", "1,100%", "--wave-gate", "approve"
        )
        assert waved["waves"] == [1, "100%"] and waved["wave_gate"] == "approve"  # type: ignore[index]
        launched = server.json("template-launch", "nightly-disks", "--param", "mode=quick")
        job_id = str(launched["id"])  # type: ignore[index]
        deadline = time.monotonic() + 60
        while (shown := server.json("job-show", job_id))["status"] != "PAUSED":  # type: ignore[index]
            assert time.monotonic() < deadline, shown
            time.sleep(0.5)
        assert shown["wave_sizes"] == [1, 2] and shown["current_wave"] == 1  # type: ignore[index]
        resumed = server.craton("job-resume", job_id, "--wait")
        assert "SUCCEEDED" in resumed.stdout
    finally:
        stop(server.processes)
        engine.dispose()
