"""Checking a workflow without writing it: POST /v1/workflows/validate."""

from __future__ import annotations

from craton_wf.db.engine import transaction
from tests.factories import make_ready_task


def test_a_valid_workflow_is_answered_as_it_would_be_stored_and_nothing_is_written(
    api, sessions, root
):
    with transaction(sessions) as session:
        make_ready_task(session, root.project_id, "patch")

    checked = api.post(
        "/v1/workflows/validate",
        json={"name": "maint", "steps": [{"task": "patch", "timeout": 300, "retries": 2}]},
    )

    assert checked.status_code == 200, checked.text
    body = checked.json()
    assert body["valid"] is True and body["exists"] is False
    assert [(s["name"], s["task_name"], s["timeout"]) for s in body["steps"]] == [
        ("patch", "patch", 300)
    ]
    assert api.get("/v1/workflows").json()["workflows"] == []


def test_an_invalid_workflow_says_what_is_wrong(api, sessions, root):
    with transaction(sessions) as session:
        make_ready_task(session, root.project_id, "patch")

    missing = api.post("/v1/workflows/validate", json={"steps": ["nope"]})
    cycle = api.post(
        "/v1/workflows/validate",
        json={
            "steps": [
                {"name": "a", "task": "patch", "depends_on": ["b"]},
                {"name": "b", "task": "patch", "depends_on": ["a"]},
            ]
        },
    )

    assert missing.status_code == 404 and "nope" in missing.json()["message"]
    assert cycle.status_code == 400 and "cycle" in cycle.json()["message"]


def test_the_name_of_an_existing_workflow_is_reported_not_refused(api, sessions, root):
    with transaction(sessions) as session:
        make_ready_task(session, root.project_id, "patch")
    assert api.post("/v1/workflows", json={"name": "maint", "steps": ["patch"]}).status_code == 201

    checked = api.post("/v1/workflows/validate", json={"name": "maint", "steps": ["patch"]})

    assert checked.status_code == 200 and checked.json()["exists"] is True
