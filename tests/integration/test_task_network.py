"""Networked tasks on the real Docker engine: one bridge per project, no
inter-container traffic, the API reachable at ``CRATON_URL``, and the opt-in
firewall of the host's ports.

Every container here is a task container made by the executor, on a project
network it made; traffic goes only between those containers and servers this
test starts on this machine. The networks (and any firewall rules) are removed
at the end.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import docker
import docker.errors
import pytest

from craton_wf.domain.labels import PROJECT_LABEL
from craton_wf.errors import ExecutorError
from craton_wf.executors.base import ContainerSpec, Handle
from craton_wf.executors.docker import DockerExecutor
from craton_wf.executors.firewall import FORWARD_CHAIN, HOOKS, INPUT_CHAIN, TaskFirewall
from craton_wf.executors.tasknet import (
    TaskNetworkOptions,
    ensure_project_network,
    project_network_name,
)

pytestmark = pytest.mark.docker

BUSYBOX = "craton/busybox:latest"
LISTEN_PORT = 8080
SERVE = f"echo pong > /tmp/index.html && exec httpd -f -p {LISTEN_PORT} -h /tmp"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def new_project(
    docker_client: docker.DockerClient, test_labels: dict[str, str]
) -> Iterator[Callable[[], str]]:
    """Makes project ids; their containers and networks are removed at the end."""
    made: list[str] = []

    def make() -> str:
        made.append(f"test-{uuid.uuid4()}")
        return made[-1]

    yield make
    for project in made:
        filters = {
            "label": [f"{PROJECT_LABEL}={project}", *(f"{k}={v}" for k, v in test_labels.items())]
        }
        for container in docker_client.containers.list(all=True, filters=filters):
            container.remove(force=True)
        for network in docker_client.networks.list(names=[project_network_name(project)]):
            with contextlib.suppress(docker.errors.NotFound):
                network.remove()


@pytest.fixture
def executor(busybox_image: str) -> Iterator[DockerExecutor]:
    worker = DockerExecutor(task_network=TaskNetworkOptions(api_port=free_port()))
    yield worker
    worker.close()


def run_task(
    executor: DockerExecutor,
    project: str,
    labels: dict[str, str],
    script: str,
    network: bool = True,
) -> Handle:
    spec = ContainerSpec(
        name=f"craton-test-net-{uuid.uuid4().hex[:10]}",
        image=BUSYBOX,
        command=["sh", "-c", script],
        labels={**labels, PROJECT_LABEL: project},
        network=network,
    )
    handle = executor.create(spec)
    executor.start(handle)
    return handle


def output(executor: DockerExecutor, handle: Handle) -> str:
    return "\n".join(line.text for line in executor.logs(handle))


def address_of(client: docker.DockerClient, handle: Handle) -> tuple[str, dict[str, Any]]:
    networks = client.api.inspect_container(handle.id)["NetworkSettings"]["Networks"]
    assert len(networks) == 1, networks
    return next(iter(networks.values()))["IPAddress"], networks


def wait_serving(address: str, port: int, timeout: float = 15.0) -> None:
    """The test's own check, from the host, that the listener is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((address, port), timeout=1):
            return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {address}:{port}")


def test_networked_tasks_reach_no_other_task_of_any_project(
    executor, docker_client, new_project, test_labels
):
    project_a, project_b = new_project(), new_project()
    server = run_task(executor, project_a, test_labels, SERVE)
    address, networks = address_of(docker_client, server)
    assert list(networks) == [project_network_name(project_a)]  # never the default bridge
    wait_serving(address, LISTEN_PORT)

    fetch = f"timeout 5 wget -q -O - http://{address}:{LISTEN_PORT}/index.html && echo reached"
    other_project = run_task(executor, project_b, test_labels, fetch)
    same_project = run_task(executor, project_a, test_labels, fetch)
    for client in (other_project, same_project):
        assert executor.wait(client, timeout=30) not in (None, 0)
        assert "reached" not in output(executor, client)
    assert address_of(docker_client, other_project)[1].keys() == {project_network_name(project_b)}

    network = docker_client.api.inspect_network(project_network_name(project_a))
    assert network["Options"]["com.docker.network.bridge.enable_icc"] == "false"
    assert network["Labels"] == {"craton.managed": "true", PROJECT_LABEL: project_a}
    executor.stop(server, grace_seconds=0)


def test_a_task_without_network_has_only_loopback(
    executor, docker_client, new_project, test_labels
):
    handle = run_task(executor, new_project(), test_labels, "ls /sys/class/net", network=False)
    assert executor.wait(handle, timeout=30) == 0
    assert output(executor, handle).split() == ["lo"]


def test_runners_creating_a_project_network_at_once_share_one(docker_client, new_project):
    project = new_project()
    clients = [docker.from_env() for _ in range(6)]
    start = threading.Barrier(len(clients))
    made: list[str] = []
    failed: list[BaseException] = []

    def create(client: docker.DockerClient) -> None:
        start.wait()
        try:
            made.append(ensure_project_network(client.api, project, driver="bridge").id)
        except BaseException as exc:
            failed.append(exc)

    threads = [threading.Thread(target=create, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for client in clients:
        client.close()
    assert not failed and len(made) == len(clients)
    # Each runner made one (Docker 20.10 does not refuse duplicates made at once);
    # each kept the oldest and removed its own otherwise.
    named = docker_client.networks.list(names=[project_network_name(project)])
    assert [network.id for network in named] == [made[0]]
    assert set(made) == {made[0]}


def test_a_network_of_that_name_not_made_by_the_platform_is_refused(
    executor, docker_client, new_project, test_labels
):
    project = new_project()
    docker_client.networks.create(project_network_name(project), driver="bridge")
    with pytest.raises(ExecutorError, match="is not the platform's network"):
        run_task(executor, project, test_labels, "true")


# --- the opt-in firewall -----------------------------------------------------------------


class _Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the standard library's name
        body = b"api\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def http_server(host: str, port: int) -> Iterator[None]:
    server = http.server.ThreadingHTTPServer((host, port), _Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def iptables(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["iptables", "-w", *args], capture_output=True, text=True, check=False)


@pytest.fixture
def firewall_chains() -> Iterator[None]:
    """Removes the platform's chains at the end if this test made them (and they are empty)."""
    if subprocess.run(["iptables", "-S"], capture_output=True).returncode != 0:
        pytest.skip("iptables cannot be used here")
    existed = {chain: iptables("-S", chain).returncode == 0 for _, chain in HOOKS}
    yield
    for parent, chain in HOOKS:
        if existed[chain] or iptables("-S", chain).stdout.strip() != f"-N {chain}":
            continue
        while iptables("-C", parent, "-j", chain).returncode == 0:
            iptables("-D", parent, "-j", chain)
        iptables("-X", chain)


# What a task prints: whether it reached the API's port (the forwarder on its
# bridge's gateway, relaying to the test's server on loopback) and another port the
# host listens on. By address, to test the rules and nothing else.
PROBE = (
    "timeout 5 wget -q -O /dev/null http://{gateway}:{api}/ "
    "&& echo api=open || echo api=closed; "
    "timeout 5 wget -q -O /dev/null http://{gateway}:{other}/ "
    "&& echo other=open || echo other=closed"
)


def probe(executor: DockerExecutor, project: str, labels: dict[str, str], other: int) -> str:
    gateway = executor.networks.attach(executor.client.api, project).gateway
    api = executor.networks.options.api_port
    handle = run_task(
        executor, project, labels, PROBE.format(gateway=gateway, api=api, other=other)
    )
    assert executor.wait(handle, timeout=60) == 0
    return " ".join(line.text for line in executor.logs(handle) if line.stream == "stdout")


def test_the_firewall_leaves_a_task_only_the_api_port_of_the_host(
    docker_client, new_project, test_labels, firewall_chains, busybox_image
):
    api_port, other_port = free_port(), free_port()
    open_executor = DockerExecutor(task_network=TaskNetworkOptions(api_port=api_port))
    walled = DockerExecutor(task_network=TaskNetworkOptions(api_port=api_port, firewall=True))
    project = new_project()
    bridge = None
    try:
        with http_server("127.0.0.1", api_port), http_server("0.0.0.0", other_port):
            # Without the firewall a task reaches every port the host listens on.
            assert probe(open_executor, project, test_labels, other_port) == "api=open other=open"
            assert walled.firewall_status() == "ok"  # no task on the bridge any more
            network = walled.networks.attach(docker_client.api, project)
            bridge = network.bridge
            assert bridge
            rules = iptables("-S", FORWARD_CHAIN).stdout + iptables("-S", INPUT_CHAIN).stdout
            assert f"-A {FORWARD_CHAIN} -d 169.254.0.0/16 -i {bridge} -j DROP" in rules
            assert f"-A {INPUT_CHAIN} -i {bridge} -j DROP" in rules
            assert probe(walled, project, test_labels, other_port) == "api=open other=closed"

            waiting = run_task(walled, project, test_labels, "sleep 30")
            assert walled.firewall_status() == "ok"
            TaskFirewall(api_port).uninstall(bridge)
            status = walled.firewall_status()
            assert status.startswith("error:") and bridge in status
            walled.stop(waiting, grace_seconds=0)
    finally:
        if bridge:
            TaskFirewall(api_port).uninstall(bridge)
        open_executor.close()
        walled.close()


# --- the API at CRATON_URL, end to end --------------------------------------------------

READS_ITS_HOSTS = """#!/bin/sh
echo "url=$CRATON_URL"
timeout 20 wget -q -O - --header "Authorization: Bearer $CRATON_TOKEN" "$CRATON_URL/v1/hosts" \
    || echo "no answer from the API"
"""


@pytest.fixture
def api_settings(settings, busybox_image):  # type: ignore[no-untyped-def]
    """The embedded default's addresses: the API on loopback only, at a port of its own."""
    return settings.model_copy(
        update={
            "executor": "docker",
            "image_prefix": "craton-itest",
            "api_host": "127.0.0.1",
            "api_port": free_port(),
        }
    )


@pytest.fixture
def live_api(api_settings, sessions) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The real app served by uvicorn on ``api_host:api_port``, as ``craton-wf serve`` does."""
    import uvicorn

    from craton_wf.api.app import create_app

    config = uvicorn.Config(
        create_app(api_settings, sessions),
        host=api_settings.api_host,
        port=api_settings.api_port,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the API did not start"
    yield f"http://{api_settings.api_host}:{api_settings.api_port}"
    server.should_exit = True
    thread.join(timeout=15)


@pytest.fixture
def networked_runner(api_settings, sessions, root, docker_client):  # type: ignore[no-untyped-def]
    from craton_wf.builders.image import ImageBuilder
    from craton_wf.runner.worker import Runner

    worker = Runner(
        api_settings,
        sessions,
        DockerExecutor.from_settings(api_settings),
        ImageBuilder.from_settings(api_settings),
    )
    worker.start()
    yield worker
    worker.stop(timeout=20)
    for network in docker_client.networks.list(names=[project_network_name(root.project_id)]):
        with contextlib.suppress(docker.errors.APIError):
            network.remove()
    for image in docker_client.images.list(filters={"reference": "craton-itest/*"}):
        docker_client.images.remove(image.id, force=True)


def test_a_networked_task_reads_its_jobs_hosts_at_craton_url(
    sessions, root, live_api, networked_runner
):
    from sqlalchemy import select

    from craton_wf.db.engine import transaction
    from craton_wf.db.models import RunLog, Task, User
    from craton_wf.domain.states import BuildStatus, JobStatus
    from craton_wf.services import jobs as job_service
    from tests.factories import approve_current_build, make_inventory
    from tests.integration.test_platform import upload_task, wait_build, wait_job

    files = {
        "Dockerfile": "FROM craton/busybox:latest\nCOPY step.sh /step.sh\n",
        "step.sh": READS_ITS_HOSTS,
    }
    task_id = upload_task(sessions, root, "reads-hosts", files)
    assert wait_build(sessions, task_id).status == BuildStatus.READY
    with transaction(sessions) as session:
        session.get(Task, task_id).needs_network = True
        approve_current_build(session, task_id)
        user_id = session.execute(select(User.id).where(User.name == root.user)).scalar_one()
        hosts = make_inventory(session, root.project_id, 3)
        job_id = job_service.create_job(
            session, root.project_id, user_id, {"task": task_id, "hosts": [hosts[0].id]}
        ).id
    networked_runner.wakeup.set()
    job = wait_job(sessions, job_id)
    with transaction(sessions) as session:
        lines = [
            log.line
            for log in session.execute(
                select(RunLog).where(RunLog.job_id == job_id).order_by(RunLog.seq)
            ).scalars()
        ]
    assert job.status == JobStatus.SUCCEEDED, lines
    port = live_api.rsplit(":", 1)[1]
    assert lines[0] == f"url=http://host.docker.internal:{port}"
    answer = json.loads(lines[1])
    assert [host["name"] for host in answer["hosts"]] == ["host-000"]  # its job's host only
