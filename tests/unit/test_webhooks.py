"""Outgoing webhooks: signed deliveries to a receiver of the test's own on loopback,
retried after 500s, one per event id; the URL rule; the outbox's transaction."""

from __future__ import annotations

import importlib.util
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from craton_wf.db.engine import transaction
from craton_wf.db.models import Job, WebhookDelivery
from craton_wf.domain.states import JobStatus
from craton_wf.domain.webhooks import delivery_body, sign, signature_matches
from craton_wf.engine.webhooks import enqueue_event
from craton_wf.executors.fake import FakeExecutor, FakeOutcome
from craton_wf.runner.webhook_sender import WebhookSender
from craton_wf.settings import Settings
from tests.unit.test_engine import setup_job
from tests.webhook_receiver import SECRET, Receiver, serve_receiver


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Loopback receivers allowed (the operator setting), retries a few ms apart."""
    return settings.model_copy(
        update={
            "webhook_allow_private": True,
            "webhook_backoff_seconds": 0.05,
            "webhook_timeout_seconds": 5,
        }
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serve_receiver() as found:
        yield found


def add_webhook(api: Any, url: str, events: list[str], name: str = "ops") -> dict[str, Any]:
    answer = api.post(
        "/v1/webhooks", json={"name": name, "url": url, "events": events, "secret": SECRET}
    )
    assert answer.status_code == 201, answer.text
    return answer.json()  # type: ignore[no-any-return]


def wait_deliveries(api: Any, webhook_id: int, done: int, timeout: float = 20) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = api.get(f"/v1/webhooks/{webhook_id}/deliveries").json()["deliveries"]
        if sum(1 for d in found if d["status"] != "pending") >= done:
            return found  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError(f"deliveries of webhook {webhook_id} not done: {found}")


# --- the signature ------------------------------------------------------------------


def test_signature_verifies_with_the_secret_and_fails_forged_or_without_it():
    body = delivery_body("e-1", "job.failed", "2026-12-05T00:00:00+00:00", "p", {"job": {"id": 1}})
    signature = sign(SECRET, "1700000000", body)
    assert signature.startswith("sha256=") and len(signature) == len("sha256=") + 64
    assert signature_matches(SECRET, "1700000000", body, signature)
    assert not signature_matches("another-secret-entirely", "1700000000", body, signature)
    assert not signature_matches(SECRET, "1700000001", body, signature)  # timestamp is signed
    assert not signature_matches(SECRET, "1700000000", body.replace(b"1", b"2"), signature)
    assert not signature_matches(SECRET, "1700000000", body, None)
    assert not signature_matches(SECRET, "1700000000", body, "sha256=" + "0" * 64)


# --- deliveries end to end ------------------------------------------------------------


def test_a_finished_job_is_delivered_once_signed_after_two_500s(
    api, sessions, root, start_runner, wait_job, receiver
):
    hook = add_webhook(api, receiver.url, ["job.succeeded", "job.failed"])
    assert "secret" not in hook and SECRET not in json.dumps(hook)
    job_id = setup_job(sessions, root, ["one"], hosts=2, concurrency=2)
    start_runner(FakeExecutor(lambda spec: FakeOutcome()))
    assert wait_job(job_id).status == "SUCCEEDED"

    deliveries = wait_deliveries(api, hook["id"], 1)
    assert len(deliveries) == 1  # exactly one job-finished event, no job.started
    delivery = deliveries[0]
    assert delivery["event"] == "job.succeeded" and delivery["status"] == "delivered"
    assert delivery["attempts"] == 3 and delivery["last_status_code"] == 200
    assert [a["status_code"] for a in delivery["attempt_log"]] == [500, 500, 200]
    assert all(a["latency_ms"] >= 0 for a in delivery["attempt_log"])
    assert delivery["attempt_log"][-1]["response_excerpt"] == "ok"
    # the receiver saw three signed attempts of one event id and accepted it once
    assert receiver.bad_signatures == 0
    assert [a["id"] for a in receiver.attempts] == [delivery["event_id"]] * 3
    assert list(receiver.accepted) == [delivery["event_id"]]
    document = receiver.accepted[delivery["event_id"]]
    assert document["type"] == "job.succeeded" and document["project_id"] == root.project_id
    assert document["data"]["job"]["id"] == job_id
    assert document["data"]["job"]["status"] == "SUCCEEDED"


def test_a_failed_job_sends_job_failed_and_its_start(
    api, sessions, root, start_runner, wait_job, receiver
):
    receiver.failures = 0
    hook = add_webhook(api, receiver.url, ["job.started", "job.failed", "job.succeeded"])
    job_id = setup_job(sessions, root, ["one"], hosts=1)
    start_runner(FakeExecutor(lambda spec: FakeOutcome(exit_code=1)))
    assert wait_job(job_id).status == "FAILED"
    deliveries = wait_deliveries(api, hook["id"], 2)
    assert Counter(d["event"] for d in deliveries) == {"job.started": 1, "job.failed": 1}
    assert all(d["status"] == "delivered" and d["attempts"] == 1 for d in deliveries)
    assert len(receiver.accepted) == 2


def test_redelivery_by_hand_keeps_the_event_id(
    api, sessions, root, start_runner, wait_job, receiver
):
    receiver.failures = 0
    hook = add_webhook(api, receiver.url, ["job.succeeded"])
    job_id = setup_job(sessions, root, ["one"], hosts=1)
    start_runner(FakeExecutor(lambda spec: FakeOutcome()))
    wait_job(job_id)
    [delivery] = wait_deliveries(api, hook["id"], 1)
    answer = api.post(f"/v1/webhooks/{hook['id']}/deliveries/{delivery['id']}/redeliver")
    assert answer.status_code == 202, answer.text
    deadline = time.monotonic() + 20
    while len(receiver.attempts) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    [again] = wait_deliveries(api, hook["id"], 1)
    assert again["attempts"] == 2 and again["status"] == "delivered"
    assert [a["id"] for a in receiver.attempts] == [delivery["event_id"]] * 2
    assert receiver.duplicates == 1 and len(receiver.accepted) == 1
    missing = api.post(f"/v1/webhooks/{hook['id']}/deliveries/999999/redeliver")
    assert missing.status_code == 404 and "delivery 999999" in missing.json()["message"]


def test_a_delivery_is_given_up_when_its_retry_window_closes(settings, sessions, root, receiver):
    receiver.failures = 1000
    quick = settings.model_copy(update={"webhook_retry_seconds": 0.5})
    with transaction(sessions) as session:
        _webhook_row(session, settings, root.project_id, receiver.url)
        enqueue_event(session, root.project_id, "build.failed", {"build": {"id": 1}})
    sender = WebhookSender(quick, sessions, "runner-test")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        sender.send_due()
        with transaction(sessions) as session:
            delivery = session.execute(select(WebhookDelivery)).scalar_one()
            if delivery.status != "pending":
                break
        time.sleep(0.02)
    assert delivery.status == "failed" and delivery.attempts >= 2
    assert delivery.last_status_code == 500
    assert len(receiver.attempts) == delivery.attempts


def test_an_event_rolled_back_leaves_no_delivery(settings, sessions, root, receiver):
    with transaction(sessions) as session:
        _webhook_row(session, settings, root.project_id, receiver.url)

    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction(sessions) as session:
        assert enqueue_event(session, root.project_id, "build.failed", {"build": {}}) == 1
        raise Abort
    with transaction(sessions) as session:
        assert session.execute(select(func.count()).select_from(WebhookDelivery)).scalar() == 0
        assert session.execute(select(func.count()).select_from(Job)).scalar() == 0


def _webhook_row(session: Any, settings: Settings, project_id: str, url: str) -> None:
    from craton_wf.services import project_secrets, webhooks
    from craton_wf.services.webhooks import WebhookCreate

    spec = WebhookCreate(name="w", url=url, events=["build.failed"], secret=SECRET)
    webhooks.create_webhook(
        session, settings, project_secrets.cipher(settings), project_id, None, spec
    )


# --- the URL rule -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:9/hook", "only https"),
        ("https://127.0.0.1/hook", "loopback"),
        ("https://localhost/hook", "loopback"),
        ("https://10.1.2.3/hook", "private"),
        ("https://169.254.169.254/latest", "link-local"),
        ("https://[::1]/hook", "loopback"),
        ("https://internal.example/hook", "private"),
        ("https://gone.example/hook", "does not resolve"),
        ("https://user:pw@hooks.example/hook", "credentials"),
        ("ftp://hooks.example/hook", "only https"),
    ],
)
def test_a_private_or_unsafe_url_is_refused_without_the_setting(
    settings, sessions, root, fake_dns, url, why
):
    from fastapi.testclient import TestClient

    from craton_wf.api.app import create_app

    fake_dns["internal.example"] = ["10.9.8.7"]
    fake_dns["gone.example"] = []
    strict = settings.model_copy(update={"webhook_allow_private": False})
    with TestClient(create_app(strict, sessions), headers=root.headers) as api:
        answer = api.post(
            "/v1/webhooks",
            json={"name": "x", "url": url, "events": ["job.failed"], "secret": SECRET},
        )
        assert answer.status_code == 400, answer.text
        assert why in answer.json()["message"]
        assert add_webhook(api, "https://hooks.example/in", ["job.failed"])["enabled"]


def test_a_name_that_now_resolves_inward_is_refused_at_delivery(
    settings, sessions, root, fake_dns, receiver
):
    strict = settings.model_copy(update={"webhook_allow_private": False})
    with transaction(sessions) as session:
        _webhook_row(session, strict, root.project_id, "https://rebound.example/hook")
        enqueue_event(session, root.project_id, "build.failed", {"build": {}})
    fake_dns["rebound.example"] = ["127.0.0.1"]  # re-pointed after the check at creation
    assert WebhookSender(strict, sessions, "runner-test").send_due() == 1
    with transaction(sessions) as session:
        delivery = session.execute(select(WebhookDelivery)).scalar_one()
        assert delivery.status == "pending" and delivery.attempts == 1
        assert delivery.last_status_code is None
    assert receiver.attempts == []


# --- the API ---------------------------------------------------------------------------


def test_webhook_crud_never_answers_the_secret(api, receiver):
    hook = add_webhook(api, receiver.url, ["job.failed"])
    assert (
        api.post(
            "/v1/webhooks",
            json={"name": "ops", "url": receiver.url, "events": ["job.failed"], "secret": SECRET},
        ).status_code
        == 409
    )
    bad = api.post(
        "/v1/webhooks",
        json={"name": "b", "url": receiver.url, "events": ["job.exploded"], "secret": SECRET},
    )
    assert bad.status_code == 400 and "job.exploded" in bad.json()["message"]
    short = api.post(
        "/v1/webhooks",
        json={"name": "c", "url": receiver.url, "events": ["job.failed"], "secret": "x"},
    )
    assert short.status_code == 422
    changed = api.put(
        f"/v1/webhooks/{hook['id']}",
        json={"events": ["job.failed", "build.failed"], "enabled": False, "secret": SECRET * 2},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["events"] == ["job.failed", "build.failed"]
    assert changed.json()["enabled"] is False
    for answer in (api.get("/v1/webhooks"), api.get("/v1/webhooks/ops"), changed):
        assert SECRET not in answer.text and "secret" not in answer.text
    assert api.delete("/v1/webhooks/ops").status_code == 204
    assert api.get(f"/v1/webhooks/{hook['id']}").status_code == 404


def test_a_disabled_webhook_gets_no_delivery(settings, sessions, root, api, receiver):
    hook = add_webhook(api, receiver.url, ["build.failed"])
    api.put(f"/v1/webhooks/{hook['id']}", json={"enabled": False})
    with transaction(sessions) as session:
        assert enqueue_event(session, root.project_id, "build.failed", {}) == 0


# --- the example receiver ---------------------------------------------------------------


def test_the_example_receiver_refuses_forged_replayed_and_repeats_nothing():
    path = Path(__file__).parents[2] / "examples" / "webhook-receiver" / "receiver.py"
    spec = importlib.util.spec_from_file_location("example_receiver", path)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    body = delivery_body("e-7", "job.failed", "2026-12-05T00:00:00+00:00", "p", {"job": {}})
    now = 1_800_000_000
    headers = {
        "X-Craton-Delivery": "e-7",
        "X-Craton-Timestamp": str(now),
        "X-Craton-Signature": sign(SECRET, str(now), body),
    }
    seen: set[str] = set()
    assert example.check_delivery(SECRET, headers, body, now + 5, seen) == (200, "accepted")
    assert example.check_delivery(SECRET, headers, body, now + 9, seen) == (200, "already accepted")
    assert example.check_delivery("not-the-secret!!", headers, body, now, set())[0] == 401
    forged = {**headers, "X-Craton-Signature": sign("guessed-secret-xx", str(now), body)}
    assert example.check_delivery(SECRET, forged, body, now, set()) == (401, "bad signature")
    assert example.check_delivery(SECRET, headers, body + b" ", now, set())[0] == 401
    late = example.check_delivery(SECRET, headers, body, now + 3600, set())
    assert late[0] == 401 and "replay" in late[1]


def test_a_job_paused_at_a_wave_gate_sends_job_paused_once(
    api, sessions, root, start_runner, wait_job, receiver
):
    receiver.failures = 0
    hook = add_webhook(api, receiver.url, ["job.paused", "job.succeeded"])
    job_id = setup_job(
        sessions, root, ["one"], hosts=2, concurrency=2, waves=[1, "100%"], wave_gate="approve"
    )
    start_runner(FakeExecutor(lambda spec: FakeOutcome()))
    wait_job(job_id, states=[JobStatus.PAUSED])
    [paused] = wait_deliveries(api, hook["id"], 1)
    assert paused["event"] == "job.paused" and paused["status"] == "delivered"
    document = receiver.accepted[paused["event_id"]]
    assert document["data"]["job"]["status"] == "PAUSED"
    assert document["data"]["job"]["next_wave"] == {"wave": 2, "waves": 2}
    assert api.post(f"/v1/jobs/{job_id}/resume").status_code == 200
    assert wait_job(job_id).status == "SUCCEEDED"
    events = sorted(d["event"] for d in wait_deliveries(api, hook["id"], 2))
    assert events == ["job.paused", "job.succeeded"]
