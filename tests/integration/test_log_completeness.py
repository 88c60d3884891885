"""A run's stored log is what its container printed, whatever the engine's log
rotation and the output's speed: on the real Docker engine, through real
runner processes.

Each test prints numbered lines as fast as busybox can and checks every
number once, in order; where lines are really gone (rotated away while no
runner read them) one gap line stands exactly there, and the run and its job
say the log is incomplete. Each prints its figures (lines printed, stored,
missing, duplicated); ``pytest -s`` shows them.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import docker
import pytest
from sqlalchemy import select

from craton_wf.db.engine import transaction
from craton_wf.db.models import JobEvent, RunLog
from craton_wf.engine import recording
from craton_wf.executors.docker import DockerExecutor
from craton_wf.runner.worker import Runner
from tests.integration import test_durability as durability
from tests.integration.test_durability import make_job, stored_lines, the_run, wait_job

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]

DEFAULT_CAP = 64 * 1024 * 1024
# A runner storing lines as fast as it can renews its leases late: longer
# leases than test_durability's keep a busy runner from taking its own run over.
BUSY = {"CRATON_WF_LEASE_SECONDS": "20", "CRATON_WF_HEARTBEAT_SECONDS": "1"}
ROTATION = {"CRATON_WF_CONTAINER_LOG_MAX_SIZE": "1m", "CRATON_WF_CONTAINER_LOG_MAX_FILES": "2"}


@pytest.fixture
def runners(database_url, tmp_path, busybox_image):  # type: ignore[no-untyped-def]
    started = durability.Runners(database_url, tmp_path)
    yield started
    started.stop_all()


@pytest.fixture
def project(sessions, root):  # type: ignore[no-untyped-def]
    yield root.project_id
    for container in docker.from_env().containers.list(
        ignore_removed=True, all=True, filters={"label": f"craton.project={root.project_id}"}
    ):
        container.remove(force=True)


@dataclass
class Figures:
    printed: int
    stored: int
    missing: int
    duplicated: int

    def show(self, name: str) -> None:
        print(
            f"\n[log figures] {name}: printed={self.printed} stored={self.stored} "
            f"missing={self.missing} duplicated={self.duplicated}"
        )


def numbers_of(logs: list[RunLog]) -> list[int]:
    return [int(log.line.split()[0]) for log in logs if log.stream == "stdout"]


def figures(numbers: list[int], printed: int) -> Figures:
    counts = Counter(numbers)
    return Figures(
        printed=printed,
        stored=len(numbers),
        missing=printed - len(counts),
        duplicated=sum(n - 1 for n in counts.values() if n > 1),
    )


def gap_lines(logs: list[RunLog]) -> list[int]:
    return [i for i, log in enumerate(logs) if log.stream == "system" and "log gap" in log.line]


def event_kinds(sessions, job_id: int) -> list[str]:  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        return [
            e.kind
            for e in session.execute(select(JobEvent).where(JobEvent.job_id == job_id)).scalars()
        ]


def numbered(lines: int, pad: int) -> str:
    """A script printing ``lines`` numbered lines, each ``pad`` spaces long after its number."""
    if not pad:
        return f"seq 1 {lines}; echo done >&2"
    # No single quote: make_job puts the script in single quotes.
    return (
        f'awk "BEGIN {{ pad = sprintf(\\"%{pad}s\\", \\"\\"); '
        f'for (i = 1; i <= {lines}; i++) print i pad }}"; echo done >&2'
    )


@pytest.mark.parametrize(
    ("lines", "pad"),
    [(700_000, 0), (200_000, 92)],  # 5 MB of short lines, 20 MB of 100-byte ones
    ids=["5MB", "20MB"],
)
def test_fast_output_with_1MiB_rotation_is_stored_whole(sessions, project, runners, lines, pad):
    """5 or 20 MB printed as fast as busybox can; the engine keeps 2 MiB of it."""
    job_id = make_job(sessions, project, script=numbered(lines, pad))
    runners.start("one", **BUSY, **ROTATION)
    job = wait_job(sessions, job_id, timeout=240)
    run = the_run(sessions, job_id)
    assert job.status == "SUCCEEDED", (run.status, run.error, runners.log("one"))
    logs = stored_lines(sessions, run.id)
    numbers = numbers_of(logs)
    figures(numbers, lines).show(f"{lines} lines, 1 MiB rotation")
    assert numbers == list(range(1, lines + 1))
    assert [log.line for log in logs if log.stream == "stderr"] == ["done"]
    assert not gap_lines(logs)
    assert not run.log_gap and not run.log_capped


# The second phase starts once the second runner took the run over (after the
# first one's lease of 8 seconds expired).
PHASED = "seq 1 300000; sleep 14; seq 300001 1000000; echo done >&2"
TAKEOVER = {"CRATON_WF_LEASE_SECONDS": "8", "CRATON_WF_HEARTBEAT_SECONDS": "1"}


def test_runner_killed_during_fast_output_leaves_one_gap_where_lines_were_lost(
    sessions, project, runners
):
    """The first runner dies after its first batch; the container, no longer held
    back, prints the rest of its first 2 MB into a 1 MiB rotation at once, and the
    runner that takes over (while it sleeps) must say that those are gone, store
    nothing twice, and then read its last 5 MB whole."""
    job_id = make_job(sessions, project, script=PHASED)
    first = runners.start("first", CRATON_WF_FAULT_POINT="mid_logs", **TAKEOVER, **ROTATION)
    assert first.wait(timeout=60) == -signal.SIGKILL, runners.log("first")
    runners.start("second", **TAKEOVER, **ROTATION)
    job = wait_job(sessions, job_id, timeout=240)
    run = the_run(sessions, job_id)
    assert job.status == "SUCCEEDED", (run.status, run.error, runners.log("second"))
    logs = stored_lines(sessions, run.id)
    numbers = numbers_of(logs)
    figures(numbers, 1_000_000).show("killed runner, 1 MiB rotation")
    assert [log.seq for log in logs] == list(range(1, len(logs) + 1))
    gaps = gap_lines(logs)
    assert len(gaps) == 1, [(i, log.line) for i, log in enumerate(logs) if log.stream == "system"]
    before = numbers_of(logs[: gaps[0]])
    after = numbers_of(logs[gaps[0] :])
    # Stored before the kill: a whole start. After the gap: whole to the end.
    assert before == list(range(1, len(before) + 1)) and before
    assert after == list(range(after[0], 1_000_001))
    assert after[0] > before[-1] + 1  # lines really were lost there, and only there
    assert after[0] <= 300_000  # the end of the first phase was still in the engine's log
    assert [log.line for log in logs if log.stream == "stderr"] == ["done"]
    assert run.log_gap and not run.log_capped
    assert "run_log_gap" in event_kinds(sessions, job_id)


LINE_PAD = 1000
BIG_LINES = 300_000  # of 1,000-odd bytes: 300 MB


def test_300MB_stops_at_the_default_cap_with_the_cap_line_last(sessions, project, runners):
    job_id = make_job(sessions, project, script=numbered(BIG_LINES, LINE_PAD))
    runners.start("one", **BUSY)
    job = wait_job(sessions, job_id, timeout=240)
    run = the_run(sessions, job_id)
    assert job.status == "SUCCEEDED", (run.status, run.error, runners.log("one"))
    logs = stored_lines(sessions, run.id)
    numbers = numbers_of(logs)
    figures(numbers, BIG_LINES).show("300 MB, default cap (stored up to the cap)")
    assert numbers == list(range(1, len(numbers) + 1))  # all of it up to the cap
    assert logs[-1].stream == "system" and logs[-1].line.startswith("[craton] log capped")
    assert run.log_bytes == DEFAULT_CAP
    stored = sum(len(log.line.encode()) for log in logs[:-1])
    assert DEFAULT_CAP - (LINE_PAD + 10) < stored <= DEFAULT_CAP
    assert run.log_capped and not run.log_gap
    assert "run_log_capped" in event_kinds(sessions, job_id)


SLOW_WRITE_SECONDS = 3.0
SLOW_WRITES = 6
SLOWED_LINES = 500_000


@pytest.fixture
def slow_log_writes(monkeypatch):  # type: ignore[no-untyped-def]
    """The first batches of log lines wait before they are written, as on a
    database under heavy load: the runner's queue fills, its reader is held back."""
    append_logs = recording.append_logs
    slowed = iter(range(SLOW_WRITES))

    def slowly(*args, **kwargs):  # type: ignore[no-untyped-def]
        if next(slowed, None) is not None:
            time.sleep(SLOW_WRITE_SECONDS)
        return append_logs(*args, **kwargs)

    monkeypatch.setattr(recording, "append_logs", slowly)


@pytest.mark.timeout(120)
def test_fast_output_read_by_a_runner_held_back_by_slow_writes_is_stored_whole(
    settings, sessions, project, busybox_image, slow_log_writes
):
    """500,000 lines (3.4 MB) printed at once while the first log writes take 3 s
    each: the attach must still be drained as fast as the container prints (it
    is not held back by the database), and the log must end with the last line,
    not silently short of it."""
    docker_settings = settings.model_copy(
        update={
            "executor": "docker",
            "lease_seconds": 60,
            "heartbeat_seconds": 1,
            "remove_containers": False,
        }
    )
    job_id = make_job(sessions, project, script=numbered(SLOWED_LINES, 0))
    worker = Runner(docker_settings, sessions, DockerExecutor.from_settings(docker_settings))
    worker.start()
    try:
        job = wait_job(sessions, job_id, timeout=100)
    finally:
        worker.stop(timeout=20)
    run = the_run(sessions, job_id)
    logs = stored_lines(sessions, run.id)
    numbers = numbers_of(logs)
    figures(numbers, SLOWED_LINES).show("held-back reader, 3 s per write")
    assert job.status == "SUCCEEDED", (run.status, run.error)
    state = docker.from_env().api.inspect_container(run.container_id)["State"]
    ran = datetime.fromisoformat(state["FinishedAt"][:26]) - datetime.fromisoformat(
        state["StartedAt"][:26]
    )
    print(f"[log figures] the container ran {ran.total_seconds():.1f}s")
    assert ran.total_seconds() < SLOW_WRITE_SECONDS, "held back by the database's writes"
    assert [log.seq for log in logs] == list(range(1, len(logs) + 1))
    if gap_lines(logs):  # lost for good: said so, where, and nothing stored twice
        assert run.log_gap and len(numbers) == len(set(numbers)) and numbers == sorted(numbers)
    else:
        assert numbers == list(range(1, SLOWED_LINES + 1))
        assert [log.line for log in logs if log.stream == "stderr"] == ["done"]
