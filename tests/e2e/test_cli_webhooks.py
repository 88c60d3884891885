"""Webhooks from the ``craton`` CLI against a live server on Docker: a receiver of
the test's own on loopback (allowed by CRATON_WF_WEBHOOK_ALLOW_PRIVATE) is sent
the build awaiting approval and the finished job, signed, retried after its 500s
and accepted once each; deliveries and their attempts are listed, and one is sent
again by hand."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Server, start_server, stop
from tests.webhook_receiver import SECRET, Receiver, serve_receiver

pytestmark = [pytest.mark.e2e, pytest.mark.docker]


def _deliveries(server: Server, done: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 90
    while True:
        found: list[dict[str, Any]] = server.json("webhook-deliveries", "ops")  # type: ignore[assignment]
        if sum(1 for d in found if d["status"] != "pending") >= done:
            return found
        assert time.monotonic() < deadline, f"deliveries not done: {found}"
        time.sleep(0.3)


def _make_task(server: Server, tmp_path: Path) -> None:
    craton = server.craton
    craton("cloud-create", "--name", "c")
    craton("region-create", "--name", "r", "--cloud", "c")
    craton("host-create", "--name", "h1", "--ip-address", "10.9.0.1", "--region", "r")
    task = tmp_path / "hello"
    task.mkdir()
    (task / "Dockerfile").write_text("FROM craton/busybox:latest\n")
    craton("task-create", "--name", "hello", "--location", str(task), "--command", "true",
           "--wait")  # fmt: skip


def test_webhook_cli_and_signed_deliveries_on_the_real_engine(
    database_url: str, tmp_path: Path, busybox_image: str
) -> None:
    server = start_server(
        database_url,
        tmp_path,
        embedded=True,
        webhook_allow_private="true",
        webhook_backoff_seconds="0.2",
    )
    secret_file = tmp_path / "hook-secret"
    secret_file.write_text(SECRET + "\n")
    try:
        with serve_receiver(failures=2) as receiver:
            _run(server, tmp_path, receiver, secret_file)
    finally:
        stop(server.processes)


def _run(server: Server, tmp_path: Path, receiver: Receiver, secret_file: Path) -> None:
    craton = server.craton
    secret = ("--secret-file", str(secret_file))
    refused = craton("webhook-create", "--name", "bad", "--url", "ftp://127.0.0.1/x",
                     "--event", "job.failed", *secret, check=False)  # fmt: skip
    # the server refused it: ERROR and exit status 3, as for every refusal
    assert refused.returncode == 3 and refused.stderr.startswith("ERROR: ")
    assert "only https or http" in refused.stderr
    unknown = craton("webhook-create", "--name", "bad", "--url", receiver.url,
                     "--event", "job.exploded", *secret, check=False)  # fmt: skip
    assert unknown.returncode == 3 and "job.exploded" in unknown.stderr

    created = server.json("webhook-create", "--name", "ops", "--url", receiver.url,
                          "--event", "approval.requested,job.succeeded", "--event", "job.failed",
                          "--secret-file", str(secret_file))  # fmt: skip
    assert created["events"] == ["approval.requested", "job.succeeded", "job.failed"]  # type: ignore[index]
    shown = craton("webhook-show", "ops").stdout
    listed = craton("webhook-list").stdout
    assert receiver.url in shown and "ops" in listed and SECRET not in shown + listed

    _make_task(server, tmp_path)  # its build becomes READY: approval requested
    server.approve("hello")
    job = server.json("job-create", "--task", "hello", "--host", "h1", "--wait")
    assert job["status"] == "SUCCEEDED"  # type: ignore[index]

    deliveries = _deliveries(server, 2)
    assert sorted(d["event"] for d in deliveries) == ["approval.requested", "job.succeeded"]
    for delivery in deliveries:
        assert delivery["status"] == "delivered" and delivery["attempts"] == 3
        assert [a["status_code"] for a in delivery["attempt_log"]] == [500, 500, 200]
    assert receiver.bad_signatures == 0 and len(receiver.attempts) == 6
    assert sorted(receiver.accepted) == sorted(d["event_id"] for d in deliveries)
    finished = next(d for d in deliveries if d["event"] == "job.succeeded")
    assert receiver.accepted[finished["event_id"]]["data"]["job"]["id"] == job["id"]  # type: ignore[index]
    table = craton("webhook-deliveries", "ops").stdout
    assert "job.succeeded" in table and "delivered" in table

    again = craton("webhook-redeliver", "ops", str(finished["id"]))
    assert "will be sent again" in again.stderr + again.stdout
    deadline = time.monotonic() + 30
    while len(receiver.attempts) < 7:
        assert time.monotonic() < deadline, "the redelivery was not sent"
        time.sleep(0.2)
    assert receiver.attempts[-1]["id"] == finished["event_id"]
    assert receiver.duplicates == 1 and len(receiver.accepted) == 2

    craton("webhook-update", "ops", "--disable", "--event", "job.failed")
    assert server.json("webhook-show", "ops")["enabled"] is False  # type: ignore[index]
    craton("webhook-delete", "ops")
    gone = craton("webhook-show", "ops", check=False)
    assert gone.returncode == 3 and gone.stderr.startswith("ERROR: ")
