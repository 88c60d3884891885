"""Launching a workflow from the console in a real browser against a live ``craton-wf
serve`` (fake executor): the workflow's page and graph, the launch form, a refused
launch that keeps what was typed, a launch that lands on the job's page and runs.

The screenshots of the workflow's launch form and of a host's page in
``docs/console/`` are taken here.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from craton_wf.db.engine import make_engine, make_session_factory, transaction
from craton_wf.settings import Settings
from tests.browser.support import screenshot
from tests.e2e.conftest import Server
from tests.factories import make_inventory, make_ready_task

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def api(server: Server) -> httpx.Client:
    return httpx.Client(
        base_url=server.url,
        timeout=30,
        headers={
            "X-Auth-Project": server.env["OS_PROJECT_ID"],
            "X-Auth-User": server.env["OS_USERNAME"],
            "X-Auth-Token": server.env["OS_PASSWORD"],
        },
    )


def prepare(server: Server) -> dict[str, Any]:
    """Hosts with variables at several scopes, approved READY tasks, a maintenance workflow."""
    project = server.env["OS_PROJECT_ID"]
    engine = make_engine(Settings(database_url=server.env["CRATON_WF_DATABASE_URL"]))
    try:
        with transaction(make_session_factory(engine)) as session:
            hosts = make_inventory(session, project, 4, host_vars={"kernel": "6.1.0-18"})
            hosts[0].variables = {"kernel": "6.1.0-21", "tz": "Europe/Paris", "rack": "r12"}
            for name in ("disable-compute", "migrate-vms", "patch", "reboot", "enable-compute"):
                make_ready_task(session, project, name, command=f"{name}.sh")
            first = hosts[0].id
    finally:
        engine.dispose()
    steps = [
        {"name": "disable-compute", "task": "disable-compute"},
        {"name": "migrate-vms", "task": "migrate-vms", "depends_on": ["disable-compute"]},
        {"name": "patch", "task": "patch", "depends_on": ["migrate-vms"], "retries": 1},
        {"name": "reboot", "task": "reboot", "depends_on": ["patch"]},
        {"name": "enable-compute", "task": "enable-compute", "depends_on": ["reboot"]},
    ]
    with api(server) as client:
        client.put(f"/v1/projects/{project}", json={"variables": {"ntp": "10.0.0.254"}})
        created = client.post(
            "/v1/workflows",
            json={
                "name": "host-maintenance",
                "description": "Patch a compute host",
                "steps": steps,
            },
        )
        assert created.status_code == 201, created.text
    return {"workflow": created.json()["id"], "host": first}


def policy_violations(page: Any) -> list[str]:
    """The messages the page's console gets from here on about its Content-Security-Policy
    (an inline style or script the pages must not have)."""
    said: list[str] = []
    page.on(
        "console",
        lambda message: (
            said.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return said


def test_a_workflow_is_launched_from_its_form_and_lands_on_the_job(
    console_server: Server, open_console: Any
) -> None:
    made = prepare(console_server)
    page, refused = open_console(console_server)
    violations = policy_violations(page)
    page.set_viewport_size({"width": 1400, "height": 900})
    page.click("header nav >> text=Workflows")
    page.click("#workflows >> text=host-maintenance")
    page.wait_for_url(f"**/ui/workflows/{made['workflow']}")
    assert page.locator("svg.graph g.node").count() == 5
    assert page.locator("#steps tbody tr").count() == 5
    page.click("#launch")
    page.wait_for_url("**/launch?version=1")

    page.fill("textarea[name=hosts]", "host-000")
    page.fill("input[name=labels]", "compute")
    page.fill("input[name=region]", "region1")
    page.fill("textarea[name=variables]", "ticket=CHG-1234\nreason=<kernel update>")
    page.fill("input[name=concurrency]", "2")
    page.fill("input[name=max_failures]", "1")
    screenshot(page, "workflow-launch.png")

    # A host that does not exist: the form comes back with the message and what was typed.
    page.fill("textarea[name=hosts]", "host-000 host-404")
    page.click("#launch-form button[type=submit]")
    assert "host 'host-404' not found" in page.locator("#launch-error").inner_text()
    assert page.input_value("textarea[name=hosts]") == "host-000 host-404"
    assert "reason=<kernel update>" in page.input_value("textarea[name=variables]")
    assert page.input_value("input[name=concurrency]") == "2"
    assert page.input_value("input[name=labels]") == "compute"

    page.fill("textarea[name=hosts]", "host-000")
    page.click("#launch-form button[type=submit]")
    page.wait_for_url("**/ui/jobs/*")
    job_id = int(page.url.rsplit("/", 1)[1].split("?")[0])

    with api(console_server) as client:
        job = client.get(f"/v1/jobs/{job_id}").json()
        assert job["workflow_name"] == "host-maintenance" and job["concurrency"] == 2
        assert job["variables"] == {"ticket": "CHG-1234", "reason": "<kernel update>"}
        assert job["targets"]["filters"] == {"label": ["compute"], "region": "region1"}
        deadline = time.monotonic() + 120
        while job["status"] not in ("SUCCEEDED", "FAILED"):
            assert time.monotonic() < deadline, f"the job stayed {job['status']}"
            time.sleep(0.3)
            job = client.get(f"/v1/jobs/{job_id}").json()
        assert job["status"] == "SUCCEEDED"
        assert len(client.get(f"/v1/jobs/{job_id}/hosts").json()["hosts"]) == 4
    assert refused == [] and violations == []


def test_the_inventory_leads_to_a_host_and_its_variables_sources(
    console_server: Server, open_console: Any
) -> None:
    made = prepare(console_server)
    page, refused = open_console(console_server)
    violations = policy_violations(page)
    page.set_viewport_size({"width": 1400, "height": 900})
    page.click("header nav >> text=Inventory")
    page.click("#inventory-tree >> text=cell1")
    page.wait_for_url("**/ui/inventory/hosts?cell=*")
    assert page.locator("#hosts tbody tr").count() == 4
    page.click("#hosts >> text=host-000")
    page.wait_for_url(f"**/ui/inventory/hosts/{made['host']}")
    kernel = page.locator('#variables tr[data-key="kernel"]')
    assert kernel.locator("td.value").inner_text() == "6.1.0-21"
    assert kernel.locator("td.source").inner_text() == "host"
    tz = page.locator('#variables tr[data-key="tz"]')
    assert tz.locator("td.source").inner_text() == "host"
    assert tz.locator(".hidden-by").inner_text() == "region region1: UTC"
    assert page.locator('#variables tr[data-key="ntp"] td.source').inner_text() == "project default"
    screenshot(page, "host.png")
    for path in ("/ui/runners", "/ui/audit", "/ui/tasks", "/ui/workflows", "/ui/inventory"):
        page.goto(console_server.url + path)
        assert page.locator("h1").count() == 1, path
    assert refused == [] and violations == []
