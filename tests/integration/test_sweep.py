"""Containers left behind, swept by `craton-wf runner` processes on the real Docker engine.

A runner that stops between storing a run's outcome and removing its container
leaves the container behind; here that runner keeps its containers
(``CRATON_WF_REMOVE_CONTAINERS=false``), as if its remove was lost. The next
runner removes them, at its start and then every ``CRATON_WF_SWEEP_SECONDS``,
while a labelled container of another database (a run uid unknown here) stays.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest
from docker.models.containers import Container

from tests.integration.test_durability import Runners, containers_of, make_job, the_run, wait_job

pytestmark = [pytest.mark.docker, pytest.mark.timeout(180)]

UNKNOWN_UID = "0123456789ab"  # no run of the test's database has it


def eventually(check: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return check()


@pytest.fixture
def project(root, docker_client: docker.DockerClient) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The test's project; its runs' containers go at the end, swept or not."""
    yield root.project_id
    label = {"label": f"craton.project={root.project_id}"}
    for container in docker_client.containers.list(ignore_removed=True, all=True, filters=label):
        container.remove(force=True)


@pytest.fixture
def runners(database_url: str, tmp_path: Path, busybox_image: str) -> Iterator[Runners]:
    """``craton-wf runner`` processes that keep their containers unless told otherwise."""
    started = Runners(database_url, tmp_path)
    yield started
    started.stop_all()


@pytest.fixture
def hand_made(
    docker_client: docker.DockerClient, busybox_image: str, test_labels: dict[str, str]
) -> Iterator[Callable[[dict[str, str]], Container]]:
    """Create (not start) containers carrying ``labels``; removed at the end if still there."""
    made: list[Container] = []

    def create(labels: dict[str, str]) -> Container:
        container = docker_client.containers.create(
            busybox_image,
            ["true"],
            name=f"craton-test-sweep-{uuid.uuid4().hex[:8]}",
            labels={**labels, **test_labels},
            network_mode="none",
        )
        made.append(container)
        return container

    yield create
    for container in made:
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)


def exists(docker_client: docker.DockerClient, container: Container) -> bool:
    try:
        docker_client.containers.get(container.id)
    except docker.errors.NotFound:
        return False
    return True


def test_a_runner_removes_the_containers_a_stopped_runner_left_behind(
    sessions, project, runners: Runners, docker_client, hand_made
):  # type: ignore[no-untyped-def]
    job_id = make_job(sessions, project, script="echo done")
    first = runners.start("first")  # keeps its containers
    assert wait_job(sessions, job_id).status == "SUCCEEDED", runners.log("first")
    first.terminate()
    assert first.wait(timeout=30) == 0, runners.log("first")
    run = the_run(sessions, job_id)
    (left,) = containers_of(run)
    assert left.status == "exited"
    stranger = hand_made({**left.labels, "craton.run-uid": UNKNOWN_UID})

    runners.start("second", CRATON_WF_REMOVE_CONTAINERS="true", CRATON_WF_SWEEP_SECONDS="1")

    assert eventually(lambda: not containers_of(run)), runners.log("second")
    assert eventually(lambda: "removed 1 container(s) left behind" in runners.log("second"))
    # Left behind while the runner runs: the periodic sweep takes it.
    again = hand_made(dict(left.labels))
    assert eventually(lambda: not exists(docker_client, again)), runners.log("second")
    time.sleep(2)  # a sweep or two more
    assert exists(docker_client, stranger)
    assert "Traceback" not in runners.log("second")
