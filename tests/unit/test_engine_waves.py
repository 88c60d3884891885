"""Rollout waves on the engine with the fake executor: order, gates, pauses, budgets."""

from __future__ import annotations

import time

from sqlalchemy import select

from craton_wf.db.engine import transaction
from craton_wf.db.models import JobEvent
from craton_wf.domain.states import JobStatus
from craton_wf.executors.base import ContainerSpec
from craton_wf.executors.fake import FakeExecutor, FakeOutcome
from craton_wf.services import jobs as job_service
from tests.unit.test_engine import hosts_of, payload_of, setup_job


def events_of(sessions, job_id, *kinds):  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        return [
            (e.kind, e.message, e.data)
            for e in session.execute(
                select(JobEvent)
                .where(JobEvent.job_id == job_id, JobEvent.kind.in_(kinds))
                .order_by(JobEvent.id)
            ).scalars()
        ]


def waves_of_hosts(sessions, job_id, sizes):  # type: ignore[no-untyped-def]
    """The job's hosts, wave by wave, in position order."""
    hosts = sorted(hosts_of(sessions, job_id).values(), key=lambda h: h.position)
    cut, start = [], 0
    for size in sizes:
        cut.append(hosts[start : start + size])
        start += size
    return cut


def test_waves_start_in_order_each_after_the_last_is_done(sessions, root, start_runner, wait_job):
    job_id = setup_job(sessions, root, ["patch"], hosts=8, concurrency=8, waves=[1, "25%", "rest"])
    start_runner(FakeExecutor(lambda spec: FakeOutcome(delay=0.05)))
    job = wait_job(job_id)
    assert job.status == "SUCCEEDED"
    assert job.wave_sizes == [1, 2, 5]
    assert job.current_wave == 3
    waves = waves_of_hosts(sessions, job_id, [1, 2, 5])
    for earlier, later in zip(waves, waves[1:], strict=False):
        assert max(h.finished_at for h in earlier) <= min(h.started_at for h in later)
    # Within a wave, the concurrency lets the hosts run together.
    last = waves[2]
    assert max(h.started_at for h in last) < min(h.finished_at for h in last)
    started = events_of(sessions, job_id, "wave_started")
    assert [m for _, m, _ in started] == [
        "wave 1/3: 1 host(s)",
        "wave 2/3: 2 host(s)",
        "wave 3/3: 5 host(s)",
    ]
    assert [d["wave"] for _, _, d in events_of(sessions, job_id, "wave_finished")] == [1, 2]


def test_a_gate_pauses_the_job_until_it_is_resumed(sessions, root, start_runner, wait_job):
    job_id = setup_job(
        sessions, root, ["patch"], hosts=3, concurrency=3, waves=[1, "100%"], wave_gate="approve"
    )
    executor = FakeExecutor()
    start_runner(executor)
    job = wait_job(job_id, states=[JobStatus.PAUSED])
    time.sleep(0.5)  # nothing more starts while it waits
    assert [payload_of(s)["host"]["name"] for s in executor.created] == ["host-000"]
    statuses = {n: h.status for n, h in hosts_of(sessions, job_id).items()}
    assert statuses == {"host-000": "SUCCEEDED", "host-001": "PENDING", "host-002": "PENDING"}
    with transaction(sessions) as session:
        assert session.get(type(job), job_id).status == "PAUSED"  # type: ignore[union-attr]
        job_service.resume(session, job_service.get_job(session, root.project_id, job_id), "ops")
    job = wait_job(job_id)
    assert job.status == "SUCCEEDED"
    assert len(executor.created) == 3
    kinds = [
        k
        for k, _, _ in events_of(
            sessions, job_id, "wave_started", "wave_finished", "job_paused", "job_resumed"
        )
    ]
    assert kinds == ["wave_started", "wave_finished", "job_paused", "job_resumed", "wave_started"]


def test_failures_exhausting_the_budget_stop_later_waves(sessions, root, start_runner, wait_job):
    failing = {"host-000", "host-002"}

    def behaviour(spec: ContainerSpec) -> FakeOutcome:
        if payload_of(spec)["host"]["name"] in failing:
            return FakeOutcome(lines=[("stderr", "boom")], exit_code=1)
        return FakeOutcome()

    job_id = setup_job(
        sessions, root, ["patch"], hosts=6, concurrency=2, max_failures=1, waves=[2, 2, "100%"]
    )
    executor = FakeExecutor(behaviour)
    start_runner(executor)
    job = wait_job(job_id)
    assert job.status == "FAILED"
    statuses = {n: h.status for n, h in sorted(hosts_of(sessions, job_id).items())}
    # Wave 1 failed once (within the budget of 1): wave 2 started; its failure made two.
    assert statuses == {
        "host-000": "FAILED",
        "host-001": "SUCCEEDED",
        "host-002": "FAILED",
        "host-003": "SUCCEEDED",
        "host-004": "SKIPPED",
        "host-005": "SKIPPED",
    }
    assert len(executor.created) == 4
    assert [d["wave"] for _, _, d in events_of(sessions, job_id, "wave_started")] == [1, 2]
    assert events_of(sessions, job_id, "failure_budget_exhausted")


def test_a_wave_budget_exhausted_before_a_gate_fails_the_job(
    sessions, root, start_runner, wait_job
):
    job_id = setup_job(sessions, root, ["patch"], hosts=3, waves=[1, "100%"], wave_gate="approve")
    start_runner(FakeExecutor(lambda spec: FakeOutcome(exit_code=2)))
    job = wait_job(job_id)
    assert job.status == "FAILED"
    assert not events_of(sessions, job_id, "job_paused")
    statuses = [h.status for h in waves_of_hosts(sessions, job_id, [3])[0]]
    assert statuses == ["FAILED", "SKIPPED", "SKIPPED"]


def test_the_next_wave_waits_out_the_pause(sessions, root, start_runner, wait_job):
    job_id = setup_job(
        sessions, root, ["patch"], hosts=3, concurrency=3, waves=[1, "100%"], wave_pause=1
    )
    start_runner(FakeExecutor())
    job = wait_job(job_id)
    assert job.status == "SUCCEEDED"
    assert job.next_wave_at is None
    first, second = waves_of_hosts(sessions, job_id, [1, 2])
    gap = min(h.started_at for h in second) - first[0].finished_at
    assert 1.0 <= gap.total_seconds() < 5.0
    waiting = events_of(sessions, job_id, "wave_waiting")
    assert [m for _, m, _ in waiting] == ["wave 2/2 starts in 1s"]


def test_a_job_aborted_during_a_wave_pause_starts_no_wave(sessions, root, start_runner, wait_job):
    job_id = setup_job(sessions, root, ["patch"], hosts=3, waves=[1, "100%"], wave_pause="1m")
    executor = FakeExecutor()
    start_runner(executor)
    deadline = time.monotonic() + 20
    while not events_of(sessions, job_id, "wave_waiting"):
        assert time.monotonic() < deadline, "wave 1 did not end"
        time.sleep(0.05)
    with transaction(sessions) as session:
        job = job_service.get_job(session, root.project_id, job_id)
        assert job.next_wave_at is not None
        job_service.abort(session, job, "ops")
    job = wait_job(job_id)
    assert job.status == "CANCELLED" and job.message.startswith("aborted by ops")
    time.sleep(1.0)  # runners look for due waves twice a second
    with transaction(sessions) as session:
        assert job_service.get_job(session, root.project_id, job_id).next_wave_at is None
    assert len(executor.created) == 1
