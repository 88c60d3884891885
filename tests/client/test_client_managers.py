"""The managers: name resolution, variables, workflows, jobs, logs and NDJSON streams."""

from __future__ import annotations

import json

import httpx
import pytest

import cratonclient


def test_an_all_digit_argument_is_an_id_without_a_lookup(router, client) -> None:
    router.add("GET", "/v1/hosts/12", {"id": 12, "name": "compute-12"})

    assert client.hosts.resolve_id("12") == 12
    assert client.hosts.find("12").name == "compute-12"
    assert [r.url.path for r in router.requests] == ["/v1/hosts/12"]


def test_a_name_is_looked_up_with_the_name_filter(router, client) -> None:
    router.collection(
        "/v1/tasks", "tasks", [{"id": 4, "name": "patch"}, {"id": 5, "name": "audit"}]
    )

    assert client.tasks.resolve_id("audit") == 5
    assert router.requests[-1].url.params["name"] == "audit"


def test_a_name_matching_nothing_is_not_found(router, client) -> None:
    router.collection("/v1/regions", "regions", [{"id": 1, "name": "r1"}])

    with pytest.raises(cratonclient.NotFound, match="No region with name or id 'r2'"):
        client.regions.find("r2")


def test_a_name_matching_several_objects_needs_an_id(router, client) -> None:
    # The server may filter loosely; only exact matches count, and two are too many.
    router.add(
        "GET",
        "/v1/hosts",
        {
            "hosts": [
                {"id": 1, "name": "web"},
                {"id": 2, "name": "web"},
                {"id": 3, "name": "web-2"},
            ],
            "links": [],
        },
    )

    with pytest.raises(cratonclient.NoUniqueMatch, match=r"2 hosts are named 'web' \(ids 1, 2\)"):
        client.hosts.resolve_id("web")


def test_project_ids_are_uuids(router, client) -> None:
    project = "5e5c0cc3-7a3a-4b6c-9f1c-3f1a6f0c2d11"
    router.collection("/v1/projects", "projects", [{"id": project, "name": "ops"}])

    assert client.projects.resolve_id(project) == project
    assert client.projects.resolve_id("ops") == project
    assert len(router.requests) == 1


def test_variables_helpers(router, client) -> None:
    router.add("GET", "/v1/cells/3/variables", {"variables": {"ntp": "10.0.0.1"}})
    router.add("PUT", "/v1/cells/3/variables", {"variables": {"ntp": "10.0.0.2", "n": 3}})
    router.add("DELETE", "/v1/cells/3/variables", httpx.Response(204))

    assert client.cells.get_variables(3, resolved=False) == {"ntp": "10.0.0.1"}
    assert client.cells.set_variables(3, {"ntp": "10.0.0.2", "n": 3})["n"] == 3
    client.cells.delete_variables(3, ["ntp", "n"])

    get, put, delete = router.requests
    assert get.url.params["resolved-values"] == "false"
    assert json.loads(put.content) == {"ntp": "10.0.0.2", "n": 3}
    assert json.loads(delete.content) == ["ntp", "n"]


def test_create_update_delete(router, client) -> None:
    router.add(
        "POST", "/v1/hosts", lambda request: httpx.Response(201, json=json.loads(request.content))
    )
    router.add("PUT", "/v1/hosts/7", {"id": 7, "name": "h", "note": "moved"})
    router.add("DELETE", "/v1/hosts/7", httpx.Response(204))

    created = client.hosts.create(name="h", ip_address="10.0.0.7", region_id=1, cell_id=None)
    updated = client.hosts.update(7, note="moved", parent_id=None)
    client.hosts.delete(7)

    assert created.to_dict() == {"name": "h", "ip_address": "10.0.0.7", "region_id": 1}
    assert json.loads(router.requests[1].content) == {"note": "moved"}
    assert updated.note == "moved"
    assert router.requests[2].method == "DELETE"


def test_workflow_at_a_version(router, client) -> None:
    router.add("GET", "/v1/workflows/2", {"id": 2, "version": 1, "steps": []})

    assert client.workflows.get(2, version=1).version == 1
    assert router.requests[-1].url.params["version"] == "1"


def test_job_actions(router, client) -> None:
    router.add(
        "POST", "/v1/jobs/5/cancel", httpx.Response(202, json={"id": 5, "status": "CANCELLING"})
    )
    router.add("GET", "/v1/jobs/5/hosts", {"hosts": [{"host_name": "a", "status": "RUNNING"}]})
    router.add("GET", "/v1/jobs/5/runs", {"runs": [{"id": 1, "step_name": "patch"}]})
    router.add("GET", "/v1/jobs/5/events", {"events": [{"id": 1, "kind": "job.created"}]})

    assert client.jobs.cancel(5).status == "CANCELLING"
    assert client.jobs.hosts(5)[0].host_name == "a"
    assert client.jobs.runs(5, host="a", step="patch")[0].step_name == "patch"
    assert client.jobs.events(5)[0].kind == "job.created"
    runs = router.sent("GET", "/v1/jobs/5/runs")[0]
    assert dict(runs.url.params) == {"host": "a", "step": "patch"}


def test_job_logs_without_follow_are_fetched_until_exhausted(router, client) -> None:
    lines = [{"id": i, "host_name": "a", "step_name": "s", "line": f"l{i}"} for i in range(1, 6)]

    def page(request: httpx.Request) -> httpx.Response:
        after = int(request.url.params["after"])
        chunk = [entry for entry in lines if entry["id"] > after][:2]
        next_after = chunk[-1]["id"] if chunk else after
        return httpx.Response(
            200, json={"logs": chunk, "next_after": next_after, "job_status": "RUNNING"}
        )

    router.add("GET", "/v1/jobs/5/logs", page)

    assert [entry.line for entry in client.jobs.logs(5, host="a")] == ["l1", "l2", "l3", "l4", "l5"]
    assert [r.url.params["after"] for r in router.requests] == ["0", "2", "4", "5"]
    assert router.requests[0].url.params["host"] == "a"


def test_job_logs_follow_iterates_the_ndjson_stream(router, client) -> None:
    stream = [
        {"id": 1, "host_name": "a", "step_name": "s", "stream": "stdout", "line": "one"},
        {"id": 2, "host_name": "a", "step_name": "s", "stream": "stderr", "line": "two"},
    ]
    router.add("GET", "/v1/jobs/5/logs", router.ndjson(stream))

    entries = list(client.jobs.logs(5, follow=True, after=0))

    assert [e.to_dict() for e in entries] == stream
    assert router.requests[0].url.params["follow"] == "true"


def test_build_logs_follow_yields_lines_as_they_arrive(router, client) -> None:
    received = []

    def chunks():
        for seq in (1, 2, 3):
            # The iterator must hand out each line before the next one is read.
            assert len(received) == seq - 1
            yield (json.dumps({"seq": seq, "line": f"step {seq}"}) + "\n").encode()

    router.add(
        "GET",
        "/v1/tasks/4/builds/latest/logs",
        lambda request: httpx.Response(
            200, content=chunks(), headers={"content-type": "application/x-ndjson"}
        ),
    )

    for entry in client.tasks.build_logs(4, follow=True):
        received.append(entry.line)

    assert received == ["step 1", "step 2", "step 3"]


def test_follow_stream_error_status_is_mapped(router, client) -> None:
    router.add("GET", "/v1/jobs/9/logs", router.error(404, "Job 9 not found.", "not_found"))

    with pytest.raises(cratonclient.NotFound, match="Job 9 not found."):
        list(client.jobs.logs(9, follow=True))


def test_jobs_wait_polls_until_finished(router, client) -> None:
    states = iter(["PENDING", "RUNNING", "SUCCEEDED"])
    router.add(
        "GET",
        "/v1/jobs/3",
        lambda request: httpx.Response(200, json={"id": 3, "status": next(states)}),
    )

    seen = [job.status for job in client.jobs.poll(3, interval=0, sleep=lambda s: None)]

    assert seen == ["PENDING", "RUNNING", "SUCCEEDED"]
