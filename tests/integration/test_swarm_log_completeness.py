"""A swarm run's stored log is what its task's container printed, with the
engine's log rotated at 1 MiB: on a real single-node swarm, through a real
runner process.

The task prints numbered lines as fast as busybox can. Its container runs on
the runner's own engine, so the executor attaches to it and holds it back as
the docker executor does: every number once, in order. Should the container
have printed more than the rotation keeps before the attach was in place, the
lines really are gone: then one gap line stands exactly where (before the
first line the engine still had) and nothing is stored twice. Each test
prints its figures (lines printed, stored, missing, duplicated); ``pytest -s``
shows them.
"""

from __future__ import annotations

import pytest

from tests.integration import test_swarm
from tests.integration.test_durability import stored_lines, the_run, wait_job
from tests.integration.test_log_completeness import (
    BUSY,
    ROTATION,
    figures,
    gap_lines,
    numbered,
    numbers_of,
)
from tests.integration.test_swarm import make_job, services_of

# test_swarm's fixtures, for this module's tests too
swarm = test_swarm.swarm
shipped_image = test_swarm.shipped_image
swarm_runners = test_swarm.swarm_runners
project = test_swarm.project

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]


def show_how_it_was_read(runner_log: str) -> None:
    """The executor's account of how it found the task's container (``pytest -s``)."""
    for line in runner_log.splitlines():
        if "swarm_task_output" in line:
            print(f"[swarm read] {line.split('swarm_task_output', 1)[1].strip()}")


def assert_whole_or_one_gap_where_lost(logs, printed: int) -> None:  # type: ignore[no-untyped-def]
    """Every number once, in order; or one gap line, with the numbers before it
    a whole start and those after it whole to the end, none twice.

    Where lines really were lost, numbers are missing at the gap. A gap line
    at the very start may also be followed by number 1: when swarm started
    the container before the attach was in place, the engine's log, rotated
    as many times as it keeps files, cannot tell whether it still has the
    start; the line then says lines *may* be missing.
    """
    numbers = numbers_of(logs)
    gaps = gap_lines(logs)
    if not gaps:
        assert numbers == list(range(1, printed + 1))
        return
    assert len(gaps) == 1, [log.line for log in logs if log.stream == "system"]
    before, after = numbers_of(logs[: gaps[0]]), numbers_of(logs[gaps[0] :])
    assert before == list(range(1, len(before) + 1))
    assert after and after == list(range(after[0], printed + 1))
    if "may be missing" in logs[gaps[0]].line:
        assert gaps[0] == 0 and not before  # only at the start
        print(f"\n[start gap] lines missing: {after[0] - 1}")
    else:
        assert after[0] > len(before) + 1  # lines really were lost there


def test_fast_output_with_1MiB_rotation_is_stored_whole(
    sessions, project, swarm_runners, shipped_image, docker_client
):  # type: ignore[no-untyped-def]
    """5 MB printed as fast as busybox can; the engine keeps 2 MiB of it."""
    lines = 700_000
    job_id = make_job(sessions, project, shipped_image, numbered(lines, 0))
    swarm_runners.start("one", CRATON_WF_REMOVE_CONTAINERS="false", **BUSY, **ROTATION)
    job = wait_job(sessions, job_id, timeout=240)
    run = the_run(sessions, job_id)
    assert job.status == "SUCCEEDED", (run.status, run.error, swarm_runners.log("one"))
    (service,) = services_of(docker_client, run)
    assert service.attrs["Spec"]["TaskTemplate"]["LogDriver"] == {
        "Name": "json-file",
        "Options": {"max-size": "1m", "max-file": "2"},
    }
    logs = stored_lines(sessions, run.id)
    figures(numbers_of(logs), lines).show(f"swarm, {lines} lines, 1 MiB rotation")
    show_how_it_was_read(swarm_runners.log("one"))
    assert [log.seq for log in logs] == list(range(1, len(logs) + 1))
    assert_whole_or_one_gap_where_lost(logs, lines)
    assert [log.line for log in logs if log.stream == "stderr"] == ["done"]
    assert bool(gap_lines(logs)) == run.log_gap
    assert not run.log_capped


def test_a_slow_start_then_fast_output_is_stored_whole(
    sessions, project, swarm_runners, shipped_image
):  # type: ignore[no-untyped-def]
    """The attach is in place long before the output comes: nothing may be missing."""
    lines = 700_000
    script = f"sleep 2; seq 1 {lines}; echo done >&2"
    job_id = make_job(sessions, project, shipped_image, script)
    swarm_runners.start("one", **BUSY, **ROTATION)
    job = wait_job(sessions, job_id, timeout=240)
    run = the_run(sessions, job_id)
    assert job.status == "SUCCEEDED", (run.status, run.error, swarm_runners.log("one"))
    logs = stored_lines(sessions, run.id)
    numbers = numbers_of(logs)
    figures(numbers, lines).show(f"swarm, sleep 2 then {lines} lines, 1 MiB rotation")
    show_how_it_was_read(swarm_runners.log("one"))
    assert numbers == list(range(1, lines + 1))
    assert not gap_lines(logs) and not run.log_gap
