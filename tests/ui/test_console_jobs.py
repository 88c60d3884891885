"""The console's jobs list and job page through the real app: what they show, their
filters and pages, the log reads, and who may press which button."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, update

from craton_wf.db.engine import transaction
from craton_wf.db.models import JobHost, Run
from craton_wf.executors.fake import FakeExecutor, FakeOutcome
from craton_wf.ui.routes import job_page
from craton_wf.ui.routes import jobs as jobs_route
from tests.factories import make_inventory, make_ready_task
from tests.ui.conftest import Browser
from tests.unit.conftest import start_runner, wait_job  # noqa: F401 - fixtures

SCRIPT_HOST = "<script>alert(1)</script>"


def behaviour(spec: Any) -> FakeOutcome:
    """host-001 fails the second step; every run prints three lines, one on stderr."""
    payload = spec.command[-1]
    failing = '"host-001"' in payload and spec.labels.get("craton.step") == "patch"
    lines = [("stdout", "starting"), ("stderr", "a warning"), ("stdout", "done")]
    return FakeOutcome(lines=lines, exit_code=3 if failing else 0)


@pytest.fixture
def finished_job(api, sessions, root, start_runner, wait_job) -> dict[str, Any]:  # noqa: F811 # type: ignore[no-untyped-def]
    """A 3-step workflow job over host-000..002 and a host named like a script
    (host-003's name in the job); host-001 fails its patch step."""
    with transaction(sessions) as session:
        make_inventory(session, root.project_id, 4)
        for name in ("check", "patch", "verify"):
            make_ready_task(session, root.project_id, name)
    wf = api.post("/v1/workflows", json={"name": "runbook", "steps": ["check", "patch", "verify"]})
    assert wf.status_code == 201, wf.text
    created = api.post(
        "/v1/jobs",
        json={
            "workflow": "runbook",
            "name": f"night {SCRIPT_HOST}",
            "hosts": ["host-000", "host-001", "host-002", "host-003"],
            "max_failures": 3,
            "variables": {"change": "CHG-1", "note": SCRIPT_HOST},
        },
    )
    assert created.status_code == 201, created.text
    start_runner(FakeExecutor(behaviour))
    job = wait_job(created.json()["id"])
    assert job.status == "FAILED"
    # Host names are checked when made; a name stored before the checks, or by an
    # import, is still shown as text.
    with transaction(sessions) as session:
        session.execute(
            update(JobHost)
            .where(JobHost.job_id == job.id, JobHost.host_name == "host-003")
            .values(host_name=SCRIPT_HOST)
        )
    return created.json()


def runs_of(api: TestClient, job_id: int) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (run["host_name"], run["step_name"]): run
        for run in api.get(f"/v1/jobs/{job_id}/runs").json()["runs"]
    }


def acting_user(api: TestClient, console: TestClient, role: str, name: str) -> Browser:
    made = api.post("/v1/users", json={"name": name, "role": role})
    assert made.status_code == 201, made.text
    token = api.post("/v1/tokens", json={"user": name}).json()["token"]
    other = Browser(TestClient(console.app, base_url="http://testserver"))
    assert other.sign_in(token).status_code == 303
    return other


# -- the jobs list ---------------------------------------------------------------------


def test_the_list_names_what_ran_who_launched_it_and_counts_hosts(
    signed_in: Browser, finished_job: dict[str, Any]
) -> None:
    page = signed_in.get("/ui/jobs")
    assert page.status_code == 200
    row = re.search(rf'<tr data-job="{finished_job["id"]}".*?</tr>', page.text, re.S)
    assert row, page.text
    text = row.group(0)
    assert "workflow runbook v1" in text and ">root<" in text
    assert "hosts host-000, host-001, host-002, … (4 named)" in text
    assert SCRIPT_HOST not in page.text and "night &lt;script&gt;" in text
    assert "1 failed" in text and "3 succeeded" in text
    assert 'data-final="true"' in text
    assert 'data-live="false"' in page.text  # nothing to poll for


def test_the_list_filters_by_status_workflow_who_and_time(
    signed_in: Browser, finished_job: dict[str, Any], api: TestClient
) -> None:
    job = f'data-job="{finished_job["id"]}"'
    assert job in signed_in.get("/ui/jobs?status=FAILED").text
    assert job not in signed_in.get("/ui/jobs?status=SUCCEEDED").text
    assert job in signed_in.get("/ui/jobs?workflow=runbook").text
    assert job not in signed_in.get("/ui/jobs?workflow=other").text
    assert job in signed_in.get("/ui/jobs?who=root").text
    assert job not in signed_in.get("/ui/jobs?who=nobody").text
    assert job in signed_in.get("/ui/jobs?after=2000-01-01T00:00").text
    assert job not in signed_in.get("/ui/jobs?before=2000-01-01T00:00").text
    assert "match these filters" in signed_in.get("/ui/jobs?who=nobody").text
    bad = signed_in.get("/ui/jobs?after=yesterday")
    assert bad.status_code == 400 and "after must be a time" in bad.text


def test_the_list_pages_newest_first_keeping_its_filters(
    signed_in: Browser, finished_job: dict[str, Any], api: TestClient, monkeypatch: Any
) -> None:
    for _ in range(2):
        retried = api.post(f"/v1/jobs/{finished_job['id']}/retry", json={"failed_hosts": True})
        assert retried.status_code == 201, retried.text
    monkeypatch.setattr(jobs_route, "PAGE_SIZE", 2)
    first = signed_in.get("/ui/jobs?workflow=runbook")
    ids = [int(i) for i in re.findall(r'<tr data-job="(\d+)"', first.text)]
    assert ids == [finished_job["id"] + 2, finished_job["id"] + 1]
    older = re.search(r'href="/ui/jobs\?([^"]*)" class="older"', first.text)
    assert older and "workflow=runbook" in older.group(1)
    second = signed_in.get("/ui/jobs?" + older.group(1).replace("&amp;", "&"))
    assert re.findall(r'<tr data-job="(\d+)"', second.text) == [str(finished_job["id"])]
    assert "the failed hosts of job" in first.text  # a retry's targets


def test_a_page_of_jobs_costs_the_same_queries_however_many_it_holds(
    signed_in: Browser, api: TestClient, console: TestClient, sessions: Any, root: Any
) -> None:
    # No runner here: nothing else queries the database while a page is counted.
    with transaction(sessions) as session:
        make_inventory(session, root.project_id, 2)
        make_ready_task(session, root.project_id, "probe")
    engine = console.app.state.sessions.kw["bind"]
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    def queries() -> int:
        statements.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            assert signed_in.get("/ui/jobs").status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(statements)

    def launch() -> None:
        made = api.post("/v1/jobs", json={"task": "probe", "hosts": ["host-000", "host-001"]})
        assert made.status_code == 201, made.text

    launch()
    queries()  # the first page of a session may refresh it
    one = queries()
    for _ in range(5):
        launch()
    assert len(re.findall("<tr data-job=", signed_in.get("/ui/jobs").text)) == 6
    assert queries() == one


# -- a job's page ---------------------------------------------------------------------


def test_the_job_page_shows_its_header_graph_and_grid(
    signed_in: Browser, finished_job: dict[str, Any], api: TestClient
) -> None:
    page = signed_in.get(f"/ui/jobs/{finished_job['id']}")
    assert page.status_code == 200
    text = page.text
    assert 'id="job-status">FAILED<' in text
    assert "workflow runbook v1" in text and "CHG-1" in text
    # The graph: patch failed on one host, verify skipped there, check all ok.
    assert re.search(r'<g class="node bad" data-step="patch">', text)
    assert re.search(r'<g class="node ok" data-step="check">', text)
    assert "1 failed · 3 ok" in text
    # The grid: a cell per run, the failed one with its exit code, opening its log.
    runs = runs_of(api, finished_job["id"])
    failed = runs[("host-001", "patch")]
    cell = re.search(rf'<td class="cell bad" data-run="{failed["id"]}".*?</td>', text, re.S)
    assert cell and "exit 3" in cell.group(0)
    assert f'href="/ui/jobs/{finished_job["id"]}?run={failed["id"]}#log"' in cell.group(0)
    # A host named like a script is text.
    assert SCRIPT_HOST not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    # Finished with a failed host: both retries offered to root, no cancel.
    assert 'id="retry-failed"' in text and 'id="retry"' in text and 'id="cancel"' not in text
    assert 'data-running="false"' in text


def test_the_grid_pages_filters_failed_hosts_and_searches_names(
    signed_in: Browser, finished_job: dict[str, Any], monkeypatch: Any
) -> None:
    monkeypatch.setattr(job_page, "HOSTS_PER_PAGE", 2)
    base = f"/ui/jobs/{finished_job['id']}"

    def hosts(query: str) -> list[str]:
        return re.findall(r'<tr data-host="([^"]*)">', signed_in.get(base + query).text)

    assert hosts("") == ["host-000", "host-001"]
    assert hosts("?page=2") == ["host-002", "&lt;script&gt;alert(1)&lt;/script&gt;"]
    assert hosts("?page=9") == ["host-002", "&lt;script&gt;alert(1)&lt;/script&gt;"]  # the last
    assert hosts("?failed=true") == ["host-001"]
    assert hosts("?q=002") == ["host-002"]
    assert hosts("?q=%25") == []  # a LIKE wildcard is a character
    assert "No host matches" in signed_in.get(base + "?q=nothing").text
    page_two = signed_in.get(base + "?failed=false&q=host").text
    assert f'href="/ui/jobs/{finished_job["id"]}?q=host&amp;page=2#grid"' in page_two
    live = signed_in.get(base + "/live?page=2")
    assert live.status_code == 200 and "<html" not in live.text and 'id="job-grid"' in live.text


def test_a_job_of_another_project_is_not_found(
    signed_in: Browser,
    finished_job: dict[str, Any],
    api: TestClient,
    console: TestClient,
    root: Any,
) -> None:
    other = api.post("/v1/projects", json={"name": "tenant-b"}).json()["id"]
    root_there = Browser(TestClient(console.app, base_url="http://testserver"))
    assert root_there.sign_in(root.token, project=other).status_code == 303
    job_id = finished_job["id"]
    run_id = next(iter(runs_of(api, job_id).values()))["id"]
    for path in (
        f"/ui/jobs/{job_id}",
        f"/ui/jobs/{job_id}/live",
        f"/ui/jobs/{job_id}/logs?run={run_id}&tail=5",
        f"/ui/jobs/{job_id}/runs/{run_id}/log.txt",
        f"/ui/jobs/{job_id}/events/stream",
    ):
        assert root_there.get(path).status_code == 404, path
    for action in ("cancel", "retry"):
        csrf = root_there.csrf()
        assert root_there.post(f"/ui/jobs/{job_id}/{action}", csrf=csrf).status_code == 404
    assert signed_in.get(f"/ui/jobs/{job_id}").status_code == 200


# -- logs -----------------------------------------------------------------------------


def test_a_log_opens_at_its_end_and_reads_back_by_pages(
    signed_in: Browser, finished_job: dict[str, Any], api: TestClient
) -> None:
    run = runs_of(api, finished_job["id"])[("host-001", "patch")]
    base = f"/ui/jobs/{finished_job['id']}/logs?run={run['id']}"
    tail = signed_in.client.get(base + "&tail=2").json()
    assert [(x["stream"], x["line"]) for x in tail["lines"]] == [
        ("stderr", "a warning"),
        ("stdout", "done"),
    ]
    assert tail["run"]["status"] == "FAILED" and tail["run"]["exit_code"] == 3
    assert tail["run"]["host_name"] == "host-001"
    before = tail["previous_before"]
    assert before == tail["lines"][0]["id"]
    earlier = signed_in.client.get(base + f"&before={before}&limit=2").json()
    assert [x["line"] for x in earlier["lines"]] == ["starting"]
    assert earlier["previous_before"] is None
    assert signed_in.client.get(base + "&tail=0").status_code == 422


def test_a_log_downloads_whole_as_text(
    signed_in: Browser, finished_job: dict[str, Any], api: TestClient, monkeypatch: Any
) -> None:
    from craton_wf.ui.routes import job_logs

    monkeypatch.setattr(job_logs, "DOWNLOAD_PAGE", 2)  # several pages, in order
    run = runs_of(api, finished_job["id"])[("host-001", "patch")]
    answer = signed_in.get(f"/ui/jobs/{finished_job['id']}/runs/{run['id']}/log.txt")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    assert answer.headers["content-disposition"] == (
        f'attachment; filename="job{finished_job["id"]}-host-001-patch.log"'
    )
    assert answer.text == "starting\na warning\ndone\n"
    stamped = signed_in.get(
        f"/ui/jobs/{finished_job['id']}/runs/{run['id']}/log.txt?timestamps=true"
    ).text.splitlines()
    assert len(stamped) == 3 and stamped[1].endswith(" stderr a warning")
    other = runs_of(api, finished_job["id"])[("host-000", "patch")]["id"]
    wrong = signed_in.get(f"/ui/jobs/{finished_job['id'] + 99}/runs/{other}/log.txt")
    assert wrong.status_code == 404


def test_the_events_stream_of_a_finished_job_ends(
    signed_in: Browser, finished_job: dict[str, Any]
) -> None:
    answer = signed_in.client.get(
        f"/ui/jobs/{finished_job['id']}/events/stream",
        headers={"Accept": "text/event-stream"},
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert "event: event" in answer.text and "job_finished" in answer.text
    assert answer.text.rstrip().endswith('data: {"job_status":"FAILED"}')


# -- buttons and who may press them --------------------------------------------------


def test_retry_failed_hosts_from_the_page_runs_only_the_failed_host(
    signed_in: Browser,
    finished_job: dict[str, Any],
    api: TestClient,
    wait_job: Any,  # noqa: F811
) -> None:
    answer = signed_in.post(f"/ui/jobs/{finished_job['id']}/retry", {"failed_hosts": "true"})
    assert answer.status_code == 303
    new_id = int(re.search(r"/ui/jobs/(\d+)\?notice=", answer.headers["location"]).group(1))
    assert new_id != finished_job["id"]
    page = signed_in.get(answer.headers["location"])
    assert f"retries job {finished_job['id']} on its failed hosts" in page.text
    assert f'href="/ui/jobs/{finished_job["id"]}" id="retry-of"' in page.text
    assert [h["host_name"] for h in api.get(f"/v1/jobs/{new_id}/hosts").json()["hosts"]] == [
        "host-001"
    ]
    wait_job(new_id)
    old = signed_in.get(f"/ui/jobs/{finished_job['id']}").text
    assert f'href="/ui/jobs/{new_id}" class="retried-as"' in old
    events = api.get("/v1/audit-events?action=job.retry").json()["audit_events"]
    assert [(e["status"], e["outcome"]) for e in events] == [(303, "success")]  # as answered


def test_a_viewer_sees_no_buttons_and_no_logs_and_is_refused_if_it_posts(
    console: TestClient, finished_job: dict[str, Any], api: TestClient
) -> None:
    viewer = acting_user(api, console, "viewer", "vera")
    job_id = finished_job["id"]
    page = viewer.get(f"/ui/jobs/{job_id}")
    assert page.status_code == 200
    for button in ('id="cancel"', 'id="retry"', 'id="retry-failed"', 'class="run"'):
        assert button not in page.text
    csrf = viewer.csrf(f"/ui/jobs/{job_id}")
    for action in ("cancel", "retry"):
        refused = viewer.post(f"/ui/jobs/{job_id}/{action}", csrf=csrf)
        assert refused.status_code == 403, refused.text
        assert "needs the operator role" in refused.text
    run_id = next(iter(runs_of(api, job_id).values()))["id"]
    assert viewer.get(f"/ui/jobs/{job_id}/logs?run={run_id}&tail=5").status_code == 403
    assert viewer.get(f"/ui/jobs/{job_id}/runs/{run_id}/log.txt").status_code == 403
    assert len(api.get("/v1/jobs").json()["jobs"]) == 1  # nothing was retried


def test_an_auditor_reads_logs_but_has_no_buttons(
    console: TestClient, finished_job: dict[str, Any], api: TestClient
) -> None:
    auditor = acting_user(api, console, "auditor", "ada")
    page = auditor.get(f"/ui/jobs/{finished_job['id']}").text
    assert 'class="run"' in page and 'id="retry"' not in page
    assert 'data-may="true"' in page


def test_cancel_from_the_page_cancels_a_running_job(
    signed_in: Browser, api: TestClient, sessions: Any, root: Any
) -> None:
    with transaction(sessions) as session:
        make_inventory(session, root.project_id, 2)
        make_ready_task(session, root.project_id, "slow")
    created = api.post("/v1/jobs", json={"task": "slow", "hosts": ["host-000", "host-001"]})
    job_id = created.json()["id"]
    page = signed_in.get(f"/ui/jobs/{job_id}").text
    assert 'id="cancel"' in page and 'data-running="true"' in page
    assert 'id="retry"' not in page
    without = signed_in.post(f"/ui/jobs/{job_id}/cancel", csrf=None)
    assert without.status_code == 403 and "CSRF" in without.text
    answer = signed_in.post(f"/ui/jobs/{job_id}/cancel")
    assert answer.status_code == 303
    assert api.get(f"/v1/jobs/{job_id}").json()["status"] == "CANCELLED"
    shown = signed_in.get(answer.headers["location"]).text
    assert "Cancel requested: the job is CANCELLED." in shown


def test_a_once_per_job_step_has_its_row(
    signed_in: Browser, api: TestClient, sessions: Any, root: Any
) -> None:
    with transaction(sessions) as session:
        make_inventory(session, root.project_id, 2)
        make_ready_task(session, root.project_id, "each")
        make_ready_task(session, root.project_id, "summary")
    summary = {"name": "summary", "task": "summary", "once": True, "depends_on": ["each"]}
    steps = [{"name": "each", "task": "each"}, summary]
    assert api.post("/v1/workflows", json={"name": "wf", "steps": steps}).status_code == 201
    job_id = api.post("/v1/jobs", json={"workflow": "wf", "hosts": ["host-000"]}).json()["id"]
    with transaction(sessions) as session:  # as if the summary had run
        session.execute(
            update(Run).where(Run.job_id == job_id, Run.job_host_id.is_(None))
            .values(status="SUCCEEDED", exit_code=0)
        )  # fmt: skip
    page = signed_in.get(f"/ui/jobs/{job_id}").text
    assert "once per job: summary" in page
    assert re.search(r'<tr class="once">.*?exit 0', page, re.S)
