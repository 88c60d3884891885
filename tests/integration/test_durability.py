"""Durable runners on the real Docker engine: a runner SIGKILLed at each crash point,
or paused past its lease, and a second runner finishes the job with nothing lost,
nothing stored twice and exactly one container per attempt."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from sqlalchemy import select

from craton_wf.db.engine import transaction
from craton_wf.db.models import Job, JobEvent, Run, RunLog, User
from craton_wf.domain.states import FINAL_JOB_STATES
from craton_wf.services import jobs as job_service
from craton_wf.services import workflows as workflow_service
from craton_wf.services.inputs import TaskCreate, WorkflowCreate
from tests.factories import make_inventory, make_ready_task

pytestmark = pytest.mark.docker

LINES = 60
COUNT = (
    f'i=1; while [ $i -le {LINES} ]; do echo "n $i"; i=$((i+1)); sleep 0.05; done; echo done >&2'
)


class Runners:
    """``craton-wf runner`` processes on the test's database."""

    def __init__(self, database_url: str, tmp_path: Path) -> None:
        self.env = {
            **os.environ,
            "CRATON_WF_DATABASE_URL": database_url,
            "CRATON_WF_DATA_DIR": str(tmp_path / "data"),
            "CRATON_WF_LEASE_SECONDS": "3",
            "CRATON_WF_HEARTBEAT_SECONDS": "0.5",
            "CRATON_WF_RUNNER_POLL_SECONDS": "0.1",
            "CRATON_WF_STOP_GRACE_SECONDS": "2",
            "CRATON_WF_REMOVE_CONTAINERS": "false",
        }
        self.log_dir = tmp_path
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, **env: str) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"runner-{name}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "craton_wf.cli", "runner", "--name", name],
            env={**self.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        return process

    def log(self, name: str) -> str:
        return (self.log_dir / f"runner-{name}.log").read_text()

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGCONT)
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def runners(database_url: str, tmp_path: Path, busybox_image: str) -> Iterator[Runners]:
    started = Runners(database_url, tmp_path)
    yield started
    started.stop_all()


@pytest.fixture
def project(sessions, root) -> Iterator[str]:  # type: ignore[no-untyped-def]
    yield root.project_id
    client = docker.from_env()
    for container in client.containers.list(
        ignore_removed=True, all=True, filters={"label": f"craton.project={root.project_id}"}
    ):
        container.remove(force=True)


def make_job(
    sessions,
    project_id: str,
    script: str = COUNT,
    hosts: int = 1,  # type: ignore[no-untyped-def]
    created_by: int | None = None,  # a creator's job gets a CRATON_TOKEN
    **step: Any,
) -> int:
    with transaction(sessions) as session:
        made = make_inventory(session, project_id, hosts)
        make_ready_task(session, project_id, "count", command=f"sh -c '{script}' task")
        workflow_service.create_workflow(
            session,
            project_id,
            None,
            WorkflowCreate.model_validate({"name": "wf", "steps": [{"task": "count", **step}]}),
        )
        return job_service.create_job(
            session,
            project_id,
            created_by,
            {
                "workflow": "wf",
                "hosts": [h.id for h in made],
                "concurrency": hosts,
                "max_failures": hosts,
            },
        ).id


def wait_job(sessions, job_id: int, timeout: float = 90) -> Job:  # type: ignore[no-untyped-def]
    final = {s.value for s in FINAL_JOB_STATES}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with transaction(sessions) as session:
            job = session.get(Job, job_id)
            if job.status in final:
                return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def containers_of(run: Run) -> list[Any]:
    return docker.from_env().containers.list(
        ignore_removed=True, all=True, filters={"label": f"craton.run-uid={run.uid}"}
    )


def stored_lines(sessions, run_id: int) -> list[RunLog]:  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        return list(
            session.execute(
                select(RunLog).where(RunLog.run_id == run_id).order_by(RunLog.seq)
            ).scalars()
        )


def the_run(sessions, job_id: int) -> Run:  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        return session.execute(select(Run).where(Run.job_id == job_id)).scalar_one()


def assert_complete_log(sessions, run_id: int) -> None:  # type: ignore[no-untyped-def]
    logs = stored_lines(sessions, run_id)
    assert [log.seq for log in logs] == list(range(1, len(logs) + 1))
    numbered = [log.line for log in logs if log.stream == "stdout"]
    assert numbered == [f"n {i}" for i in range(1, LINES + 1)]
    assert [log.line for log in logs if log.stream == "stderr"] == ["done"]
    assert not [log.line for log in logs if "log gap" in log.line]


@pytest.mark.parametrize("point", ["after_create", "after_start", "mid_logs", "before_finish"])
def test_runner_killed_at_a_crash_point(sessions, project, runners, point):
    job_id = make_job(sessions, project)
    first = runners.start("first", CRATON_WF_FAULT_POINT=point)
    assert first.wait(timeout=60) == -signal.SIGKILL, runners.log("first")
    runners.start("second")
    job = wait_job(sessions, job_id)
    run = the_run(sessions, job_id)
    assert job.status == "SUCCEEDED", (run.status, run.error, runners.log("second"))
    assert run.attempt == 1 and run.exit_code == 0
    containers = containers_of(run)
    assert len(containers) == 1 and containers[0].labels["craton.attempt"] == "1"
    assert_complete_log(sessions, run.id)
    with transaction(sessions) as session:
        kinds = [
            e.kind
            for e in session.execute(select(JobEvent).where(JobEvent.job_id == job_id)).scalars()
        ]
    assert "run_adopted" in kinds


PRINTS_TOKEN = (
    'i=1; while [ $i -le 40 ]; do echo "t $i $CRATON_TOKEN"; i=$((i+1)); sleep 0.05; done'
)


def test_a_taken_over_run_stores_no_token(sessions, root, project, runners):
    """The adopting runner never knew the container's token (only its hash is
    stored): the lines it stores are redacted of it all the same."""
    with transaction(sessions) as session:
        creator = session.execute(select(User.id).where(User.name == root.user)).scalar_one()
    job_id = make_job(sessions, project, script=PRINTS_TOKEN, created_by=creator)
    first = runners.start("first", CRATON_WF_FAULT_POINT="mid_logs")
    assert first.wait(timeout=60) == -signal.SIGKILL, runners.log("first")
    stored_by_first = len(stored_lines(sessions, the_run(sessions, job_id).id))
    runners.start("second")
    assert wait_job(sessions, job_id).status == "SUCCEEDED", runners.log("second")
    lines = [log.line for log in stored_lines(sessions, the_run(sessions, job_id).id)]
    printed = [line for line in lines if line.startswith("t ")]
    assert {line.split()[1] for line in printed} == {str(i) for i in range(1, 41)}
    assert stored_by_first < len(printed)  # the second runner stored the rest
    assert all(line.endswith(" [redacted]") for line in printed), printed
    assert not any("cwf_" in line for line in lines)


def test_container_lost_while_its_runner_was_dead_is_retried(sessions, project, runners):
    job_id = make_job(sessions, project, retries=1, retry_delay=0)
    first = runners.start("first", CRATON_WF_FAULT_POINT="after_start")
    assert first.wait(timeout=60) == -signal.SIGKILL
    run = the_run(sessions, job_id)
    for container in containers_of(run):
        container.remove(force=True)
    runners.start("second")
    assert wait_job(sessions, job_id).status == "SUCCEEDED"
    run = the_run(sessions, job_id)
    assert run.attempt == 2
    assert [c.labels["craton.attempt"] for c in containers_of(run)] == ["2"]


ROTATED = (
    'i=1; while [ $i -le 20 ]; do echo "n $i"; i=$((i+1)); sleep 0.02; done; '
    'while [ $i -le 320 ]; do echo "n $i"; i=$((i+1)); done; sleep 4; echo done >&2'
)


def test_lines_rotated_away_before_a_takeover_show_as_a_gap(sessions, project, runners):
    """The engine keeps 1 KiB of the container's log: the 300 lines printed while
    no runner read them rotate away, and the runner that takes over says so."""
    job_id = make_job(sessions, project, script=ROTATED)
    first = runners.start(
        "first",
        CRATON_WF_FAULT_POINT="mid_logs",
        CRATON_WF_CONTAINER_LOG_MAX_SIZE="1k",
        CRATON_WF_CONTAINER_LOG_MAX_FILES="1",
    )
    assert first.wait(timeout=60) == -signal.SIGKILL, runners.log("first")
    runners.start("second")
    job = wait_job(sessions, job_id)
    run = the_run(sessions, job_id)
    assert job.status == "SUCCEEDED", (run.status, run.error, runners.log("second"))
    assert len(containers_of(run)) == 1
    logs = stored_lines(sessions, run.id)
    assert [log.seq for log in logs] == list(range(1, len(logs) + 1))
    gaps = [i for i, log in enumerate(logs) if "log gap" in log.line]
    assert len(gaps) == 1 and logs[gaps[0]].stream == "system", [log.line for log in logs]
    numbers = [int(log.line.split()[1]) for log in logs if log.stream == "stdout"]
    before = [int(log.line.split()[1]) for log in logs[: gaps[0]] if log.stream == "stdout"]
    assert before == list(range(1, len(before) + 1)) and before  # stored before the kill
    assert numbers == sorted(set(numbers))  # nothing stored twice, nothing out of order
    assert numbers[-1] == 320 and len(numbers) < 320  # the end is there; the middle is gone
    assert [log.line for log in logs if log.stream == "stderr"] == ["done"]


def test_paused_runner_is_fenced_off(sessions, project, runners):
    job_id = make_job(sessions, project)
    first = runners.start("first")
    deadline = time.monotonic() + 60
    while not stored_lines(sessions, the_run(sessions, job_id).id):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGSTOP)
    runners.start("second")
    deadline = time.monotonic() + 30
    while the_run(sessions, job_id).lease_epoch < 2:
        assert time.monotonic() < deadline, "nobody took the run over"
        time.sleep(0.1)
    os.kill(first.pid, signal.SIGCONT)
    job = wait_job(sessions, job_id)
    run = the_run(sessions, job_id)
    assert job.status == "SUCCEEDED"
    assert len(containers_of(run)) == 1
    assert_complete_log(sessions, run.id)
    time.sleep(1)
    assert "lease held by someone else" in runners.log("first")
    assert first.poll() is None  # it lost the run, not its life


def _terminate_other_backends(database_url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.begin() as conn:
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    engine.dispose()
    return killed


def _restart_postgres() -> None:
    version = sorted(os.listdir("/usr/lib/postgresql"), key=lambda v: int(v))[-1]
    subprocess.run(["pg_ctlcluster", version, "main", "restart"], check=True, timeout=60)


@pytest.mark.postgres
@pytest.mark.parametrize("fault", ["terminate_backends", "restart_postgres"])
def test_database_faults_mid_job(sessions, project, runners, database_url, fault):
    if not database_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL fault: runs in the PostgreSQL pass of the suite")
    job_id = make_job(sessions, project, hosts=2)
    runners.start("first")
    deadline = time.monotonic() + 60
    while True:
        with transaction(sessions) as session:
            if session.execute(select(RunLog).where(RunLog.job_id == job_id)).first():
                break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    sessions.kw["bind"].dispose()
    if fault == "terminate_backends":
        assert _terminate_other_backends(database_url) >= 1
    else:
        _restart_postgres()
    job = wait_job(sessions, job_id, timeout=120)
    assert job.status == "SUCCEEDED", runners.log("first")
    with transaction(sessions) as session:
        runs = list(session.execute(select(Run).where(Run.job_id == job_id)).scalars())
    for run in runs:
        assert run.attempt == 1 and len(containers_of(run)) == 1
        assert_complete_log(sessions, run.id)


def test_cancel_while_the_owning_runner_is_dead(sessions, project, runners):
    job_id = make_job(sessions, project, script="echo started; exec sleep 300")
    first = runners.start("first", CRATON_WF_FAULT_POINT="after_start")
    assert first.wait(timeout=60) == -signal.SIGKILL
    with transaction(sessions) as session:
        job_service.cancel(session, job_service.get_job(session, project, job_id))
        assert session.get(Job, job_id).status == "CANCELLING"
    runners.start("second")
    job = wait_job(sessions, job_id, timeout=60)
    assert job.status == "CANCELLED"
    run = the_run(sessions, job_id)
    assert run.status == "CANCELLED"
    (container,) = containers_of(run)
    assert container.status == "exited"


def test_three_runners_execute_every_run_exactly_once(sessions, project, runners):
    """200 short containers on the real engine, shared by three runners."""
    runs = 200
    with transaction(sessions) as session:
        hosts = make_inventory(session, project, runs)
        make_ready_task(session, project, "once", command="sh -c 'echo ran' task")
    runners.env["CRATON_WF_RUNNER_SLOTS"] = "8"
    for index in range(3):
        runners.start(f"r{index}")
    with transaction(sessions) as session:
        job_id = job_service.create_job(
            session,
            project,
            None,
            {"task": "once", "hosts": [h.id for h in hosts], "concurrency": runs},
        ).id
    assert wait_job(sessions, job_id, timeout=600).status == "SUCCEEDED"
    containers = docker.from_env().containers.list(
        ignore_removed=True,
        all=True,
        # job ids start again in each test's database: the project names this one's
        filters={
            "label": [f"craton.project={project}", f"craton.job={job_id}"],
            "status": "exited",
        },
    )
    with transaction(sessions) as session:
        done = list(session.execute(select(Run).where(Run.job_id == job_id)).scalars())
        started = [
            e.run_id
            for e in session.execute(
                select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.kind == "run_started")
            ).scalars()
        ]
        owners = {
            e.runner_id
            for e in session.execute(
                select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.kind == "run_started")
            ).scalars()
        }
        lines = session.execute(select(RunLog.run_id).where(RunLog.job_id == job_id)).all()
    assert len(done) == runs
    assert all(r.status == "SUCCEEDED" and r.attempt == 1 and r.lease_epoch == 1 for r in done)
    assert sorted(started) == sorted(r.id for r in done)  # one start per run, no more
    assert len(lines) == runs  # each container prints one line
    assert len(owners) == 3  # the work was shared
    per_run = Counter(c.labels["craton.run-uid"] for c in containers)
    assert sorted(per_run) == sorted(r.uid for r in done) and set(per_run.values()) == {1}


def test_sigterm_hands_running_work_over_at_once(sessions, project, runners):
    slow = COUNT.replace("sleep 0.05", "sleep 0.1")
    job_id = make_job(sessions, project, script=slow)
    runners.env.update({"CRATON_WF_LEASE_SECONDS": "60", "CRATON_WF_SHUTDOWN_GRACE_SECONDS": "1"})
    first = runners.start("first")
    deadline = time.monotonic() + 60
    while not stored_lines(sessions, the_run(sessions, job_id).id):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    first.terminate()
    assert first.wait(timeout=20) == 0
    runners.start("second")
    # far sooner than the 60 s lease: the stopping runner expired it
    job = wait_job(sessions, job_id, timeout=30)
    run = the_run(sessions, job_id)
    assert job.status == "SUCCEEDED" and run.lease_epoch == 2
    assert len(containers_of(run)) == 1
    assert_complete_log(sessions, run.id)


def test_build_interrupted_by_a_dead_runner_is_restarted(sessions, root, runners):
    from craton_wf.db.models import Build, BuildLog, Task
    from craton_wf.services import tasks as task_service
    from tests.integration.test_platform import tarball

    files = {"Dockerfile": "FROM craton/busybox:latest\nRUN sleep 4\n"}
    with transaction(sessions) as session:
        task_id = task_service.create_task(
            session,
            root.project_id,
            None,
            TaskCreate(name="slow-build", command="true"),
            tarball(files),
            10**6,
        ).id
    first = runners.start("first")
    deadline = time.monotonic() + 60
    while True:
        with transaction(sessions) as session:
            if session.get(Task, task_id).status == "BUILDING":
                break
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(1)
    first.kill()
    runners.start("second")
    deadline = time.monotonic() + 120
    while True:
        with transaction(sessions) as session:
            task = session.get(Task, task_id)
            if task.status in ("READY", "BUILD FAILED"):
                build = session.get(Build, task.current_build_id)
                log = [
                    row.line
                    for row in session.execute(
                        select(BuildLog).where(BuildLog.build_id == build.id)
                    ).scalars()
                ]
                break
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert task.status == "READY", log
    assert any("restarts this build" in line for line in log)
    docker.from_env().images.remove(build.image, force=True)
