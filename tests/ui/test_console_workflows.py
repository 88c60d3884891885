"""The console's workflows pages and its launch form: versions, steps and graph, and a
launch that is ``POST /v1/jobs`` (the same checks, the same messages, the job's page)."""

from __future__ import annotations

from typing import Any

import pytest

from craton_wf.db.engine import transaction
from tests.factories import make_inventory, make_ready_task
from tests.ui.conftest import Browser
from tests.ui.console_people import browser_as, other_project

HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture
def world(sessions, root, api) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        hosts = [h.name for h in make_inventory(session, root.project_id, 3)]
        make_ready_task(session, root.project_id, "drain")
        make_ready_task(session, root.project_id, "patch")
        make_ready_task(session, root.project_id, "unapproved", approve=False)
    steps = [
        {"name": "drain", "task": "drain", "args": {"note": HOSTILE}},
        {"name": "patch", "task": "patch", "depends_on": ["drain"], "retries": 2},
    ]
    created = api.post("/v1/workflows", json={"name": "maintenance", "steps": steps})
    assert created.status_code == 201, created.text
    workflow = created.json()
    changed = api.put(
        f"/v1/workflows/{workflow['id']}",
        json={"steps": [*steps, {"task": "drain", "name": "undrain", "depends_on": ["patch"]}]},
    )
    assert changed.json()["version"] == 2
    return {"hosts": hosts, "workflow": workflow}


def launch(browser: Browser, workflow: int, **fields: str):  # type: ignore[no-untyped-def]
    form = {"workflow": str(workflow), "concurrency": "1", "max_failures": "0", **fields}
    return browser.post("/ui/jobs", form)


def test_the_list_and_a_workflows_versions_steps_and_graph(world, signed_in: Browser) -> None:  # type: ignore[no-untyped-def]
    wf = world["workflow"]["id"]
    listed = signed_in.get("/ui/workflows").text
    assert "maintenance" in listed and "v2" in listed and "drain → patch → undrain" in listed
    latest = signed_in.get(f"/ui/workflows/{wf}").text
    assert latest.count('<tr data-step="') == 3 and "<svg" in latest
    assert latest.count('class="edge"') == 2
    assert f'href="/ui/workflows/{wf}?version=1"' in latest
    first = signed_in.get(f"/ui/workflows/{wf}?version=1").text
    assert first.count('<tr data-step="') == 2 and "undrain" not in first
    assert "(latest: v2)" in first
    assert signed_in.get(f"/ui/workflows/{wf}?version=9").status_code == 404
    by_name = signed_in.get("/ui/workflows/maintenance")
    assert by_name.status_code == 200


def test_a_steps_arguments_render_as_text(world, signed_in: Browser) -> None:  # type: ignore[no-untyped-def]
    page = signed_in.get(f"/ui/workflows/{world['workflow']['id']}").text
    assert HOSTILE not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_launching_creates_the_job_and_leads_to_its_page(world, signed_in: Browser, api) -> None:  # type: ignore[no-untyped-def]
    wf = world["workflow"]["id"]
    form = signed_in.get(f"/ui/workflows/{wf}/launch?version=1").text
    assert 'name="workflow_version" value="1"' in form and "<svg" in form
    answer = launch(
        signed_in,
        wf,
        workflow_version="1",
        hosts="host-000,\nhost-001",
        labels="compute",
        region="region1",
        variables="release=1.10\n# a comment\nwindow = night",
        concurrency="2",
        max_failures="1",
        timeout="600",
        name="tonight",
    )
    assert answer.status_code == 303, answer.text
    job_id = int(answer.headers["location"].rsplit("/", 1)[1])
    assert answer.headers["location"] == f"/ui/jobs/{job_id}"
    job = api.get(f"/v1/jobs/{job_id}").json()
    assert job["workflow_version"] == 1 and job["name"] == "tonight"
    assert job["variables"] == {"release": "1.10", "window": "night"}
    assert job["targets"] == {
        "hosts": ["host-000", "host-001"],
        "filters": {"label": ["compute"], "region": "region1"},
    }
    assert (job["concurrency"], job["max_failures"], job["timeout_seconds"]) == (2, 1, 600)
    assert len(api.get(f"/v1/jobs/{job_id}/hosts").json()["hosts"]) == 3
    events = api.get("/v1/audit-events?action=job.create").json()["audit_events"]
    assert events[0]["object_id"] == str(job_id) and events[0]["path"] == "/ui/jobs"
    assert (events[0]["status"], events[0]["outcome"]) == (303, "success")


def test_json_variables_keep_their_types(world, signed_in: Browser, api) -> None:  # type: ignore[no-untyped-def]
    answer = launch(
        signed_in, world["workflow"]["id"], cell="cell1", variables='{"batch": 5, "tags": ["a"]}'
    )
    assert answer.status_code == 303, answer.text
    job = api.get(answer.headers["location"].replace("/ui/", "/v1/")).json()
    assert job["variables"] == {"batch": 5, "tags": ["a"]}


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"hosts": "nowhere"}, 404, "host &#39;nowhere&#39; not found"),
        ({"hosts": "host-000", "concurrency": "0"}, 400, "concurrency: Input should be greater"),
        ({"hosts": "host-000", "concurrency": "two"}, 400, "concurrency must be a whole number"),
        ({"hosts": "host-000", "variables": "not a pair"}, 400, "variables, line 1"),
        ({"hosts": "host-000", "variables": "{oops"}, 400, "variables: not a JSON object"),
        (
            {"hosts": "host-000", "variables": '{"a": ' + "[" * 5000 + "]" * 5000 + "}"},
            400,
            "too deep",
        ),
        ({}, 400, "name the target hosts"),
        ({"region": "atlantis"}, 404, "region &#39;atlantis&#39; not found"),
    ],
)
def test_a_refused_launch_shows_the_message_and_keeps_what_was_typed(
    world, signed_in: Browser, api, fields: dict[str, str], status: int, message: str
) -> None:  # type: ignore[no-untyped-def]
    typed = {"variables": "keep=<me>", **fields}
    answer = launch(signed_in, world["workflow"]["id"], name="kept-name", **typed)
    assert answer.status_code == status, answer.text
    assert message in answer.text
    assert 'id="launch-form"' in answer.text and 'value="kept-name"' in answer.text
    assert "&lt;me&gt;" in answer.text or "keep=" not in typed["variables"]
    assert api.get("/v1/jobs").json()["jobs"] == []
    # the audit trail tells the refusal, as for the API's call
    (event,) = api.get("/v1/audit-events?action=job.create").json()["audit_events"]
    assert (event["status"], event["outcome"]) == (status, "failure")


def test_a_task_whose_build_is_not_approved_is_not_launched(world, signed_in: Browser, api) -> None:  # type: ignore[no-untyped-def]
    task = api.get("/v1/tasks?name=unapproved").json()["tasks"][0]
    form = signed_in.get(f"/ui/tasks/{task['id']}/launch")
    assert form.status_code == 200 and 'name="task"' in form.text
    answer = signed_in.post("/ui/jobs", {"task": str(task["id"]), "hosts": "host-000"})
    assert answer.status_code == 409 and "is not approved" in answer.text
    assert api.get("/v1/jobs").json()["jobs"] == []
    ok = signed_in.post("/ui/jobs", {"task": "patch", "hosts": "host-000"})
    assert ok.status_code == 303
    assert api.get(ok.headers["location"].replace("/ui/", "/v1/")).json()["task_name"] == "patch"


def test_a_viewer_sees_no_launch_and_is_refused(world, console, api) -> None:  # type: ignore[no-untyped-def]
    viewer, _ = browser_as(console, api, "viewer")
    wf = world["workflow"]["id"]
    assert viewer.get("/ui/workflows").status_code == 200
    page = viewer.get(f"/ui/workflows/{wf}").text
    assert "/launch" not in page
    assert viewer.get(f"/ui/workflows/{wf}/launch").status_code == 403
    refused = launch(viewer, wf, hosts="host-000")
    assert refused.status_code == 403 and "needs the auditor role" in refused.text
    assert api.get("/v1/jobs").json()["jobs"] == []


def test_a_launch_without_the_csrf_token_is_refused(world, signed_in: Browser, api) -> None:  # type: ignore[no-untyped-def]
    answer = signed_in.post(
        "/ui/jobs", {"workflow": str(world["workflow"]["id"]), "hosts": "host-000"}, csrf=None
    )
    assert answer.status_code == 403 and "CSRF" in answer.text
    assert api.get("/v1/jobs").json()["jobs"] == []


def test_another_projects_workflow_is_not_found(world, signed_in: Browser, api, sessions) -> None:  # type: ignore[no-untyped-def]
    project = other_project(api)
    with transaction(sessions) as session:
        from craton_wf.services import workflows
        from craton_wf.services.inputs import WorkflowCreate

        make_ready_task(session, project, "theirs")
        theirs = workflows.create_workflow(
            session, project, None, WorkflowCreate(name="theirs", steps=["theirs"])
        ).id
    for path in (f"/ui/workflows/{theirs}", f"/ui/workflows/{theirs}/launch"):
        assert signed_in.get(path).status_code == 404, path
    assert launch(signed_in, theirs, hosts="host-000").status_code == 404
