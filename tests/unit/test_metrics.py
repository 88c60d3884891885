"""``/metrics``: the fleet's figures from the database and the process's own, parsed
back with prometheus-client's parser, moved by exactly what a job did."""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from craton_wf.api.metrics import FleetCollector
from craton_wf.db.engine import transaction
from craton_wf.db.models import Build, Task
from craton_wf.executors.base import ContainerSpec
from craton_wf.executors.fake import FakeExecutor, FakeOutcome
from craton_wf.runner.metrics_port import serve_metrics
from tests.factories import approve_build, make_inventory, make_ready_task

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape, by name and labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(api: Any, **headers: str) -> Samples:
    answer = api.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return parse(answer.text)


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return settings.model_copy(update={"metrics_cache_seconds": 0})


def _host_of(spec: ContainerSpec) -> str:
    return json.loads(spec.command[-1])["host"]["name"]


def fails_on_host_001(spec: ContainerSpec) -> FakeOutcome:
    """Three lines on every host; host-001 then exits 3."""
    host = _host_of(spec)
    lines = [("stdout", f"{host} one"), ("stdout", f"{host} two"), ("stderr", f"{host} three")]
    return FakeOutcome(lines=lines, exit_code=3 if host == "host-001" else 0)


def run_job(api, sessions, project_id, start_runner, wait_job, **job: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        hosts = [host.id for host in make_inventory(session, project_id, 3)]
        make_ready_task(session, project_id, "patch")
    created = api.post(
        "/v1/jobs",
        json={"task": "patch", "hosts": hosts, "concurrency": 3, "max_failures": 3, **job},
        headers={"X-Auth-Project": project_id},
    )
    assert created.status_code == 201, created.text
    start_runner(FakeExecutor(fails_on_host_001))
    done = wait_job(created.json()["id"])
    return {"id": done.id, "status": done.status}


def test_a_job_moves_every_counter_by_what_it_did(  # type: ignore[no-untyped-def]
    api, sessions, root, start_runner, wait_job
) -> None:
    before = scrape(api)
    job = run_job(api, sessions, root.project_id, start_runner, wait_job)
    api.get(f"/v1/jobs/{job['id']}")
    after = scrape(api)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    runs = api.get(f"/v1/jobs/{job['id']}/runs").json()["runs"]
    assert sorted(run["status"] for run in runs) == ["FAILED", "SUCCEEDED", "SUCCEEDED"]
    assert moved("craton_runs_finished_total", status="SUCCEEDED") == 2
    assert moved("craton_runs_finished_total", status="FAILED") == 1
    assert moved("craton_runs_finished_total", status="SKIPPED") == 0
    assert moved("craton_jobs_finished_total", status=job["status"]) == 1
    assert sum(moved("craton_jobs_finished_total", status=s) for s in ("SUCCEEDED", "FAILED")) == 1
    for status in ("PENDING", "QUEUED", "STARTING", "RUNNING"):
        assert value(after, "craton_runs", status=status) == 0
    assert value(after, "craton_jobs", status="RUNNING") == 0
    # the lines the containers printed, as the API gives them back
    logs = api.get(f"/v1/jobs/{job['id']}/logs").json()["logs"]
    assert len(logs) == 9
    assert moved("craton_log_lines_stored_total") == 9
    assert moved("craton_log_bytes_stored_total") == sum(len(e["line"].encode()) for e in logs)
    # what the runner saw: three containers started, three attempts ended
    assert moved("craton_container_start_seconds_count", executor="fake") == 3
    assert moved("craton_run_duration_seconds_count", outcome="SUCCEEDED") == 2
    assert moved("craton_run_duration_seconds_count", outcome="FAILED") == 1
    # HTTP, by route template, never by raw path
    assert moved("craton_http_requests_total", method="POST", route="/v1/jobs", status="201") == 1
    job_route = {"method": "GET", "route": "/v1/jobs/{job_id}"}
    assert moved("craton_http_requests_total", status="200", **job_route) == 1
    assert moved("craton_http_request_duration_seconds_count", **job_route) == 1
    assert not any(f"/v1/jobs/{job['id']}" in dict(labels).get("route", "") for _, labels in after)
    assert value(after, "craton_fleet_up") == 1


def test_routes_are_templates_and_unknown_paths_one_label(api) -> None:  # type: ignore[no-untyped-def]
    before = scrape(api)
    assert api.get("/v1/jobs/987654").status_code == 404
    assert api.get("/no/such/path/123").status_code == 404
    after = scrape(api)
    route = {"method": "GET", "status": "404"}
    for template in ("/v1/jobs/{job_id}", "unmatched"):
        key = ("craton_http_requests_total", tuple(sorted({**route, "route": template}.items())))
        assert after[key] - before.get(key, 0) == 1


def test_console_pages_are_counted_by_their_whole_template(api) -> None:  # type: ignore[no-untyped-def]
    before = scrape(api)
    assert api.get("/ui/sign-in").status_code == 200
    assert api.get("/ui/jobs/987654", headers={"accept": "application/json"}).status_code == 401
    after = scrape(api)
    for template, status in (("/ui/sign-in", "200"), ("/ui/jobs/{job_id}", "401")):
        labels = {"method": "GET", "route": template, "status": status}
        key = ("craton_http_requests_total", tuple(sorted(labels.items())))
        assert after.get(key, 0) - before.get(key, 0) == 1, sorted(
            k for k in after if "/ui" in str(k)
        )


def test_deleting_a_project_never_lowers_the_counters(  # type: ignore[no-untyped-def]
    api, sessions, root, start_runner, wait_job
) -> None:
    other = api.post("/v1/projects", json={"name": "doomed"})
    assert other.status_code == 201, other.text
    run_job(api, sessions, other.json()["id"], start_runner, wait_job)
    before = scrape(api)
    assert value(before, "craton_runs_finished_total", status="SUCCEEDED") >= 2
    assert api.delete(f"/v1/projects/{other.json()['id']}").status_code == 204
    after = scrape(api)
    for name in ("craton_runs_finished_total", "craton_jobs_finished_total"):
        for status in ("SUCCEEDED", "FAILED", "CANCELLED"):
            assert value(after, name, status=status) == value(before, name, status=status)


def test_builds_waiting_for_a_decision_are_pending_approvals(api, sessions, root) -> None:  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        make_ready_task(session, root.project_id, "approved")
        make_ready_task(session, root.project_id, "waiting", approve=False)
        make_ready_task(session, root.project_id, "public-by-admin", public=True)
    assert value(scrape(api), "craton_approvals_pending") == 2  # waiting; public needs root
    with transaction(sessions) as session:
        task = session.query(Task).filter_by(name="waiting").one()
        approve_build(session, session.get(Build, task.ready_build_id))
    assert value(scrape(api), "craton_approvals_pending") == 1


def test_each_live_runner_has_a_heartbeat_age(api, start_runner) -> None:  # type: ignore[no-untyped-def]
    runner = start_runner(FakeExecutor())
    samples = scrape(api)
    ages = {
        dict(labels)["runner"]: age
        for (name, labels), age in samples.items()
        if name == "craton_runner_heartbeat_age_seconds"
    }
    assert runner.id in ages and 0 <= ages[runner.id] < 5
    assert value(samples, "craton_runners_alive") == 1
    runner.stop(timeout=5)
    samples = scrape(api)
    assert value(samples, "craton_runners_alive") == 0
    assert not any(name == "craton_runner_heartbeat_age_seconds" for name, _ in samples)


def test_the_fleet_figures_are_read_once_per_cache_period(sessions, root) -> None:  # type: ignore[no-untyped-def]
    collector = FleetCollector(sessions, lease_seconds=10, cache_seconds=60)
    first, _ = collector.figures()
    with transaction(sessions) as session:
        make_ready_task(session, root.project_id, "new", approve=False)
    assert collector.figures()[0] is first  # a scrape storm costs one query
    assert FleetCollector(sessions, 10, 0).figures()[0].approvals_pending == 1


def test_a_database_that_does_not_answer_leaves_the_process_figures(api, sessions) -> None:  # type: ignore[no-untyped-def]
    def broken() -> Any:
        raise RuntimeError("database down")

    collector = FleetCollector(broken, 10, 0)  # type: ignore[arg-type]
    families = {family.name: family for family in collector.collect()}
    assert list(families) == ["craton_fleet_up"]
    assert families["craton_fleet_up"].samples[0].value == 0


def test_a_metrics_token_is_required_when_set(settings, sessions, root) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from craton_wf.api.app import create_app

    guarded = settings.model_copy(update={"metrics_token": SecretStr("s3cret-scrape")})
    with TestClient(create_app(guarded, sessions)) as client:
        refused = client.get("/metrics")
        assert refused.status_code == 401
        assert refused.json()["code"] == "authentication_failed"
        assert "metrics token" in refused.json()["message"]
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert scrape(client, Authorization="Bearer s3cret-scrape")
        assert client.get("/healthz").status_code == 200  # the token guards /metrics only


def test_an_empty_metrics_token_is_no_token_on_the_api_as_on_a_runner(
    settings, sessions, root
) -> None:  # type: ignore[no-untyped-def]
    # CRATON_WF_METRICS_TOKEN= (a stack file's empty variable): the runner's port
    # answers anyone; the API's /metrics must not ask for an empty bearer instead.
    from fastapi.testclient import TestClient

    from craton_wf.api.app import create_app

    unset = settings.model_copy(update={"metrics_token": SecretStr("")})
    with TestClient(create_app(unset, sessions)) as client:
        assert scrape(client)
    port = _free_port()
    server = serve_metrics("127.0.0.1", port, token=unset.metrics_token.get_secret_value())
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/metrics").status_code == 200
    finally:
        server.shutdown()
        server.server_close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_runner_metrics_port_serves_this_process_figures() -> None:
    port = _free_port()
    server = serve_metrics("127.0.0.1", port, token="runner-scrape")
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        refused = httpx.get(url)
        assert refused.status_code == 401 and refused.json()["status"] == 401
        answer = httpx.get(url, headers={"Authorization": "Bearer runner-scrape"})
        assert answer.status_code == 200
        names = {family.name for family in text_string_to_metric_families(answer.text)}
        assert {"craton_run_duration_seconds", "craton_log_lines_stored"} <= names
        assert not any(
            name.startswith("craton_runs") for name in names
        )  # the API's, not a runner's
    finally:
        server.shutdown()
        server.server_close()
    with pytest.raises(OSError):  # taken: the runner refuses to start, saying so
        busy = socket.socket()
        busy.bind(("127.0.0.1", port))
        busy.listen()
        try:
            serve_metrics("127.0.0.1", port)
        finally:
            busy.close()
