"""The engine end to end on the fake executor: ordering, concurrency, failures, payloads."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from sqlalchemy import select

from craton_wf.db.engine import transaction
from craton_wf.db.models import JobHost, Run, RunLog, utcnow
from craton_wf.executors.base import ContainerSpec
from craton_wf.executors.fake import FakeExecutor, FakeOutcome
from craton_wf.runner import execution
from craton_wf.services import jobs as job_service
from craton_wf.services import workflows as workflow_service
from craton_wf.services.inputs import WorkflowCreate
from tests.factories import make_inventory, make_ready_task


def payload_of(spec: ContainerSpec) -> dict[str, Any]:
    return json.loads(spec.command[-1])


def setup_job(sessions, root, steps, hosts=3, host_vars=None, **job):  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        made = make_inventory(session, root.project_id, hosts, host_vars)
        for step in steps:
            name = step["task"] if isinstance(step, dict) else step
            # A step hands its task only secrets the task declares.
            secrets = step.get("secrets", []) if isinstance(step, dict) else []
            make_ready_task(session, root.project_id, name, command=f"/bin/{name}", secrets=secrets)
        workflow_service.create_workflow(
            session, root.project_id, None, WorkflowCreate(name="wf", steps=steps)
        )
        created = job_service.create_job(
            session, root.project_id, None, {"workflow": "wf", "hosts": [h.id for h in made], **job}
        )
        return created.id


def runs_of(sessions, job_id):  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        rows = session.execute(
            select(Run, JobHost.host_name)
            .outerjoin(JobHost, JobHost.id == Run.job_host_id)
            .where(Run.job_id == job_id)
            .order_by(Run.id)
        ).all()
        return [(run, name) for run, name in rows]


def hosts_of(sessions, job_id):  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        return {
            h.host_name: h
            for h in session.execute(select(JobHost).where(JobHost.job_id == job_id)).scalars()
        }


def test_sequence_one_host_at_a_time(sessions, root, start_runner, wait_job):
    job_id = setup_job(sessions, root, ["one", "two", "three"])
    executor = FakeExecutor()
    start_runner(executor)
    job = wait_job(job_id)
    assert job.status == "SUCCEEDED"
    order = [
        (payload_of(s)["host"]["name"], payload_of(s)["step"]["name"]) for s in executor.created
    ]
    assert order == [(f"host-{h:03d}", step) for h in range(3) for step in ("one", "two", "three")]
    assert all(
        run.status == "SUCCEEDED" and run.exit_code == 0 for run, _ in runs_of(sessions, job_id)
    )


def test_concurrency_limit_is_respected(sessions, root, start_runner, wait_job):
    job_id = setup_job(sessions, root, ["a", "b"], hosts=5, concurrency=2)
    lock, active, peak = threading.Lock(), set(), [0]

    def behaviour(spec: ContainerSpec) -> FakeOutcome:
        host = payload_of(spec)["host"]["name"]
        with lock:
            active.add(host)
            peak[0] = max(peak[0], len(active))
        return FakeOutcome(lines=[("stdout", "hi")], delay=0.1)

    start_runner(FakeExecutor(behaviour))
    assert wait_job(job_id).status == "SUCCEEDED"
    hosts = hosts_of(sessions, job_id)
    intervals = sorted((h.started_at, h.finished_at) for h in hosts.values())
    overlap = max(sum(1 for s, f in intervals if s <= start < f) for start, _ in intervals)
    assert overlap == 2


def test_failing_step_stops_its_host_only(sessions, root, start_runner, wait_job):
    job_id = setup_job(sessions, root, ["one", "two", "three"], concurrency=3, max_failures=1)

    def behaviour(spec: ContainerSpec) -> FakeOutcome:
        payload = payload_of(spec)
        if payload["host"]["name"] == "host-001" and payload["step"]["name"] == "two":
            return FakeOutcome(lines=[("stderr", "boom")], exit_code=3)
        return FakeOutcome()

    start_runner(FakeExecutor(behaviour))
    job = wait_job(job_id)
    assert job.status == "FAILED"
    hosts = hosts_of(sessions, job_id)
    assert {n: h.status for n, h in hosts.items()} == {
        "host-000": "SUCCEEDED",
        "host-001": "FAILED",
        "host-002": "SUCCEEDED",
    }
    assert hosts["host-001"].failed_step == "two"
    statuses = {
        (name, run.step_name): (run.status, run.exit_code)
        for run, name in runs_of(sessions, job_id)
    }
    assert statuses[("host-001", "two")] == ("FAILED", 3)
    assert statuses[("host-001", "three")] == ("SKIPPED", None)


def test_failure_budget_stops_new_hosts(sessions, root, start_runner, wait_job):
    job_id = setup_job(sessions, root, ["one"], hosts=4, concurrency=1, max_failures=0)
    start_runner(FakeExecutor(lambda spec: FakeOutcome(exit_code=1)))
    assert wait_job(job_id).status == "FAILED"
    assert [
        h.status for h in sorted(hosts_of(sessions, job_id).values(), key=lambda h: h.position)
    ] == ["FAILED", "SKIPPED", "SKIPPED", "SKIPPED"]


def test_payload_has_host_variables_job_variables_and_outputs(
    sessions, root, start_runner, wait_job
):
    job_id = setup_job(
        sessions,
        root,
        ["first", "second"],
        hosts=1,
        host_vars={"rack": "r7"},
        variables={"ticket": "CHG-1"},
    )

    def behaviour(spec: ContainerSpec) -> FakeOutcome:
        if payload_of(spec)["step"]["name"] == "first":
            return FakeOutcome(lines=[("stdout", '::craton-output:: {"vms": ["a", "b"]}')])
        return FakeOutcome()

    executor = FakeExecutor(behaviour)
    start_runner(executor)
    assert wait_job(job_id).status == "SUCCEEDED"
    first, second = (payload_of(s) for s in executor.created)
    assert executor.created[0].command[:-1] == ["/bin/first"]
    host = second["host"]
    assert host["name"] == "host-000" and host["ip_address"] == "10.0.0.1"
    assert host["variables"] == {"rack": "r7", "tz": "UTC"}
    assert host["region"] == "region1" and host["cell"] == "cell1"
    assert host["labels"] == ["compute"]
    assert second["variables"] == {"ticket": "CHG-1"}
    assert first["outputs"] == {}
    assert second["outputs"] == {"first": {"vms": ["a", "b"]}}
    labels = executor.created[1].labels
    assert labels["craton.job"] == str(job_id) and labels["craton.project"] == root.project_id
    assert labels["craton.host"] == str(host["id"]) and labels["craton.run"]


def test_logs_are_stored_in_order_with_streams(sessions, root, start_runner, wait_job):
    job_id = setup_job(sessions, root, ["one"], hosts=1)
    lines = [("stdout" if i % 3 else "stderr", f"line {i}") for i in range(300)]
    start_runner(FakeExecutor(lambda spec: FakeOutcome(lines=lines)))
    assert wait_job(job_id).status == "SUCCEEDED"
    with transaction(sessions) as session:
        stored = list(session.execute(select(RunLog).order_by(RunLog.id)).scalars())
    assert [(log.stream, log.line) for log in stored] == lines
    assert [log.seq for log in stored] == list(range(1, 301))


def test_a_log_read_faster_than_it_is_stored_waits_and_loses_nothing(
    sessions, root, start_runner, wait_job, monkeypatch
):
    monkeypatch.setattr(execution, "LINES_QUEUED", 7)  # the reader holds at 7 lines queued
    job_id = setup_job(sessions, root, ["one"], hosts=2)
    lines = [("stdout", f"line {i}") for i in range(400)]
    start_runner(FakeExecutor(lambda spec: FakeOutcome(lines=lines)))
    assert wait_job(job_id).status == "SUCCEEDED"
    with transaction(sessions) as session:
        for run_id in session.execute(select(Run.id).where(Run.job_id == job_id)).scalars():
            stored = session.execute(
                select(RunLog.seq, RunLog.line).where(RunLog.run_id == run_id).order_by(RunLog.seq)
            ).all()
            assert [line for _, line in stored] == [text for _, text in lines]
            assert [seq for seq, _ in stored] == list(range(1, 401))


def test_cancel_stops_running_and_cancels_queued(sessions, root, start_runner, wait_job, caplog):
    caplog.set_level("INFO", logger="craton_wf.engine.scheduling")
    job_id = setup_job(sessions, root, ["slow", "after"], hosts=3, concurrency=1)
    start_runner(FakeExecutor(lambda spec: FakeOutcome(delay=30)))
    wait_job(job_id, states=[__import__("craton_wf.domain.states").domain.states.JobStatus.RUNNING])
    time.sleep(0.3)
    with transaction(sessions) as session:
        job_service.cancel(session, job_service.get_job(session, root.project_id, job_id))
    job = wait_job(job_id, timeout=10)
    assert job.status == "CANCELLED"
    assert job.message == "cancelled by request: 3 cancelled"  # why, then the hosts
    statuses = sorted({run.status for run, _ in runs_of(sessions, job_id)})
    assert statuses == ["CANCELLED"]
    assert {h.status for h in hosts_of(sessions, job_id).values()} == {"CANCELLED"}
    # Each run says why, the one that ran (stopped) and those that never started.
    runs = [run for run, _ in runs_of(sessions, job_id)]
    assert sum(run.started_at is not None for run in runs) == 1
    assert {run.error for run in runs} == {"cancelled by request"}
    # The service log has a line for the runs cancelled together, as for each other change.
    assert f"job {job_id}: 5 runs not started: PENDING|QUEUED -> CANCELLED" in caplog.messages


def test_temporary_failure_is_retried(sessions, root, start_runner, wait_job):
    job_id = setup_job(sessions, root, [{"task": "flaky", "retries": 2, "retry_delay": 0}], hosts=1)
    attempts: list[int] = []

    def behaviour(spec: ContainerSpec) -> FakeOutcome:
        attempts.append(payload_of(spec)["step"]["attempt"])
        return FakeOutcome(exit_code=75 if len(attempts) < 2 else 0)

    start_runner(FakeExecutor(behaviour))
    assert wait_job(job_id).status == "SUCCEEDED"
    assert attempts == [1, 2]
    ((run, _),) = runs_of(sessions, job_id)
    assert run.attempt == 2 and run.status == "SUCCEEDED"


def test_step_timeout(sessions, root, start_runner, wait_job):
    job_id = setup_job(sessions, root, [{"task": "hang", "timeout": 1}], hosts=1)
    start_runner(FakeExecutor(lambda spec: FakeOutcome(delay=30)))
    assert wait_job(job_id, timeout=15).status == "FAILED"
    ((run, _),) = runs_of(sessions, job_id)
    assert run.status == "TIMED_OUT"


def test_graph_with_once_step_after_all_hosts(sessions, root, start_runner, wait_job):
    steps = [
        {"task": "drain"},
        {"task": "patch", "depends_on": ["drain"]},
        {"task": "report", "once": True, "depends_on": ["patch"]},
    ]
    job_id = setup_job(sessions, root, steps, hosts=3, concurrency=3)
    executor = FakeExecutor()
    start_runner(executor)
    assert wait_job(job_id).status == "SUCCEEDED"
    names = [payload_of(s)["step"]["name"] for s in executor.created]
    assert names[-1] == "report" and names.count("report") == 1
    report = payload_of(executor.created[-1])
    assert report["host"] is None and set(report["outputs"]) == {"drain", "patch"}


def test_optional_step_failure_lets_host_go_on(sessions, root, start_runner, wait_job):
    steps = [{"task": "maybe", "required": False}, {"task": "then"}]
    job_id = setup_job(sessions, root, steps, hosts=1)
    start_runner(
        FakeExecutor(
            lambda spec: FakeOutcome(
                exit_code=1 if payload_of(spec)["step"]["name"] == "maybe" else 0
            )
        )
    )
    assert wait_job(job_id).status == "SUCCEEDED"
    assert [run.status for run, _ in runs_of(sessions, job_id)] == ["FAILED", "SUCCEEDED"]


def test_job_timeout_cancels_what_runs(sessions, root, start_runner, wait_job):
    # Long enough for the runner to start a run before the deadline on a busy machine.
    job_id = setup_job(sessions, root, ["hang"], hosts=2, timeout=3)
    start_runner(FakeExecutor(lambda spec: FakeOutcome(delay=30)))
    job = wait_job(job_id, timeout=20)
    assert job.status == "CANCELLED"
    # The job says why it was cancelled; so do its runs and their events, not "ok".
    assert job.message == "job timed out after 3s: 2 cancelled"
    runs = [run for run, _ in runs_of(sessions, job_id)]
    assert [(run.status, run.error) for run in runs] == [
        ("CANCELLED", "job timed out after 3s")
    ] * 2
    with transaction(sessions) as session:
        from craton_wf.services.events import list_events

        told = {(e.kind, e.message) for e in list_events(session, job_id)}
    assert ("cancel_requested", "job timed out after 3s") in told
    assert ("run_cancelled", "hang: job timed out after 3s") in told
    assert ("job_finished", "CANCELLED (job timed out after 3s): hosts 2 cancelled") in told


def test_events_tell_the_story_of_a_run(sessions, root, start_runner, wait_job):
    job_id = setup_job(sessions, root, ["one"], hosts=1)
    start_runner(FakeExecutor())
    wait_job(job_id)
    with transaction(sessions) as session:
        from craton_wf.services.events import list_events

        kinds = [e.kind for e in list_events(session, job_id)]
    assert kinds == [
        "job_created",
        "host_started",
        "run_queued",
        "job_started",
        "run_started",
        "run_succeeded",
        "host_succeeded",
        "job_finished",
    ]


def test_a_permanent_failure_is_not_retried(sessions, root, start_runner, wait_job):
    job_id = setup_job(
        sessions, root, [{"task": "broken", "retries": 3, "retry_delay": 0}], hosts=1
    )
    executor = FakeExecutor(lambda spec: FakeOutcome(exit_code=2))
    start_runner(executor)
    assert wait_job(job_id).status == "FAILED"
    ((run, _),) = runs_of(sessions, job_id)
    assert (run.attempt, run.status, run.exit_code) == (1, "FAILED", 2)
    assert len(executor.created) == 1


def test_retries_run_out_and_wait_out_their_backoff(sessions, root, start_runner, wait_job):
    job_id = setup_job(
        sessions, root, [{"task": "flaky", "retries": 2, "retry_delay": 0.5}], hosts=1
    )
    started: list[float] = []

    def behaviour(spec: ContainerSpec) -> FakeOutcome:
        started.append(time.monotonic())
        return FakeOutcome(exit_code=75)

    start_runner(FakeExecutor(behaviour))
    assert wait_job(job_id).status == "FAILED"
    ((run, _),) = runs_of(sessions, job_id)
    assert (run.attempt, run.status, run.exit_code) == (3, "FAILED", 75)
    assert len(started) == 3
    # The backoff grows with the attempt: 0.5 s before the 2nd, 1 s before the 3rd.
    assert started[1] - started[0] >= 0.45
    assert started[2] - started[1] >= 0.95


def test_a_run_stores_at_most_its_log_cap_and_says_so(sessions, root, settings, wait_job):
    from craton_wf.runner.worker import Runner

    job_id = setup_job(sessions, root, ["chatty"], hosts=1)
    lines = [("stdout", f"line {i:05d} " + "x" * 90) for i in range(2000)]  # ~200 kB
    capped = settings.model_copy(update={"run_log_max_bytes": 10_000})
    runner = Runner(capped, sessions, FakeExecutor(lambda spec: FakeOutcome(lines=lines)), None)
    runner.start()
    try:
        assert wait_job(job_id).status == "SUCCEEDED"
    finally:
        runner.stop(timeout=10)
    with transaction(sessions) as session:
        stored = session.execute(select(RunLog).order_by(RunLog.seq)).scalars().all()
    ((run, _),) = runs_of(sessions, job_id)
    assert run.log_bytes <= 10_000
    assert [r.seq for r in stored] == list(range(1, len(stored) + 1))
    *kept, marker = stored
    assert sum(len(r.line.encode()) for r in kept) <= 10_000
    assert [r.line for r in kept] == [text for _, text in lines[: len(kept)]]
    assert marker.stream == "system" and "log capped" in marker.line
    assert 90 <= len(kept) < 100


def test_a_container_made_meanwhile_under_the_runs_name_is_adopted(
    sessions, root, start_runner, wait_job
):
    from craton_wf.errors import NameTaken

    class RacedExecutor(FakeExecutor):
        """Another runner makes the container just before this one does."""

        def create(self, spec):  # type: ignore[no-untyped-def]
            super().create(spec)
            raise NameTaken(f"container name {spec.name} is already taken")

    job_id = setup_job(sessions, root, ["one"], hosts=1)
    executor = RacedExecutor()
    start_runner(executor)
    assert wait_job(job_id).status == "SUCCEEDED"
    assert len(executor.created) == 1
    ((run, _),) = runs_of(sessions, job_id)
    assert (run.attempt, run.status) == (1, "SUCCEEDED")


def test_a_stranger_under_the_runs_name_is_left_alone(sessions, root, start_runner, wait_job):
    from craton_wf.errors import NameTaken

    class SquattedExecutor(FakeExecutor):
        def create(self, spec):  # type: ignore[no-untyped-def]
            from dataclasses import replace

            super().create(replace(spec, labels={"craton.run-uid": "someone-else"}))
            raise NameTaken(f"container name {spec.name} is already taken")

    job_id = setup_job(sessions, root, ["one"], hosts=1)
    executor = SquattedExecutor()
    start_runner(executor)
    assert wait_job(job_id).status == "FAILED"
    ((run, _),) = runs_of(sessions, job_id)
    assert "not this run's" in (run.error or "")
    assert executor.find(run.container_name).state == "created"  # type: ignore[union-attr, arg-type]


def test_a_secret_that_does_not_decrypt_fails_the_run_and_says_why(
    sessions, root, start_runner, wait_job
):
    from cryptography.fernet import Fernet

    from craton_wf.services import project_secrets
    from craton_wf.services.inputs import SecretCreate

    with transaction(sessions) as session:  # encrypted with another key than the runner's
        project_secrets.create_secret(
            session,
            Fernet(Fernet.generate_key()),
            root.project_id,
            None,
            SecretCreate(name="DB_PASSWORD", value="not-the-runners-key"),
        )
    job_id = setup_job(sessions, root, [{"task": "migrate", "secrets": ["DB_PASSWORD"]}], hosts=1)
    executor = FakeExecutor()
    start_runner(executor)
    assert wait_job(job_id).status == "FAILED"
    ((run, _),) = runs_of(sessions, job_id)
    assert run.status == "FAILED" and run.error.startswith(
        "could not prepare the run: secret DB_PASSWORD"
    )
    assert "cannot be decrypted" in run.error
    assert executor.created == []  # no container was made without its secrets


def test_events_are_written_in_order_with_their_transaction_or_not_at_all(sessions, root):
    from craton_wf.engine.events import record_event
    from craton_wf.engine.writes import batched_writes
    from craton_wf.services.events import list_events

    job_id = setup_job(sessions, root, ["noop"], hosts=1)
    with transaction(sessions) as session:
        before = len(list_events(session, job_id))
    try:
        with transaction(sessions) as session, batched_writes(session):
            record_event(session, job_id, "doomed")
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass
    with transaction(sessions) as session, batched_writes(session):
        for index in range(3):
            record_event(session, job_id, "kept", f"#{index}", note=index)
    with transaction(sessions) as session:
        events = list_events(session, job_id)[before:]
    assert [(e.kind, e.message, e.data) for e in events] == [
        ("kept", f"#{index}", {"note": index}) for index in range(3)
    ]


def test_rows_held_for_the_commit_are_dropped_by_a_rollback_of_the_same_session(sessions, root):
    from craton_wf.engine.events import record_event
    from craton_wf.engine.writes import batched_writes
    from craton_wf.services.events import list_events

    job_id = setup_job(sessions, root, ["noop"], hosts=1)
    with transaction(sessions) as session:
        before = len(list_events(session, job_id))
    with sessions() as session:
        session.begin()
        with pytest.raises(RuntimeError), batched_writes(session):
            record_event(session, job_id, "doomed")
            raise RuntimeError("rolled back")
        session.rollback()
        session.begin()
        with batched_writes(session):
            record_event(session, job_id, "kept")
        session.commit()
    with transaction(sessions) as session:
        assert [e.kind for e in list_events(session, job_id)[before:]] == ["kept"]


def test_log_lines_are_stored_with_their_transaction_or_not_at_all(sessions, root):
    from craton_wf.engine import claims, recording
    from craton_wf.engine.recording import LogBatch, LogRecord

    job_id = setup_job(sessions, root, ["noop"], hosts=1)
    with transaction(sessions) as session:
        claimed = claims.claim_next_run(session, "r1", 60)
    assert claimed is not None and claimed.job_id == job_id

    def batch(first: int, *texts: str) -> LogBatch:
        now = utcnow()
        return LogBatch(
            [LogRecord("stdout", now, text) for text in texts], first_seq=first, max_line_bytes=100
        )

    try:
        with transaction(sessions) as session:
            recording.append_logs(session, claimed.run_id, "r1", claimed.epoch, batch(1, "lost"))
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass
    with transaction(sessions) as session:
        appended = recording.append_logs(
            session, claimed.run_id, "r1", claimed.epoch, batch(1, "a", "b")
        )
        # A second write of the same transaction goes on from the first one's lines.
        recording.append_logs(session, claimed.run_id, "r1", claimed.epoch, batch(3, "c"))
    assert appended.next_seq == 3
    with transaction(sessions) as session:
        stored = session.execute(
            select(RunLog.seq, RunLog.line)
            .where(RunLog.run_id == claimed.run_id)
            .order_by(RunLog.seq)
        ).all()
        run = session.get(Run, claimed.run_id)
        assert run is not None and run.log_seq == 3
    assert [tuple(row) for row in stored] == [(1, "a"), (2, "b"), (3, "c")]


def test_set_columns_stores_one_update_for_many_rows(sessions, root):
    from sqlalchemy import event

    from craton_wf.db.bulk import set_columns

    job_id = setup_job(sessions, root, ["noop"], hosts=3)
    statements: list[str] = []
    with transaction(sessions) as session:
        hosts = list(session.execute(select(JobHost).where(JobHost.job_id == job_id)).scalars())
        engine = session.get_bind()

        def seen(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
            statements.append(statement)

        event.listen(engine, "before_cursor_execute", seen)
        try:
            set_columns(session, hosts, failed_step="probe")
            assert all(host.failed_step == "probe" for host in hosts)
            session.flush()  # nothing left for the session to write
        finally:
            event.remove(engine, "before_cursor_execute", seen)
    assert len([s for s in statements if s.lstrip().upper().startswith("UPDATE")]) == 1
    with transaction(sessions) as session:
        stored = session.execute(
            select(JobHost.failed_step).where(JobHost.job_id == job_id)
        ).scalars()
        assert list(stored) == ["probe"] * 3


def test_a_start_left_to_commit_lands_before_the_outcome_queued_behind_it(sessions, root):
    """The recorder keeps a run's writes in the order they were queued: "started",
    not waited for, then the outcome; a lost lease on the first refuses both."""
    from craton_wf.engine import claims
    from craton_wf.errors import LeaseLost
    from craton_wf.runner.recorder import Recorder
    from craton_wf.services.events import list_events

    job_id = setup_job(sessions, root, ["noop"], hosts=2, concurrency=2)
    with transaction(sessions) as session:
        first, second = claims.claim_runs(session, "runner-a", 30, 2)
    recorder = Recorder(sessions, threading.Event())
    started = recorder.submit(
        claims.mark_started, first.run_id, "runner-a", first.epoch, "container-1"
    )
    status = recorder.finish(first.run_id, "runner-a", first.epoch, exit_code=0)
    assert started.done() and started.exception() is None
    assert status.value == "SUCCEEDED"
    stale = recorder.submit(
        claims.mark_started, second.run_id, "runner-a", second.epoch + 1, "container-2"
    )
    with pytest.raises(LeaseLost):
        recorder.finish(second.run_id, "runner-a", second.epoch + 1, exit_code=0)
    assert isinstance(stale.exception(), LeaseLost)
    with transaction(sessions) as session:
        run = session.get(Run, first.run_id)
        assert run is not None and run.container_id == "container-1"
        assert run.started_at is not None and run.finished_at >= run.started_at
        assert session.get(Run, second.run_id).status == "STARTING"  # type: ignore[union-attr]
        kinds = [e.kind for e in list_events(session, job_id) if e.run_id == first.run_id]
    assert kinds[-2:] == ["run_started", "run_succeeded"]
