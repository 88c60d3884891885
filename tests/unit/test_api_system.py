"""Health and readiness: the database, a live runner, and the executor's runtime."""

from __future__ import annotations

from fastapi.testclient import TestClient

from craton_wf.api.app import create_app
from craton_wf.db.engine import transaction
from craton_wf.db.models import RunnerRecord


def register_runner(sessions) -> None:  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        session.add(RunnerRecord(id="r-1", name="r-1", hostname="h", pid=1, executor="fake"))


def test_healthz_answers_without_credentials(api) -> None:  # type: ignore[no-untyped-def]
    assert api.get("/healthz", headers={"X-Auth-Token": ""}).json() == {"status": "ok"}


def test_readyz_needs_a_live_runner(api, sessions) -> None:  # type: ignore[no-untyped-def]
    answer = api.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"]["runners"] == 0
    register_runner(sessions)
    answer = api.get("/readyz")
    assert answer.status_code == 200, answer.json()
    assert answer.json()["checks"] == {
        "database": "ok",
        "runners": 1,
        "executor": {"name": "fake", "status": "ok"},
    }


def test_readyz_reports_an_unreachable_executor(settings, sessions) -> None:  # type: ignore[no-untyped-def]
    register_runner(sessions)
    unreachable = settings.model_copy(
        update={"executor": "swarm", "docker_base_url": "tcp://127.0.0.1:9"}
    )
    with TestClient(create_app(unreachable, sessions)) as client:
        answer = client.get("/readyz")
    assert answer.status_code == 503
    executor = answer.json()["checks"]["executor"]
    assert executor["name"] == "swarm"
    assert executor["status"].startswith(
        "error: cannot reach the Docker engine at tcp://127.0.0.1:9"
    )
    assert "Connection refused" in executor["status"]
