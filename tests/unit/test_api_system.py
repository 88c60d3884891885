"""Health and readiness: the database, a live runner, and the executor's runtime."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from craton_wf.api.app import create_app
from craton_wf.db.engine import transaction
from craton_wf.db.models import RunnerRecord, utcnow


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
        "task_network_firewall": "disabled",
    }


def test_readyz_is_not_ready_when_the_firewall_asked_for_is_not_in_place(
    settings, sessions
) -> None:  # type: ignore[no-untyped-def]
    register_runner(sessions)
    walled = settings.model_copy(update={"task_network_firewall": True})
    with TestClient(create_app(walled, sessions)) as client:
        answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"]["task_network_firewall"] == (
        "error: the fake executor does not install the task network firewall"
    )


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


def register(sessions, **runners) -> None:  # type: ignore[no-untyped-def]
    """Runners by name: {"name": (seconds since its heartbeat, stopped)}."""
    now = utcnow()
    with transaction(sessions) as session:
        for index, (name, (silent, stopped)) in enumerate(runners.items()):
            session.add(
                RunnerRecord(
                    id=f"{name}-id",
                    name=name,
                    hostname="h",
                    pid=100 + index,
                    executor="fake",
                    started_at=now - timedelta(hours=1, seconds=-index),
                    heartbeat_at=now - timedelta(seconds=silent),
                    stopped_at=now if stopped else None,
                )
            )


def test_runners_are_listed_alive_or_gone_a_page_at_a_time(api, sessions) -> None:  # type: ignore[no-untyped-def]
    register(sessions, live=(1, False), stopped=(1, True), silent=(600, False), other=(2, False))
    every = api.get("/v1/runners").json()["runners"]
    assert {r["name"]: r["alive"] for r in every} == {
        "live": True,
        "stopped": False,
        "silent": False,
        "other": True,
    }
    assert [r["name"] for r in every if r["stopped_at"]] == ["stopped"]
    names = lambda query: [r["name"] for r in api.get(f"/v1/runners?{query}").json()["runners"]]  # noqa: E731
    assert names("alive=true&sort_keys=name") == ["live", "other"]
    assert names("alive=false&sort_keys=name") == ["silent", "stopped"]
    first = api.get("/v1/runners?sort_keys=started_at&sort_dir=desc&limit=3").json()
    assert [r["name"] for r in first["runners"]] == ["other", "silent", "stopped"]
    following = next(link["href"] for link in first["links"] if link["rel"] == "next")
    assert [r["name"] for r in api.get(following).json()["runners"]] == ["live"]
    refused = api.get("/v1/runners?sort_keys=pid")
    assert refused.status_code == 400 and "sort_keys may be" in str(refused.json())
    assert api.get("/v1/runners?alive=maybe").status_code == 422
    ready = api.get("/readyz").json()
    assert ready["checks"]["runners"] == 2  # of 4 registered
