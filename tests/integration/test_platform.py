"""The platform on the real Docker engine, in process: builds from a directory and from
git, a workflow over hosts, the exact payload, logs in order, cancel, rebuilds."""

from __future__ import annotations

import io
import json
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import git
import pytest
from sqlalchemy import select

from craton_wf.builders.image import ImageBuilder
from craton_wf.db.engine import transaction
from craton_wf.db.models import Build, BuildLog, Job, JobHost, Run, RunLog, Task
from craton_wf.domain.sources import GitSourcePolicy
from craton_wf.domain.states import FINAL_JOB_STATES, BuildStatus, JobStatus
from craton_wf.errors import Conflict
from craton_wf.executors.docker import DockerExecutor
from craton_wf.runner.worker import Runner
from craton_wf.services import jobs as job_service
from craton_wf.services import tasks as task_service
from craton_wf.services import workflows as workflow_service
from craton_wf.services.inputs import TaskCreate, WorkflowCreate
from tests.factories import approve_current_build, make_inventory

pytestmark = pytest.mark.docker

STEP = """#!/bin/sh
echo "payload $1"
i=1; while [ $i -le {lines} ]; do echo "{name} line $i"; i=$((i+1)); done
echo "{name} to stderr" >&2
case "$1" in *'"fail_at":"{name}"'*) exit 5;; esac
echo '::craton-output:: {{"{name}": "ok"}}'
"""


@pytest.fixture
def docker_settings(settings, busybox_image):  # type: ignore[no-untyped-def]
    return settings.model_copy(
        update={
            "executor": "docker",
            "image_prefix": "craton-itest",
            "git_allow_local_sources": True,  # the repositories of these tests are file://
        }
    )


# What the API would pass with CRATON_WF_GIT_ALLOW_LOCAL_SOURCES=true.
LOCAL_SOURCES = task_service.TaskRules(sources=GitSourcePolicy(allow_local=True))


@pytest.fixture
def runner(docker_settings, sessions) -> Iterator[Runner]:  # type: ignore[no-untyped-def]
    worker = Runner(
        docker_settings,
        sessions,
        DockerExecutor.from_settings(docker_settings),
        ImageBuilder.from_settings(docker_settings),
    )
    worker.start()
    yield worker
    worker.stop(timeout=20)
    client = docker.from_env()
    for image in client.images.list(filters={"reference": "craton-itest/*"}):
        client.images.remove(image.id, force=True)


def job_containers(project_id: str, job_id: int, **filters: Any) -> list[Any]:
    labels = [f"craton.project={project_id}", f"craton.job={job_id}"]
    return docker.from_env().containers.list(
        ignore_removed=True, filters={"label": labels}, **filters
    )


def containers_gone(project_id: str, job_id: int, timeout: float = 15.0) -> bool:
    """The job's containers are all removed (just after their results are committed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not job_containers(project_id, job_id, all=True):
            return True
        time.sleep(0.2)
    return False


def task_files(name: str, lines: int = 3, extra: str = "") -> dict[str, str]:
    return {
        "Dockerfile": f"FROM craton/busybox:latest\nCOPY step.sh /step.sh\n{extra}",
        "step.sh": STEP.format(name=name, lines=lines),
    }


def tarball(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content.encode())
            archive.addfile(info, io.BytesIO(content.encode()))
    return buffer.getvalue()


def wait_for(sessions, predicate, timeout: float = 120.0) -> Any:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with transaction(sessions) as session:
            value = predicate(session)
            if value:
                return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def wait_build(sessions, task_id: int) -> Build:  # type: ignore[no-untyped-def]
    def done(session):  # type: ignore[no-untyped-def]
        task = session.get(Task, task_id)
        build = session.get(Build, task.current_build_id)
        return build if build.status in (BuildStatus.READY, BuildStatus.FAILED) else None

    return wait_for(sessions, done)


def wait_job(sessions, job_id: int, timeout: float = 120.0) -> Job:  # type: ignore[no-untyped-def]
    final = {s.value for s in FINAL_JOB_STATES}
    return wait_for(
        sessions, lambda s: (j := s.get(Job, job_id)) and j.status in final and j, timeout
    )


def upload_task(sessions, root, name: str, files: dict[str, str]) -> int:  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        return task_service.create_task(
            session,
            root.project_id,
            None,
            TaskCreate(name=name, command="sh /step.sh"),
            tarball(files),
            10**7,
        ).id


def test_workflow_over_hosts_with_exact_payload_and_ordered_logs(sessions, root, runner):
    ids = [
        upload_task(sessions, root, name, task_files(name, lines=200))
        for name in ("drain", "patch", "verify")
    ]
    for task_id in ids:
        assert wait_build(sessions, task_id).status == BuildStatus.READY
    with transaction(sessions) as session:
        for task_id in ids:
            approve_current_build(session, task_id)
        hosts = make_inventory(session, root.project_id, 3, {"site": "lab"})
        session.get(type(hosts[1]), hosts[1].id).variables = {"fail_at": "patch"}
        workflow_service.create_workflow(
            session,
            root.project_id,
            None,
            WorkflowCreate.model_validate({"name": "maint", "steps": ["drain", "patch", "verify"]}),
        )
        job_id = job_service.create_job(
            session,
            root.project_id,
            None,
            {
                "workflow": "maint",
                "hosts": [h.id for h in hosts],
                "concurrency": 2,
                "max_failures": 1,
                "variables": {"change": "CHG-1"},
            },
        ).id
    runner.wakeup.set()
    job = wait_job(sessions, job_id)
    assert job.status == JobStatus.FAILED
    with transaction(sessions) as session:
        statuses = {
            h.host_name: (h.status, h.failed_step)
            for h in session.execute(select(JobHost).where(JobHost.job_id == job_id)).scalars()
        }
        runs = {
            (r.job_host_id, r.step_name): r
            for r in session.execute(select(Run).where(Run.job_id == job_id)).scalars()
        }
        first_verify = next(
            r for (host, step), r in runs.items() if step == "verify" and r.status == "SUCCEEDED"
        )
        logs = list(
            session.execute(
                select(RunLog).where(RunLog.run_id == first_verify.id).order_by(RunLog.seq)
            ).scalars()
        )
    assert statuses == {
        "host-000": ("SUCCEEDED", None),
        "host-001": ("FAILED", "patch"),
        "host-002": ("SUCCEEDED", None),
    }
    assert sorted(r.status for r in runs.values()) == sorted(
        ["SUCCEEDED"] * 7 + ["FAILED", "SKIPPED"]
    )

    # Docker orders lines exactly within a stream; across stdout and stderr it
    # stamps each when its reader gets it, so only per-stream order is compared.
    stdout = [log.line for log in logs if log.stream == "stdout"]
    payload = json.loads(stdout[0].split("payload ", 1)[1])
    host_id = payload["host"]["id"]
    assert payload == {
        "job": {"id": job_id, "name": "maint", "variables": {"change": "CHG-1"}},
        "step": {"name": "verify", "index": 2, "args": {}, "attempt": 1},
        "host": {
            "id": host_id,
            "name": payload["host"]["name"],
            "ip_address": payload["host"]["ip_address"],
            "device_type": "server",
            "active": True,
            "labels": ["compute"],
            "parent_id": None,
            "region": "region1",
            "cell": "cell1",
            "cloud": "cloud1",
            "variables": {"site": "lab", "tz": "UTC"},
        },
        "variables": {"change": "CHG-1"},
        "outputs": {"drain": {"drain": "ok"}, "patch": {"patch": "ok"}},
    }
    assert stdout[1:] == [f"verify line {i}" for i in range(1, 201)] + [
        '::craton-output:: {"verify": "ok"}'
    ]
    assert [log.seq for log in logs] == list(range(1, len(logs) + 1))
    assert any(log.stream == "stderr" and log.line == "verify to stderr" for log in logs)
    assert all(log.ts is not None for log in logs)
    # containers are removed once their logs and exit code are stored
    assert containers_gone(root.project_id, job_id)


def test_cancel_stops_the_running_container(sessions, root, runner, docker_settings):
    files = task_files("slow")
    files["step.sh"] = "#!/bin/sh\necho started\nexec sleep 300\n"
    task_id = upload_task(sessions, root, "slow", files)
    assert wait_build(sessions, task_id).status == BuildStatus.READY
    with transaction(sessions) as session:
        approve_current_build(session, task_id)
        hosts = make_inventory(session, root.project_id, 2)
        job_id = job_service.create_job(
            session, root.project_id, None, {"task": "slow", "hosts": [h.id for h in hosts]}
        ).id
    runner.wakeup.set()
    wait_for(sessions, lambda s: s.execute(select(RunLog).where(RunLog.job_id == job_id)).first())
    assert len(job_containers(root.project_id, job_id)) == 1
    started = time.monotonic()
    with transaction(sessions) as session:
        job_service.cancel(session, job_service.get_job(session, root.project_id, job_id))
    job = wait_job(sessions, job_id, timeout=60)
    assert job.status == JobStatus.CANCELLED
    assert time.monotonic() - started < docker_settings.stop_grace_seconds + 15
    assert containers_gone(root.project_id, job_id)
    with transaction(sessions) as session:
        assert {
            r.status for r in session.execute(select(Run).where(Run.job_id == job_id)).scalars()
        } == {"CANCELLED"}


def test_git_task_rebuild_after_new_commit(sessions, root, runner, tmp_path: Path):
    repo_dir = tmp_path / "repo"
    (repo_dir / "task").mkdir(parents=True)
    for name, content in task_files("v1").items():
        (repo_dir / "task" / name).write_text(content)
    repo = git.Repo.init(repo_dir)
    repo.index.add(["task/Dockerfile", "task/step.sh"])
    first = repo.index.commit("v1").hexsha
    with transaction(sessions) as session:
        task_id = task_service.create_task(
            session,
            root.project_id,
            None,
            TaskCreate(
                name="from-git",
                location=f"file://{repo_dir}",
                subdir="task",
                command="sh /step.sh",
            ),
            None,
            1024,
            LOCAL_SOURCES,
        ).id
    runner.wakeup.set()
    build1 = wait_build(sessions, task_id)
    assert build1.status == BuildStatus.READY and build1.commit == first

    (repo_dir / "task" / "step.sh").write_text(STEP.format(name="v2", lines=1))
    repo.index.add(["task/step.sh"])
    second = repo.index.commit("v2").hexsha
    with transaction(sessions) as session:
        task_service.request_build(
            session, session.get(Task, task_id), None, max_archive_bytes=1024, rules=LOCAL_SOURCES
        )
    runner.wakeup.set()
    build2 = wait_build(sessions, task_id)
    assert build2.status == BuildStatus.READY and build2.commit == second
    assert build2.number == 2 and build2.image != build1.image
    assert build2.digest != build1.digest
    labels = docker.from_env().images.get(build2.image).labels
    assert labels["craton.task"] == str(task_id) and labels["craton.commit"] == second

    # The new build needs its own approval: the old one named the old digest.
    with transaction(sessions) as session:
        hosts = make_inventory(session, root.project_id, 1)
    with (
        pytest.raises(Conflict, match=r"build 2 of task .* is not approved"),
        transaction(sessions) as session,
    ):
        job_service.create_job(
            session, root.project_id, None, {"task": task_id, "hosts": [hosts[0].id]}
        )
    with transaction(sessions) as session:
        approve_current_build(session, task_id)
        job_id = job_service.create_job(
            session, root.project_id, None, {"task": task_id, "hosts": [hosts[0].id]}
        ).id
    runner.wakeup.set()
    assert wait_job(sessions, job_id).status == JobStatus.SUCCEEDED
    with transaction(sessions) as session:
        lines = [
            log.line
            for log in session.execute(select(RunLog).where(RunLog.job_id == job_id)).scalars()
        ]
    assert "v2 line 1" in lines


@pytest.mark.parametrize(
    "files, message",
    [
        ({"Dockerfile": "FROM craton/busybox:latest\nRUN echo building && exit 3\n"}, "exit"),
        ({"Dockerfile": "FROM craton/does-not-exist:1\n"}, "does-not-exist"),
    ],
)
def test_failed_builds_keep_a_readable_log(sessions, root, runner, files, message):
    task_id = upload_task(sessions, root, "broken", files)
    build = wait_build(sessions, task_id)
    assert build.status == BuildStatus.FAILED
    assert message in build.error
    with transaction(sessions) as session:
        task = session.get(Task, task_id)
        assert task.status == BuildStatus.FAILED and task.ready_build_id is None
        log = [
            row.line
            for row in session.execute(
                select(BuildLog).where(BuildLog.build_id == build.id).order_by(BuildLog.seq)
            ).scalars()
        ]
    assert log and message in log[-1]


def test_unreachable_git_url_fails_the_build(sessions, root, runner, tmp_path):
    with transaction(sessions) as session:
        task_id = task_service.create_task(
            session,
            root.project_id,
            None,
            TaskCreate(name="nowhere", location=f"file://{tmp_path}/missing.git", command="true"),
            None,
            1024,
            LOCAL_SOURCES,
        ).id
    runner.wakeup.set()
    build = wait_build(sessions, task_id)
    assert build.status == BuildStatus.FAILED and "could not clone" in build.error


def test_git_source_without_dockerfile_fails_the_build(sessions, root, runner, tmp_path):
    repo = git.Repo.init(tmp_path / "plain")
    (tmp_path / "plain" / "run.sh").write_text("echo\n")
    repo.index.add(["run.sh"])
    repo.index.commit("no dockerfile")
    with transaction(sessions) as session:
        task_id = task_service.create_task(
            session,
            root.project_id,
            None,
            TaskCreate(name="plain", location=f"file://{tmp_path}/plain", command="true"),
            None,
            1024,
            LOCAL_SOURCES,
        ).id
    runner.wakeup.set()
    build = wait_build(sessions, task_id)
    assert build.status == BuildStatus.FAILED and "no Dockerfile" in build.error


@pytest.mark.slow
def test_a_1_gib_log_is_capped_with_a_visible_marker(sessions, root, docker_settings):
    """The task prints 1 GiB; the run stores its cap and a marker, and still finishes."""
    capped = docker_settings.model_copy(update={"run_log_max_bytes": 1024 * 1024})
    worker = Runner(
        capped, sessions, DockerExecutor.from_settings(capped), ImageBuilder.from_settings(capped)
    )
    worker.start()
    try:
        files = task_files("loud")
        files["step.sh"] = (
            "#!/bin/sh\nyes $(printf '%01023d' 0) | head -c 1073741824\necho done >&2\n"
        )
        task_id = upload_task(sessions, root, "loud", files)
        assert wait_build(sessions, task_id).status == BuildStatus.READY
        with transaction(sessions) as session:
            approve_current_build(session, task_id)
            (host,) = make_inventory(session, root.project_id, 1)
            job_id = job_service.create_job(
                session, root.project_id, None, {"task": "loud", "hosts": [host.id]}
            ).id
        worker.wakeup.set()
        job = wait_job(sessions, job_id, timeout=400)
    finally:
        worker.stop(timeout=20)
    assert job.status == JobStatus.SUCCEEDED
    with transaction(sessions) as session:
        logs = (
            session.execute(select(RunLog).where(RunLog.job_id == job_id).order_by(RunLog.seq))
            .scalars()
            .all()
        )
        (run,) = session.execute(select(Run).where(Run.job_id == job_id)).scalars()
        assert run.log_bytes <= 1024 * 1024
    *kept, marker = logs
    assert marker.stream == "system" and "log capped" in marker.line
    assert 1000 <= len(kept) <= 1025 and all(len(r.line) == 1023 for r in kept)
    assert [r.seq for r in logs] == list(range(1, len(logs) + 1))
    assert containers_gone(root.project_id, job_id)
