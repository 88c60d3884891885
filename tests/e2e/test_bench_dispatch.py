"""The dispatch benchmark itself runs: runner processes take a small job to its
end, on the suite's database (SQLite, or PostgreSQL when the suite names one).

A smoke check, not a timing: the figures are the benchmark's to print."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from sqlalchemy import func, select

from bench import raw_cycle
from bench.dispatch import measure, median_of
from bench.harness import Platform, add_hosts, add_ready_task, make_platform
from craton_wf.db.engine import transaction
from craton_wf.db.models import Job, JobEvent, JobHost, Run, RunLog
from craton_wf.services import jobs as job_service
from tests.conftest import POSTGRES_URL


def test_the_dispatch_benchmark_takes_a_job_to_its_end_with_one_runner_and_with_three() -> None:
    for runners in (1, 3):
        figures = median_of(1, lambda runners=runners: measure(POSTGRES_URL or None, 30, runners))
        assert figures.runs_per_second > 0
        assert figures.cpu_ms_per_run > 0 and figures.runner_cpu_ms_per_run > 0


def _end_state(platform: Platform, job_id: int) -> dict[str, object]:
    """What a finished job left in the database, in counts."""
    with transaction(platform.sessions) as session:
        job = session.get(Job, job_id)
        assert job is not None
        runs = session.execute(
            select(Run.status, Run.attempt, Run.log_seq, Run.lease_owner).where(
                Run.job_id == job_id
            )
        ).all()
        return {
            "job": (job.status, job.message, job.started_at is not None),
            "runs": Counter(runs),
            "hosts": Counter(
                session.execute(select(JobHost.status).where(JobHost.job_id == job_id)).scalars()
            ),
            "events": Counter(
                session.execute(select(JobEvent.kind).where(JobEvent.job_id == job_id)).scalars()
            ),
            "log lines": session.execute(
                select(func.count()).select_from(RunLog).where(RunLog.job_id == job_id)
            ).scalar_one(),
        }


@pytest.mark.skipif(not POSTGRES_URL, reason="the hand-written cycle is PostgreSQL's")
def test_the_hand_written_sql_cycle_leaves_a_job_as_a_runner_does() -> None:
    """The benchmark's floor does the database work of the cycle it stands for:
    the same job (more hosts than its concurrency), driven by ``bench.raw_cycle``
    and by a runner, ends with the same runs, hosts, events and log lines."""
    ends = []
    for raw in (True, False):
        platform = make_platform(POSTGRES_URL, executor="fake", runner_poll_seconds=0.05)
        hosts = add_hosts(platform, 12)
        add_ready_task(platform, "noop", "true")
        with transaction(platform.sessions) as session:
            job_id = job_service.create_job(
                session,
                platform.project_id,
                None,
                {"task": "noop", "hosts": hosts, "concurrency": 5, "max_failures": 12},
            ).id
        if raw:
            assert raw_cycle.drive(platform.settings.database_url, batch=4) == 12
        else:
            platform.start_runner()
            try:
                deadline = time.monotonic() + 60
                while _end_state(platform, job_id)["job"][0] != "SUCCEEDED":  # type: ignore[index]
                    assert time.monotonic() < deadline, "the runner did not finish the job"
                    time.sleep(0.1)
            finally:
                platform.stop()
        ends.append(_end_state(platform, job_id))
    assert ends[0] == ends[1]
    assert ends[0]["events"]["run_succeeded"] == 12  # type: ignore[index]
