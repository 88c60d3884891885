"""The Swarm executor on a real single-node swarm of the local engine, with images
pulled from the registry on loopback: hardening, logs, exit codes, stop, adoption
by name and labels, and jobs driven by `craton-wf runner` processes (a workflow
over several hosts with a failing one, a step timeout, cancel, and a runner
SIGKILLed mid-run whose service a second runner adopts)."""

from __future__ import annotations

import contextlib
import io
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import docker
import docker.errors
import pytest
from sqlalchemy import select

from craton_wf.db.engine import transaction
from craton_wf.db.models import JobHost, Run, RunLog
from craton_wf.errors import ExecutorError
from craton_wf.executors.base import ContainerSpec, ContainerState, Limits
from craton_wf.executors.swarm import SwarmExecutor
from craton_wf.services import jobs as job_service
from craton_wf.services import workflows as workflow_service
from craton_wf.services.inputs import WorkflowCreate
from tests.factories import make_inventory, make_ready_task
from tests.integration.test_durability import Runners, stored_lines, wait_job

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]

LINES = 40
COUNT = (
    f'i=1; while [ $i -le {LINES} ]; do echo "n $i"; i=$((i+1)); sleep 0.05; done; echo done >&2'
)


@pytest.fixture(scope="session")
def swarm(docker_client: docker.DockerClient) -> str:
    """The local engine as a single-node swarm manager (made one if it is not)."""
    state = docker_client.info()["Swarm"].get("LocalNodeState")
    if state != "active":
        done = subprocess.run(
            ["docker", "swarm", "init", "--advertise-addr", "127.0.0.1"],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(f"swarm mode cannot start here: {done.stderr.strip()}")
    return docker_client.info()["Swarm"]["NodeID"]


@pytest.fixture(scope="session")
def shipped_image(
    docker_client: docker.DockerClient, busybox_image: str, registry: str, swarm: str
) -> Iterator[str]:
    """A task base image that exists only in the registry: swarm has to pull it."""
    marker = uuid.uuid4().hex[:10]
    dockerfile = f"FROM {busybox_image}\nLABEL craton.test-image={marker}\n"
    image, _ = docker_client.images.build(
        fileobj=io.BytesIO(dockerfile.encode()), tag=f"craton-stest/base:{marker}", rm=True
    )
    remote = f"{registry}/craton-stest/base"
    image.tag(remote, marker)
    pushed = list(docker_client.api.push(remote, tag=marker, stream=True, decode=True))
    digest = next(c["aux"]["Digest"] for c in pushed if "Digest" in (c.get("aux") or {}))
    docker_client.images.remove(image.id, force=True)  # gone locally: pulled when used
    yield f"{remote}@{digest}"
    for leftover in docker_client.images.list(filters={"reference": f"{remote}*"}):
        # A container of a just-removed service may still hold it; it goes with the engine's
        # own cleanup then.
        with contextlib.suppress(docker.errors.APIError):
            docker_client.images.remove(leftover.id, force=True)


def remove_services_and_containers(docker_client, project: str) -> None:  # type: ignore[no-untyped-def]
    label = {"label": f"craton.project={project}"}
    for service in docker_client.services.list(filters=label):
        service.remove()
    for container in docker_client.containers.list(ignore_removed=True, all=True, filters=label):
        container.remove(force=True)


def remove_project_networks(docker_client, project: str) -> None:  # type: ignore[no-untyped-def]
    """The project's overlays, once its tasks' endpoints are gone (which takes a moment)."""
    for name in (f"craton-isolated-{project}", f"craton-net-{project}"):
        for _ in range(40):
            found = docker_client.networks.list(names=[name])
            if not found:
                break
            with contextlib.suppress(docker.errors.APIError):
                found[0].remove()
            time.sleep(0.5)


@pytest.fixture
def executor(swarm: str) -> Iterator[SwarmExecutor]:
    made = SwarmExecutor(stop_grace_seconds=2)
    yield made
    made.close()


@pytest.fixture
def run_label(docker_client: docker.DockerClient) -> Iterator[str]:
    """A craton.project label for this test; its services are removed at the end."""
    project = f"stest-{uuid.uuid4().hex[:8]}"
    yield project
    remove_services_and_containers(docker_client, project)
    remove_project_networks(docker_client, project)


def spec(image: str, project: str, script: str, **overrides: Any) -> ContainerSpec:
    values: dict[str, Any] = {
        "name": f"craton-run-{uuid.uuid4().hex[:8]}-1-test",
        "image": image,
        "command": ["sh", "-c", script, "task", '{"payload": true}'],
        "labels": {"craton.project": project, "craton.run-uid": uuid.uuid4().hex[:8]},
        "env": {"GREETING": "hello"},
        "limits": Limits(memory_bytes=128 * 1024 * 1024, nano_cpus=500_000_000, pids=64),
    }
    values.update(overrides)
    return ContainerSpec(**values)


def test_a_run_is_a_hardened_replicated_job_service(
    executor, shipped_image, run_label, docker_client
):
    script = (
        'echo "user $(id -u)"; echo "$GREETING $1"; grep CapEff /proc/self/status; '
        "ls /sys/class/net | tr '\\n' ' '; echo; "
        "touch /not-here 2>/dev/null || echo read-only root; "
        "touch /tmp/ok && echo tmp writable; "
        "wget -q -T 2 -O /dev/null http://1.1.1.1 2>/dev/null || echo no route out; "
        "echo oops >&2; exit 3"
    )
    made = spec(shipped_image, run_label, script)
    handle = executor.create(made)
    assert handle.state == ContainerState.RUNNING

    assert executor.wait(handle, timeout=120) == 3
    lines = list(executor.logs(handle))
    stdout = [line.text for line in lines if line.stream == "stdout"]
    assert stdout[:3] == ["user 65534", 'hello {"payload": true}', "CapEff:\t0000000000000000"]
    assert "read-only root" in stdout and "tmp writable" in stdout and "no route out" in stdout
    assert [line.text for line in lines if line.stream == "stderr"] == ["oops"]
    assert all(a.ts <= b.ts for a, b in zip(lines, lines[1:], strict=False))

    service = docker_client.api.inspect_service(handle.id)["Spec"]
    assert service["Mode"] == {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}}
    template = service["TaskTemplate"]
    container = template["ContainerSpec"]
    assert template["RestartPolicy"]["Condition"] == "none"
    assert container["Image"] == shipped_image  # by digest, from the registry
    assert container["User"] == "65534:65534" and container["ReadOnly"] is True
    assert container["CapabilityDrop"] == ["ALL"]
    assert not [m for m in container.get("Mounts", []) if m["Type"] == "bind"]
    assert template["Resources"]["Limits"] == {
        "NanoCPUs": 500_000_000,
        "MemoryBytes": 128 * 1024 * 1024,
        "Pids": 64,
    }
    network = docker_client.api.inspect_network(template["Networks"][0]["Target"])
    assert network["Name"] == f"craton-isolated-{run_label}" and network["Internal"] is True
    assert service["Labels"]["craton.run-uid"] == made.labels["craton.run-uid"]

    found = executor.find(made.name)
    assert found is not None and found.state == ContainerState.EXITED and found.id == handle.id
    assert len(task_containers(docker_client, handle.id)) == 1
    executor.remove(handle)
    assert executor.find(made.name) is None
    assert task_containers(docker_client, handle.id) == []  # not left behind
    executor.remove(handle)  # no error when already gone


def test_placement_constraints_decide_where_the_task_may_run(
    executor, shipped_image, run_label, docker_client
):  # type: ignore[no-untyped-def]
    here = executor.create(
        spec(shipped_image, run_label, "echo placed", placement=("node.role==manager",))
    )
    nowhere = executor.create(
        spec(
            shipped_image, run_label, "echo placed", placement=("node.labels.craton-zone==nowhere",)
        )
    )
    try:
        assert executor.wait(here, timeout=120) == 0
        template = docker_client.api.inspect_service(nowhere.id)["Spec"]["TaskTemplate"]
        assert template["Placement"]["Constraints"] == ["node.labels.craton-zone==nowhere"]
        time.sleep(3)
        tasks = docker_client.api.tasks(filters={"service": nowhere.id})
        assert tasks and all(t["Status"]["State"] == "pending" for t in tasks)
        assert "no suitable node" in tasks[0]["Status"].get("Err", "")
        assert task_containers(docker_client, nowhere.id) == []
    finally:
        executor.remove(here)
        executor.remove(nowhere)


def test_a_name_is_taken_once(executor, shipped_image, run_label, docker_client):  # type: ignore[no-untyped-def]
    made = spec(shipped_image, run_label, "sleep 30")
    handle = executor.create(made)
    with pytest.raises(ExecutorError, match="already taken"):
        executor.create(made)
    executor.remove(handle)  # right after creation: the task's container goes too
    assert task_containers(docker_client, handle.id) == []


def test_stop_ends_the_container_and_removes_the_service(
    executor, shipped_image, run_label, docker_client
):  # type: ignore[no-untyped-def]
    script = "trap 'echo got TERM; exit 143' TERM; echo started; sleep 300 & wait"
    handle = executor.create(spec(shipped_image, run_label, script))
    assert next(iter(executor.logs(handle))).text == "started"
    (container,) = task_containers(docker_client, handle.id)
    started = time.monotonic()
    executor.stop(handle, grace_seconds=5)
    assert time.monotonic() - started < 5  # the container heeded SIGTERM
    assert executor.wait(handle, timeout=30) == 143
    assert executor.find(handle.name) is None
    assert task_containers(docker_client, handle.id) == []
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(container.id)


def test_stop_kills_a_container_that_ignores_sigterm(
    executor, shipped_image, run_label, docker_client
):  # type: ignore[no-untyped-def]
    script = "trap '' TERM; echo started; sleep 300 & wait; sleep 300"
    handle = executor.create(spec(shipped_image, run_label, script))
    assert next(iter(executor.logs(handle))).text == "started"
    started = time.monotonic()
    executor.stop(handle, grace_seconds=2)
    assert 2 <= time.monotonic() - started < 15
    assert task_containers(docker_client, handle.id) == []


def test_another_executor_adopts_a_running_service(executor, shipped_image, run_label):
    made = spec(shipped_image, run_label, COUNT)
    executor.create(made)
    first_lines: list[Any] = []
    for line in executor.logs(executor.find(made.name)):
        first_lines.append(line)
        if len(first_lines) == 10:
            break

    other = SwarmExecutor(stop_grace_seconds=2)  # as a runner that took the run over
    adopted = other.find(made.name)
    assert adopted is not None and adopted.state == ContainerState.RUNNING
    assert adopted.labels["craton.run-uid"] == made.labels["craton.run-uid"]
    rest = list(other.logs(adopted, since=first_lines[-1].ts))
    assert other.wait(adopted, timeout=60) == 0
    numbered = [line.text for line in first_lines + rest if line.stream == "stdout"]
    assert numbered == [f"n {i}" for i in range(1, LINES + 1)]
    other.close()


def test_managed_lists_the_services_of_runs(executor, shipped_image, run_label):  # type: ignore[no-untyped-def]
    made = spec(shipped_image, run_label, "echo hi")
    handle = executor.create(made)
    executor.create(spec(shipped_image, run_label, "echo hi", labels={"craton.project": run_label}))

    def ours() -> dict[str, Any]:
        return {h.id: h for h in executor.managed() if h.labels.get("craton.project") == run_label}

    assert set(ours()) == {handle.id}  # not the service without a run uid
    assert ours()[handle.id].name == handle.name
    assert ours()[handle.id].labels == handle.labels
    assert executor.wait(handle, timeout=120) == 0
    assert ours()[handle.id].state == ContainerState.EXITED
    executor.remove(handle)
    assert ours() == {}


# --- jobs driven by runner processes -------------------------------------------------


@pytest.fixture
def swarm_runners(database_url, tmp_path, swarm, registry) -> Iterator[Runners]:  # type: ignore[no-untyped-def]
    started = Runners(database_url, tmp_path)
    started.env.update({"CRATON_WF_EXECUTOR": "swarm", "CRATON_WF_REGISTRY": registry})
    yield started
    started.stop_all()


@pytest.fixture
def project(sessions, root, docker_client) -> Iterator[str]:  # type: ignore[no-untyped-def]
    yield root.project_id
    remove_services_and_containers(docker_client, root.project_id)


def make_job(sessions, project_id, image, script, hosts=1, **step):  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        made = make_inventory(session, project_id, hosts)
        make_ready_task(session, project_id, "step", command=f"sh -c '{script}' task", image=image)
        workflow_service.create_workflow(
            session,
            project_id,
            None,
            WorkflowCreate.model_validate({"name": "wf", "steps": [{"task": "step", **step}]}),
        )
        return job_service.create_job(
            session,
            project_id,
            None,
            {
                "workflow": "wf",
                "hosts": [h.id for h in made],
                "concurrency": hosts,
                "max_failures": hosts,
            },
        ).id


def task_containers(docker_client, service_id: str) -> list[Any]:  # type: ignore[no-untyped-def]
    """The containers swarm made for a service's tasks, running or not."""
    return docker_client.containers.list(
        ignore_removed=True,
        all=True,
        filters={"label": f"com.docker.swarm.service.id={service_id}"},
    )


def running_containers_of(docker_client, run: Run) -> list[Any]:  # type: ignore[no-untyped-def]
    return docker_client.containers.list(
        ignore_removed=True, filters={"label": f"craton.run-uid={run.uid}"}
    )


def services_of(docker_client, run: Run) -> list[Any]:  # type: ignore[no-untyped-def]
    return docker_client.services.list(filters={"label": f"craton.run-uid={run.uid}"})


def test_a_workflow_over_hosts_with_a_failing_host(sessions, project, swarm_runners, shipped_image):  # type: ignore[no-untyped-def]
    script = 'echo on; case "$1" in *host-001*) exit 4;; esac'
    job_id = make_job(sessions, project, shipped_image, script, hosts=3)
    swarm_runners.start("one")
    job = wait_job(sessions, job_id, timeout=180)
    assert job.status == "FAILED"
    with transaction(sessions) as session:
        hosts = {
            h.host_name: h.status
            for h in session.execute(select(JobHost).where(JobHost.job_id == job_id)).scalars()
        }
        runs = list(session.execute(select(Run).where(Run.job_id == job_id)).scalars())
    assert sorted(hosts.values()) == ["FAILED", "SUCCEEDED", "SUCCEEDED"]
    assert sorted(r.exit_code for r in runs) == [0, 0, 4]
    for run in runs:
        assert [log.line for log in stored_lines(sessions, run.id)] == ["on"]


def test_step_timeout(sessions, project, swarm_runners, shipped_image, docker_client):  # type: ignore[no-untyped-def]
    timed = make_job(sessions, project, shipped_image, "echo started; exec sleep 300", timeout=3)
    swarm_runners.start("one")
    assert wait_job(sessions, timed, timeout=120).status == "FAILED"
    with transaction(sessions) as session:
        run = session.execute(select(Run).where(Run.job_id == timed)).scalar_one()
    assert run.status == "TIMED_OUT"
    assert run.finished_at - run.started_at < timedelta(seconds=30)
    assert services_of(docker_client, run) == []
    assert running_containers_of(docker_client, run) == []


def test_cancel(sessions, project, swarm_runners, shipped_image, docker_client):  # type: ignore[no-untyped-def]
    cancelled = make_job(sessions, project, shipped_image, "echo started; exec sleep 300")
    swarm_runners.start("one")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with transaction(sessions) as session:
            if session.execute(
                select(RunLog).join(Run, Run.id == RunLog.run_id).where(Run.job_id == cancelled)
            ).first():
                job_service.cancel(session, job_service.get_job(session, project, cancelled))
                break
        time.sleep(0.3)
    job = wait_job(sessions, cancelled, timeout=60)
    assert job.status == "CANCELLED"
    with transaction(sessions) as session:
        run = session.execute(select(Run).where(Run.job_id == cancelled)).scalar_one()
    assert run.status == "CANCELLED"
    assert services_of(docker_client, run) == []
    assert running_containers_of(docker_client, run) == []


def test_a_killed_runners_service_is_adopted(
    sessions, project, swarm_runners, shipped_image, docker_client
):  # type: ignore[no-untyped-def]
    job_id = make_job(sessions, project, shipped_image, COUNT)
    first = swarm_runners.start("first", CRATON_WF_FAULT_POINT="mid_logs")
    assert first.wait(timeout=120) == -signal.SIGKILL, swarm_runners.log("first")
    swarm_runners.start("second", CRATON_WF_REMOVE_CONTAINERS="false")
    job = wait_job(sessions, job_id, timeout=120)
    with transaction(sessions) as session:
        run = session.execute(select(Run).where(Run.job_id == job_id)).scalar_one()
    assert job.status == "SUCCEEDED", (run.error, swarm_runners.log("second"))
    assert run.attempt == 1
    (service,) = services_of(docker_client, run)  # exactly one service for the attempt
    assert service.attrs["Spec"]["Labels"]["craton.attempt"] == "1"
    logs = stored_lines(sessions, run.id)
    assert [log.seq for log in logs] == list(range(1, len(logs) + 1))
    assert [log.line for log in logs if log.stream == "stdout"] == [
        f"n {i}" for i in range(1, LINES + 1)
    ]
    assert any("took this run over" in log.line for log in logs if log.stream == "system")


def _overlay_address(executor: SwarmExecutor, handle: Any, network: str) -> str:
    """The address of the service's task on ``network``, once it has one."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        task = executor._task(handle.id)
        for attachment in (task or {}).get("NetworksAttachments") or []:
            if attachment["Network"]["Spec"]["Name"] == network and attachment.get("Addresses"):
                return str(attachment["Addresses"][0].split("/")[0])
        time.sleep(0.25)
    raise AssertionError(f"the task got no address on {network}")


def test_networked_tasks_join_their_projects_overlay_and_reach_no_other_project(
    executor, shipped_image, docker_client
):  # type: ignore[no-untyped-def]
    mine, theirs = f"stest-{uuid.uuid4().hex[:8]}", f"stest-{uuid.uuid4().hex[:8]}"
    serve = "echo pong > /tmp/index.html && exec httpd -f -p 8080 -h /tmp"
    try:
        server = executor.create(spec(shipped_image, mine, serve, network=True))
        address = _overlay_address(executor, server, f"craton-net-{mine}")
        fetch = (
            "i=0; while [ $i -lt 20 ]; do i=$((i+1)); "
            f"timeout 3 wget -q -O - http://{address}:8080/index.html && echo reached && exit 0; "
            "sleep 0.5; done; exit 1"
        )
        # An overlay has no switch for inter-container traffic: a task of the same
        # project reaches it (which also shows the server answers) ...
        same = executor.create(spec(shipped_image, mine, fetch, network=True))
        assert executor.wait(same, timeout=120) == 0
        assert "reached" in [line.text for line in executor.logs(same)]
        # ... a task of another project, on its own overlay, does not.
        other = executor.create(spec(shipped_image, theirs, fetch, network=True))
        assert executor.wait(other, timeout=180) not in (None, 0)
        assert "reached" not in [line.text for line in executor.logs(other)]

        template = docker_client.api.inspect_service(other.id)["Spec"]["TaskTemplate"]
        network = docker_client.api.inspect_network(template["Networks"][0]["Target"])
        assert network["Name"] == f"craton-net-{theirs}"
        assert network["Driver"] == "overlay" and network["Internal"] is False
        assert network["Labels"] == {"craton.managed": "true", "craton.project": theirs}
    finally:
        for project in (mine, theirs):
            remove_services_and_containers(docker_client, project)
        for project in (mine, theirs):
            remove_project_networks(docker_client, project)
