"""Rebuilding an unchanged task through a runner: the image (and its digest) of the
build before is reused without ``docker build``, on the local engine and through a
registry; what happens to the approval of that digest."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from craton_wf.db.engine import transaction
from craton_wf.db.models import Build, Task
from craton_wf.domain.states import BuildStatus, JobStatus
from craton_wf.runner.worker import Runner
from craton_wf.services import jobs as job_service
from craton_wf.services import tasks as task_service
from tests.factories import approve_current_build, make_inventory
from tests.integration.test_platform import (
    tarball,
    task_files,
    upload_task,
    wait_build,
    wait_job,
)
from tests.integration.test_registry import (
    build_logs,
    registry_digest,
    remove_images,
    start_runner,
)

pytestmark = pytest.mark.docker

PREFIX = "craton-rbtest"
UNCHANGED = "source, Dockerfile and base images unchanged"


@pytest.fixture(params=["local", "registry"])
def building_runner(request, settings, sessions, busybox_image) -> Iterator[tuple[Runner, Any]]:  # type: ignore[no-untyped-def]
    """A runner building on the local engine, or pushing to the loopback registry."""
    registry = request.getfixturevalue("registry") if request.param == "registry" else None
    worker = start_runner(
        settings.model_copy(
            update={"executor": "docker", "image_prefix": PREFIX, "registry": registry}
        ),
        sessions,
    )
    yield worker, registry
    worker.stop(timeout=20)
    remove_images(f"{PREFIX}/*", f"{registry}/{PREFIX}/*")


def rebuild(sessions, runner: Runner, task_id: int) -> Build:  # type: ignore[no-untyped-def]
    """Ask for a build of the task's unchanged source, as ``craton task-build`` does."""
    with transaction(sessions) as session:
        task = session.get(Task, task_id)
        task_service.request_build(session, task, None, max_archive_bytes=10**7)
    runner.wakeup.set()
    return wait_build(sessions, task_id)


def test_an_unchanged_rebuild_reuses_the_image_and_its_digest(sessions, root, building_runner):  # type: ignore[no-untyped-def]
    runner, registry = building_runner
    task_id = upload_task(sessions, root, "steady", task_files("steady"))
    first = wait_build(sessions, task_id)
    assert first.status == BuildStatus.READY, first.error

    second = rebuild(sessions, runner, task_id)

    assert second.status == BuildStatus.READY, second.error
    assert second.number == 2
    assert second.digest == first.digest
    lines = build_logs(sessions, second.id)
    reused = [line for line in lines if line.startswith("reused image sha256:")]
    assert len(reused) == 1 and reused[0].endswith(f":1: {UNCHANGED}")
    assert not any(line.startswith("Step ") for line in lines)  # no docker build
    if registry:
        remote = second.image.split("@")[0]
        assert remote.endswith(f"{PREFIX}/{root.project_id[:8]}-steady")
        assert registry_digest(registry, remote.split("/", 1)[1], "2") == first.digest


def test_a_rebuild_after_a_new_upload_builds_again(sessions, root, building_runner):  # type: ignore[no-untyped-def]
    runner, _registry = building_runner
    task_id = upload_task(sessions, root, "changing", task_files("changing"))
    first = wait_build(sessions, task_id)
    assert first.status == BuildStatus.READY, first.error

    with transaction(sessions) as session:
        task_service.request_build(
            session,
            session.get(Task, task_id),
            None,
            archive=tarball(task_files("changing", lines=5)),
            max_archive_bytes=10**7,
        )
    runner.wakeup.set()
    second = wait_build(sessions, task_id)

    assert second.status == BuildStatus.READY, second.error
    assert second.digest != first.digest
    lines = build_logs(sessions, second.id)
    assert not any(line.startswith("reused image") for line in lines)
    assert any(line.startswith("Successfully built") for line in lines)


@pytest.mark.parametrize("building_runner", ["local"], indirect=True)
def test_an_unchanged_rebuild_keeps_the_approval_of_its_digest(sessions, root, building_runner):  # type: ignore[no-untyped-def]
    runner, _registry = building_runner
    task_id = upload_task(sessions, root, "approved", task_files("approved"))
    assert wait_build(sessions, task_id).status == BuildStatus.READY
    with transaction(sessions) as session:
        approve_current_build(session, task_id)
        hosts = make_inventory(session, root.project_id, 1)
    assert rebuild(sessions, runner, task_id).status == BuildStatus.READY

    with transaction(sessions) as session:
        job_id = job_service.create_job(
            session, root.project_id, None, {"task": task_id, "hosts": [hosts[0].id]}
        ).id
    runner.wakeup.set()
    assert wait_job(sessions, job_id).status == JobStatus.SUCCEEDED
