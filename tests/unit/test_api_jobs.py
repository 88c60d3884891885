"""Tasks, workflows and jobs through the API, executed by a runner on the fake executor."""

from __future__ import annotations

import io
import json
import tarfile

from sqlalchemy import inspect, update

from craton_wf.db.engine import transaction
from craton_wf.db.models import Task
from craton_wf.engine import scheduling
from craton_wf.executors.fake import FakeExecutor, FakeOutcome
from craton_wf.services import inventory
from tests.factories import make_inventory, make_ready_task


def tarball(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in files.items():
            data = content.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_task_from_git_and_from_upload(api):
    git = api.post(
        "/v1/tasks",
        json={
            "name": "t-git",
            "location": "https://git.example/t.git",
            "ref": "main",
            "command": "python /craton/t.py",
        },
    )
    assert git.status_code == 201, git.text
    task = git.json()
    assert task["status"] == "BUILD PENDING" and task["source_type"] == "git"
    assert task["command"] == ["python", "/craton/t.py"]
    assert task["current_build"]["number"] == 1
    upload = api.post(
        "/v1/tasks",
        files={
            "spec": (
                None,
                json.dumps(
                    {"name": "t-up", "command": ["sh", "/run.sh"], "location": "/home/op/t-up"}
                ),
            ),
            "archive": (
                "src.tar.gz",
                tarball({"Dockerfile": "FROM x", "run.sh": "echo"}),
                "application/gzip",
            ),
        },
    )
    assert upload.status_code == 201, upload.text
    assert upload.json()["source_type"] == "upload"
    rebuild = api.post(f"/v1/tasks/{task['id']}/builds", json={"ref": "v2"})
    assert rebuild.status_code == 201 and rebuild.json()["number"] == 2
    assert rebuild.json()["ref"] == "v2"
    builds = api.get(f"/v1/tasks/{task['id']}/builds").json()["builds"]
    assert [b["number"] for b in builds] == [1, 2]


def test_upload_without_dockerfile_is_refused_and_nothing_written(api):
    spec = json.dumps({"name": "nodocker", "command": "sh /run.sh"})
    refused = api.post(
        "/v1/tasks",
        files={
            "spec": (None, spec),
            "archive": ("src.tar.gz", tarball({"run.sh": "echo"}), "application/gzip"),
        },
    )
    assert refused.status_code == 400
    assert refused.json()["message"] == "the uploaded source has no Dockerfile at Dockerfile"
    garbage = api.post(
        "/v1/tasks",
        files={"spec": (None, spec), "archive": ("x.tgz", b"not a tar", "application/gzip")},
    )
    assert garbage.status_code == 400 and "tar archive" in garbage.json()["message"]
    assert api.get("/v1/tasks").json()["tasks"] == []


def test_bad_task_input(api):
    assert api.post("/v1/tasks", json={"name": "x", "command": "run"}).status_code == 400
    assert (
        api.post(
            "/v1/tasks", json={"name": "x", "location": "ext::sh -c id", "command": "run"}
        ).status_code
        == 400
    )
    assert (
        api.post(
            "/v1/tasks", json={"name": "x", "location": "https://h/r", "command": ""}
        ).status_code
        == 400
    )
    assert (
        api.post(
            "/v1/tasks",
            json={"name": "x", "location": "https://h/r", "command": "r", "subdir": "../etc"},
        ).status_code
        == 400
    )
    refused = api.post(
        "/v1/tasks",
        json={"name": "x", "location": "https://h/r", "command": "r", "status": "READY"},
    )
    assert refused.status_code == 422 and "status" in refused.json()["message"]
    assert api.get("/v1/tasks").json()["tasks"] == []


def test_job_needs_ready_task_and_matching_hosts(api, sessions, root):
    with transaction(sessions) as session:
        make_inventory(session, root.project_id, 2)
    api.post("/v1/tasks", json={"name": "pending", "location": "https://h/r", "command": "r"})
    not_ready = api.post("/v1/jobs", json={"task": "pending", "filters": {"region": "region1"}})
    assert not_ready.status_code == 409 and "not READY" in not_ready.json()["message"]
    assert not_ready.json()["message"].endswith("wait for its build")
    with transaction(sessions) as session:
        session.execute(update(Task).where(Task.name == "pending").values(status="BUILD FAILED"))
    failed = api.post("/v1/jobs", json={"task": "pending", "filters": {"region": "region1"}})
    assert failed.status_code == 409 and "wait" not in failed.json()["message"]
    assert "its build failed; fix the task and build it again" in failed.json()["message"]
    with transaction(sessions) as session:
        make_ready_task(session, root.project_id, "ready")
    none = api.post("/v1/jobs", json={"task": "ready", "filters": {"label": ["nope"]}})
    assert none.status_code == 400 and none.json()["message"] == "no host matches label=nope"
    both = api.post(
        "/v1/jobs", json={"task": "ready", "filters": {"region": "region1", "label": "nope"}}
    )
    assert both.json()["message"] == "no host matches region=region1, label=nope"
    assert api.post("/v1/jobs", json={"task": "ready"}).status_code == 400
    assert api.post("/v1/jobs", json={"task": "missing", "hosts": [1]}).status_code == 404
    assert api.get("/v1/jobs").json()["jobs"] == []


def test_a_job_reads_back_its_targets_which_its_runners_never_load(api, sessions, root):
    with transaction(sessions) as session:
        hosts = make_inventory(session, root.project_id, 3)
        make_ready_task(session, root.project_id, "ready")
        ids = [h.id for h in hosts]
    made = api.post("/v1/jobs", json={"task": "ready", "hosts": ids[:2]})
    assert made.status_code == 201, made.text
    job_id = made.json()["id"]
    wanted = {"hosts": ids[:2], "filters": {}}
    assert made.json()["targets"] == wanted
    assert api.get(f"/v1/jobs/{job_id}").json()["targets"] == wanted
    assert [j["targets"] for j in api.get("/v1/jobs").json()["jobs"]] == [wanted]
    with transaction(sessions) as session:  # a runner's batch locks the job: no host list read
        job = scheduling.lock_job(session, job_id)
        assert "targets" not in inspect(job).dict and job.steps
        assert job.targets == wanted  # read when asked for


def test_jobs_are_listed_by_name_so_a_job_is_found_by_its_name(api, sessions, root):
    with transaction(sessions) as session:
        hosts = make_inventory(session, root.project_id, 1)
        make_ready_task(session, root.project_id, "ready")
    for name in ("nightly", "other", None):
        body = {"task": "ready", "hosts": [hosts[0].id], "name": name}
        assert api.post("/v1/jobs", json=body).status_code == 201
    named = api.get("/v1/jobs", params={"name": "nightly"})
    assert named.status_code == 200, named.text
    assert [job["name"] for job in named.json()["jobs"]] == ["nightly"]
    assert api.get("/v1/jobs", params={"name": "nobody"}).json()["jobs"] == []


def test_job_hosts_by_id_or_name_in_the_order_given_and_the_first_bad_one_named(
    api, sessions, root
):
    with transaction(sessions) as session:
        hosts = make_inventory(session, root.project_id, 4)
        make_ready_task(session, root.project_id, "ready")
        twin_region = inventory.create_region(
            session, root.project_id, {"name": "region2", "cloud_id": hosts[0].cloud_id}
        )
        for name in ("twin", "solo"):  # "twin" is in both regions
            inventory.create_host(
                session,
                root.project_id,
                {"name": name, "ip_address": "10.9.9.9", "region_id": twin_region.id},
            )
        inventory.create_host(
            session,
            root.project_id,
            {"name": "twin", "ip_address": "10.9.9.8", "region_id": hosts[0].region_id},
        )
        ids = [h.id for h in hosts]
    refs = ["host-003", str(ids[1]), ids[0], "host-003", ids[1], "solo"]
    made = api.post("/v1/jobs", json={"task": "ready", "hosts": refs})
    assert made.status_code == 201, made.text
    job_hosts = api.get(f"/v1/jobs/{made.json()['id']}/hosts").json()["hosts"]
    assert [h["host_name"] for h in job_hosts] == ["host-003", "host-001", "host-000", "solo"]
    for bad, status, said in [
        ([ids[0], "nope", 99999], 404, "host 'nope' not found"),
        ([ids[0], 99999, "nope"], 404, "host 99999 not found"),
        ([ids[0], 2**40], 404, f"host {2**40} not found"),
        (["twin"], 400, "more than one host is named 'twin'"),
        ([ids[0], ""], 400, "host must be given by id or name"),
        ([{"id": ids[0]}], 422, "hosts.0"),
    ]:
        refused = api.post("/v1/jobs", json={"task": "ready", "hosts": bad})
        assert refused.status_code == status and said in refused.json()["message"], (
            bad,
            refused.text,
        )
    assert len(api.get("/v1/jobs").json()["jobs"]) == 1  # nothing half-made by the refusals


def test_workflow_versions_and_job_keeps_its_version(api, sessions, root, start_runner, wait_job):
    with transaction(sessions) as session:
        make_inventory(session, root.project_id, 2)
        for name in ("a", "b", "c"):
            make_ready_task(session, root.project_id, name)
    created = api.post("/v1/workflow", json={"name": "wf", "steps": ["a", {"task": "b"}]})
    assert created.status_code == 201, created.text
    workflow = created.json()
    assert workflow["version"] == 1 and [s["name"] for s in workflow["steps"]] == ["a", "b"]
    job = api.post(
        "/v1/jobs",
        json={
            "workflow": "wf",
            "filters": {"region": "region1"},
            "concurrency": 2,
            "variables": {"k": "v"},
        },
    ).json()
    updated = api.put(f"/v1/workflows/{workflow['id']}", json={"steps": ["c"]}).json()
    assert updated["version"] == 2
    assert api.get(f"/v1/workflows/{workflow['id']}?version=1").json()["steps"][1]["name"] == "b"
    assert len(api.get(f"/v1/workflows/{workflow['id']}/versions").json()["versions"]) == 2

    executor = FakeExecutor(
        lambda spec: FakeOutcome(lines=[("stdout", "hello"), ("stderr", "warn")])
    )
    start_runner(executor)
    assert wait_job(job["id"]).status == "SUCCEEDED"
    shown = api.get(f"/v1/jobs/{job['id']}").json()
    assert shown["workflow_version"] == 1 and shown["summary"]["hosts"] == {"SUCCEEDED": 2}
    assert [s["name"] for s in shown["steps"]] == ["a", "b"]
    runs = api.get(f"/v1/jobs/{job['id']}/runs").json()["runs"]
    assert len(runs) == 4 and all(r["status"] == "SUCCEEDED" for r in runs)
    logs = api.get(f"/v1/jobs/{job['id']}/logs?host=host-001&step=b").json()["logs"]
    assert [(entry["stream"], entry["line"]) for entry in logs] == [
        ("stdout", "hello"),
        ("stderr", "warn"),
    ]
    assert {entry["host_name"] for entry in logs} == {"host-001"}
    followed = api.get(f"/v1/jobs/{job['id']}/logs?follow=true").text.splitlines()
    assert len(followed) == 9 and json.loads(followed[-1]) == {
        "end": True,
        "job_status": "SUCCEEDED",
    }
    events = api.get(f"/v1/jobs/{job['id']}/events").json()["events"]
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "job_created" and kinds[-1] == "job_finished"
    # a run's event names its host; the job's own events none
    hosts = {h["host_name"] for h in api.get(f"/v1/jobs/{job['id']}/hosts").json()["hosts"]}
    assert {e["host_name"] for e in events if e["run_id"] is not None} == hosts
    assert {e["host_name"] for e in events if e["run_id"] is None} == {None}
    listed = api.get("/v1/jobs").json()["jobs"][0]
    assert (listed["workflow_name"], listed["task_name"]) == ("wf", None)
    assert listed["created_by_name"] == "root"
    assert api.delete(f"/v1/tasks/{workflow['steps'][0]['task_id']}").status_code == 204


def test_cancel_job_through_api(api, sessions, root, start_runner, wait_job):
    with transaction(sessions) as session:
        hosts = make_inventory(session, root.project_id, 2)
        make_ready_task(session, root.project_id, "slow")
    start_runner(FakeExecutor(lambda spec: FakeOutcome(delay=30)))
    job = api.post("/v1/jobs", json={"task": "slow", "hosts": [h.id for h in hosts]}).json()
    import time

    for _ in range(100):
        if api.get(f"/v1/jobs/{job['id']}/runs").json()["runs"][0]["status"] == "RUNNING":
            break
        time.sleep(0.05)
    cancelled = api.post(f"/v1/jobs/{job['id']}/cancel")
    assert cancelled.status_code == 202 and cancelled.json()["status"] == "CANCELLING"
    assert wait_job(job["id"], timeout=10).status == "CANCELLED"
    assert api.get(f"/v1/jobs/{job['id']}").json()["summary"]["hosts"] == {"CANCELLED": 2}


def test_retry_failed_hosts_only(api, sessions, root, start_runner, wait_job):
    with transaction(sessions) as session:
        hosts = make_inventory(session, root.project_id, 3)
        make_ready_task(session, root.project_id, "flaky")
    broken = {"host-001"}

    def behaviour(spec):  # type: ignore[no-untyped-def]
        host = json.loads(spec.command[-1])["host"]["name"]
        return FakeOutcome(exit_code=1 if host in broken else 0)

    start_runner(FakeExecutor(behaviour))
    job = api.post(
        "/v1/jobs",
        json={"task": "flaky", "hosts": [h.id for h in hosts], "concurrency": 3, "max_failures": 3},
    ).json()
    assert wait_job(job["id"]).status == "FAILED"
    broken.clear()
    retried = api.post(f"/v1/jobs/{job['id']}/retry", json={"failed_hosts": True})
    assert retried.status_code == 201, retried.text
    retry = retried.json()
    assert retry["retry_of_job_id"] == job["id"]
    assert wait_job(retry["id"]).status == "SUCCEEDED"
    assert [h["host_name"] for h in api.get(f"/v1/jobs/{retry['id']}/hosts").json()["hosts"]] == [
        "host-001"
    ]
    everything = api.post(f"/v1/jobs/{retry['id']}/retry").json()
    assert len(api.get(f"/v1/jobs/{everything['id']}/hosts").json()["hosts"]) == 1
    none_failed = api.post(f"/v1/jobs/{retry['id']}/retry", json={"failed_hosts": True})
    assert none_failed.status_code == 400 and "no failed host" in none_failed.json()["message"]
    kinds = [e["kind"] for e in api.get(f"/v1/jobs/{job['id']}/events").json()["events"]]
    assert "job_retried" in kinds


def test_retry_of_a_running_job_is_refused(api, sessions, root, start_runner):
    with transaction(sessions) as session:
        hosts = make_inventory(session, root.project_id, 1)
        make_ready_task(session, root.project_id, "slow")
    start_runner(FakeExecutor(lambda spec: FakeOutcome(delay=30)))
    job = api.post("/v1/jobs", json={"task": "slow", "hosts": [hosts[0].id]}).json()
    refused = api.post(f"/v1/jobs/{job['id']}/retry")
    assert refused.status_code == 409
    api.post(f"/v1/jobs/{job['id']}/cancel")


def test_a_cancel_racing_the_first_claim_is_neither_refused_nor_lost(
    api, sessions, root, start_runner, wait_job
):
    with transaction(sessions) as session:
        hosts = make_inventory(session, root.project_id, 2)
        make_ready_task(session, root.project_id, "slow")
    start_runner(FakeExecutor(lambda spec: FakeOutcome(delay=30)))
    for _ in range(6):
        job = api.post(
            "/v1/jobs", json={"task": "slow", "hosts": [h.id for h in hosts], "concurrency": 2}
        ).json()
        answer = api.post(f"/v1/jobs/{job['id']}/cancel")
        assert answer.status_code == 202, answer.text
        assert wait_job(job["id"]).status == "CANCELLED"
