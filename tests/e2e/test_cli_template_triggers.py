"""A template's incoming trigger through the real ``craton`` CLI and a live
``craton-wf serve`` (fake executor): an admin makes a trigger with
``template-trigger-create`` (the URL and the secret printed once), a caller
POSTs a signed body to the URL with no token, and the job it launches runs to
SUCCEEDED with the parameters of the body; a forged signature launches nothing;
the trigger is listed without its secret and deleted."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from craton_wf.db.engine import make_engine, make_session_factory, transaction
from craton_wf.settings import Settings
from tests.e2e.conftest import start_server, stop
from tests.factories import make_inventory, make_ready_task

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


# The call as docs/templates-and-schedules.md shows it, signed by openssl.
DOCUMENTED_CURL = """
body='{"params": {"mode": "quick"}}'
ts=$(date +%s)
sig=$(printf '%s.%s' "$ts" "$body" | openssl dgst -sha256 -hmac "$secret" | sed 's/^.* //')
curl -sS --fail-with-body -X POST "$url" -H 'Content-Type: application/json' \\
    -H "X-Craton-Timestamp: $ts" -H "X-Craton-Signature: sha256=$sig" -d "$body"
"""


def signed_headers(secret: str, body: bytes) -> dict[str, str]:
    timestamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return {
        "Content-Type": "application/json",
        "X-Craton-Timestamp": timestamp,
        "X-Craton-Signature": "sha256=" + digest.hexdigest(),
    }


def test_a_signed_call_to_a_trigger_runs_the_template(database_url: str, tmp_path: Path) -> None:
    server = start_server(database_url, tmp_path, embedded=True, executor="fake")
    engine = make_engine(Settings(database_url=database_url))
    try:
        with transaction(make_session_factory(engine)) as session:
            project = server.env["OS_PROJECT_ID"]
            make_inventory(session, project, 2)
            make_ready_task(session, project, "disk-audit", command="audit", kind="audit")
        server.craton(
            "template-create",
            "nightly-disks",
            "--task",
            "disk-audit",
            "--label",
            "compute",
            "--parameter",
            "name=mode,type=choice,choices=quick|full,required",
        )
        made = server.craton("--format", "json", "template-trigger-create", "nightly-disks")
        trigger = json.loads(made.stdout)
        assert "not shown again" in made.stderr
        assert trigger["url"] == f"{server.url}/v1/triggers/{trigger['id']}"
        secret = trigger["secret"]

        body = json.dumps({"params": {"mode": "full"}, "name": "from-ci"}).encode()
        forged = httpx.post(trigger["url"], content=body, headers=signed_headers("x" * 43, body))
        assert forged.status_code == 401, forged.text

        answer = httpx.post(trigger["url"], content=body, headers=signed_headers(secret, body))
        assert answer.status_code == 201, answer.text
        job_id = answer.json()["id"]
        deadline = time.monotonic() + 120
        while True:
            job = server.json("job-show", str(job_id))
            if job["status"] in ("SUCCEEDED", "FAILED", "CANCELLED") or time.monotonic() > deadline:  # type: ignore[index]
                break
            time.sleep(0.5)
        assert job["status"] == "SUCCEEDED", job  # type: ignore[index]
        assert job["name"] == "from-ci" and job["template_params"] == {"mode": "full"}  # type: ignore[index]

        if shutil.which("curl") and shutil.which("openssl"):
            by_curl = subprocess.run(
                ["bash", "-c", DOCUMENTED_CURL],
                env={**os.environ, "url": trigger["url"], "secret": secret},
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            launched = json.loads(by_curl.stdout)
            assert launched["template_params"] == {"mode": "quick"}, by_curl.stdout

        listed = server.craton("template-trigger-list", "nightly-disks")
        assert trigger["id"] in listed.stdout and secret not in listed.stdout
        server.craton("template-trigger-delete", "nightly-disks", trigger["id"])
        again = httpx.post(trigger["url"], content=body, headers=signed_headers(secret, body))
        assert again.status_code == 401, again.text
        missing = server.craton(
            "template-trigger-delete", "nightly-disks", trigger["id"], check=False
        )
        assert missing.returncode != 0 and missing.stderr.startswith("ERROR:")
        assert "not found" in missing.stderr
    finally:
        stop(server.processes)
        engine.dispose()
