"""Sweeping up containers runners left behind, on the fake executor: which containers
go (of finished runs, of earlier attempts) and which stay (of runs queued or running
at that attempt, of another database's runs), and that runners sweep at their start,
then every ``sweep_seconds``, and never fail for it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from craton_wf.db.engine import transaction
from craton_wf.db.models import JobHost, Run
from craton_wf.errors import ExecutorError
from craton_wf.executors.base import ContainerSpec, Handle
from craton_wf.executors.fake import FakeExecutor, FakeOutcome
from craton_wf.runner.sweeper import sweep_containers
from craton_wf.runner.worker import Runner
from craton_wf.services import jobs as job_service
from craton_wf.services import workflows as workflow_service
from craton_wf.services.inputs import WorkflowCreate
from tests.factories import make_inventory, make_ready_task
from tests.unit.test_engine import payload_of, setup_job

UNKNOWN_UID = "0123456789ab"  # no run of the test's database has it


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


@dataclass(frozen=True)
class RunRow:
    id: int
    host: str
    status: str
    attempt: int
    container_id: str | None


def runs_by_host(sessions) -> dict[str, RunRow]:  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        rows = session.execute(
            select(Run, JobHost.host_name).join(JobHost, JobHost.id == Run.job_host_id)
        ).all()
        return {
            host: RunRow(run.id, host, run.status, run.attempt, run.container_id)
            for run, host in rows
        }


def containers(executor: FakeExecutor) -> dict[tuple[int, int], Handle]:
    """The executor's containers of runs, by run id and attempt."""
    return {
        (int(h.labels["craton.run"]), int(h.labels["craton.attempt"])): h
        for h in executor.managed()
        if "craton.attempt" in h.labels
    }


def container_of(executor: FakeExecutor, run_id: int, attempt: int) -> Handle:
    return containers(executor)[(run_id, attempt)]


def leave_behind(executor: FakeExecutor, name: str, labels: dict[str, str]) -> Handle:
    """A container as a runner would have made it, never started (nor removed)."""
    return executor.create(ContainerSpec(name=name, image="task:1", command=[], labels=labels))


@pytest.fixture
def keeping(settings, sessions) -> Iterator[Callable[[FakeExecutor], Runner]]:  # type: ignore[no-untyped-def]
    """Start a runner that keeps every container, as one stopped before removing them."""
    runners: list[tuple[Runner, FakeExecutor]] = []

    def start(executor: FakeExecutor) -> Runner:
        runner = Runner(
            settings.model_copy(update={"remove_containers": False}), sessions, executor
        )
        runner.start()
        runners.append((runner, executor))
        return runner

    yield start
    for runner, executor in runners:
        for handle in executor.managed():  # the long ones: let their runs end now
            executor.stop(handle, grace_seconds=0)
        runner.stop(timeout=10)


def make_jobs(sessions, root) -> None:  # type: ignore[no-untyped-def]
    """Hosts 0-2 in a job whose step retries at once, host 3 in one that retries in 10 min."""
    with transaction(sessions) as session:
        hosts = make_inventory(session, root.project_id, 4)
        make_ready_task(session, root.project_id, "work", command="/bin/work")
        for name, delay in (("soon", 0), ("later", 600)):
            workflow_service.create_workflow(
                session,
                root.project_id,
                None,
                WorkflowCreate.model_validate(
                    {"name": name, "steps": [{"task": "work", "retries": 1, "retry_delay": delay}]}
                ),
            )
        for name, targets in (("soon", hosts[:3]), ("later", hosts[3:])):
            job_service.create_job(
                session,
                root.project_id,
                None,
                {"workflow": name, "hosts": [h.id for h in targets], "concurrency": 3},
            )


def behaviour(spec: ContainerSpec) -> FakeOutcome:
    """host-000 succeeds; host-001 runs on; host-002 fails for now, then runs on in its
    second attempt; host-003 fails for now (and waits ten minutes for its retry)."""
    host, attempt = payload_of(spec)["host"]["name"], int(spec.labels["craton.attempt"])
    if host == "host-000":
        return FakeOutcome()
    if host == "host-001" or (host == "host-002" and attempt == 2):
        return FakeOutcome(delay=60)
    return FakeOutcome(exit_code=75)


def test_only_containers_no_run_needs_are_swept(sessions, root, keeping):  # type: ignore[no-untyped-def]
    make_jobs(sessions, root)
    executor = FakeExecutor(behaviour)
    keeping(executor)

    def settled() -> bool:
        runs = runs_by_host(sessions)
        second = runs["host-002"]
        return (
            (runs["host-000"].status, runs["host-000"].attempt) == ("SUCCEEDED", 1)
            and (runs["host-001"].status, runs["host-001"].attempt) == ("RUNNING", 1)
            and (second.status, second.attempt) == ("RUNNING", 2)
            and second.container_id == getattr(containers(executor).get((second.id, 2)), "id", 0)
            and (runs["host-003"].status, runs["host-003"].attempt) == ("QUEUED", 1)
        )

    assert eventually(settled), runs_by_host(sessions)
    runs = runs_by_host(sessions)
    succeeded, running, retried, queued = (runs[f"host-00{i}"] for i in range(4))
    finished = container_of(executor, succeeded.id, 1)
    earlier = container_of(executor, retried.id, 1)
    stranger = leave_behind(
        executor,
        "another-databases-run",
        {**finished.labels, "craton.run-uid": UNKNOWN_UID},
    )
    malformed = leave_behind(  # a finished run's, but which attempt? Not for the sweep to guess
        executor,
        "no-attempt-label",
        {k: v for k, v in finished.labels.items() if k != "craton.attempt"},
    )

    removed = sweep_containers(sessions, executor)

    assert sorted(h.name for h in removed) == sorted([finished.name, earlier.name])
    assert sorted(executor.names()) == sorted(
        [
            container_of(executor, running.id, 1).name,
            container_of(executor, retried.id, 2).name,
            container_of(executor, queued.id, 1).name,
            stranger.name,
            malformed.name,
        ]
    )
    assert sweep_containers(sessions, executor) == []  # nothing more, the second time


def test_the_container_a_run_still_names_stays_until_the_run_ends(sessions, root, keeping):  # type: ignore[no-untyped-def]
    job_id = setup_job(sessions, root, ["one"], hosts=1)
    executor = FakeExecutor(lambda spec: FakeOutcome(delay=60))
    keeping(executor)
    assert eventually(lambda: runs_by_host(sessions)["host-000"].status == "RUNNING")
    run = runs_by_host(sessions)["host-000"]
    current = container_of(executor, run.id, 1)
    with transaction(sessions) as session:  # claimed for attempt 2, its container not yet made
        session.get(Run, run.id).attempt = 2  # type: ignore[union-attr]

    assert sweep_containers(sessions, executor) == []

    executor.stop(current, grace_seconds=0)
    assert eventually(lambda: runs_by_host(sessions)["host-000"].status == "FAILED"), job_id
    assert [h.name for h in sweep_containers(sessions, executor)] == [current.name]


def finished_job_left_behind(sessions, root, keeping) -> tuple[FakeExecutor, Handle]:  # type: ignore[no-untyped-def]
    """A job done by a runner that kept its container, and that container."""
    setup_job(sessions, root, ["one"], hosts=1)
    executor = FakeExecutor()
    runner = keeping(executor)
    assert eventually(lambda: runs_by_host(sessions)["host-000"].status == "SUCCEEDED")
    runner.stop(timeout=10)
    run = runs_by_host(sessions)["host-000"]
    return executor, container_of(executor, run.id, 1)


def test_a_runner_sweeps_at_its_start_then_every_sweep_seconds(
    settings, sessions, root, keeping, caplog
):  # type: ignore[no-untyped-def]
    executor, left = finished_job_left_behind(sessions, root, keeping)
    caplog.set_level(logging.INFO, logger="craton_wf.runner.worker")
    runner = Runner(settings.model_copy(update={"sweep_seconds": 0.3}), sessions, executor)
    runner.start()
    try:
        assert eventually(lambda: left.name not in executor.names())
        stranger = leave_behind(
            executor, "another-databases-run", {**left.labels, "craton.run-uid": UNKNOWN_UID}
        )
        again = leave_behind(executor, "left-behind-again", left.labels)
        assert eventually(lambda: again.name not in executor.names())
        time.sleep(0.5)  # another sweep or two
        assert stranger.name in executor.names()
    finally:
        runner.stop(timeout=10)
    assert f"runner {runner.id} removed 1 container(s) left behind" in caplog.messages


@pytest.mark.parametrize(
    "settings_update", [{"sweep_seconds": 0}, {"remove_containers": False, "sweep_seconds": 0.1}]
)
def test_the_sweep_can_be_turned_off(settings, sessions, root, keeping, settings_update):  # type: ignore[no-untyped-def]
    executor, left = finished_job_left_behind(sessions, root, keeping)
    runner = Runner(settings.model_copy(update=settings_update), sessions, executor)
    runner.start()
    try:
        time.sleep(1)
        assert left.name in executor.names()
    finally:
        runner.stop(timeout=10)


def test_a_failing_sweep_is_logged_and_the_runner_works_on(
    settings, sessions, root, wait_job, caplog
):  # type: ignore[no-untyped-def]
    class UnlistableExecutor(FakeExecutor):
        def managed(self) -> list[Any]:
            raise ExecutorError("cannot list the containers of runs")

    runner = Runner(
        settings.model_copy(update={"sweep_seconds": 0.1}), sessions, UnlistableExecutor()
    )
    runner.start()
    try:
        assert eventually(
            lambda: "sweeping containers left behind failed; trying again later" in caplog.messages
        )
        job_id = setup_job(sessions, root, ["one"], hosts=1)
        assert wait_job(job_id).status == "SUCCEEDED"
    finally:
        runner.stop(timeout=10)
