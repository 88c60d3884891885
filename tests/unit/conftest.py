"""Fixtures for engine tests: a runner driving the in-memory fake executor."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from craton_wf.db.engine import transaction
from craton_wf.db.models import Job
from craton_wf.domain.states import FINAL_JOB_STATES
from craton_wf.runner.worker import Runner


@pytest.fixture
def start_runner(settings, sessions) -> Iterator[Callable[..., Runner]]:  # type: ignore[no-untyped-def]
    runners: list[Runner] = []

    def start(executor: Any, builder: Any = None) -> Runner:
        runner = Runner(settings, sessions, executor, builder)
        runner.start()
        runners.append(runner)
        return runner

    yield start
    for runner in runners:
        runner.stop(timeout=10)


@pytest.fixture
def wait_job(sessions) -> Callable[..., Job]:  # type: ignore[no-untyped-def]
    def wait(job_id: int, timeout: float = 20.0, states: Any = None) -> Job:
        wanted = {s.value for s in (states or FINAL_JOB_STATES)}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with transaction(sessions) as session:
                job = session.get(Job, job_id)
                assert job is not None
                if job.status in wanted:
                    return job
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} still {job.status} after {timeout}s")

    return wait
