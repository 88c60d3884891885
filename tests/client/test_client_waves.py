"""The CLI's side of rollout waves: ``--waves`` as the API takes it, and the progress line."""

from __future__ import annotations

import pytest

from cratonclient.shell._common import CommandError
from cratonclient.shell._jobs import parse_waves
from cratonclient.shell._watch import describe_job


def test_waves_read_counts_as_numbers_and_the_rest_as_given():
    assert parse_waves("1,5,25%,100%") == [1, 5, "25%", "100%"]
    assert parse_waves(" 2 , rest ") == [2, "rest"]
    assert parse_waves("1,0") == [1, 0]  # the server refuses it, naming the entry


def test_an_empty_entry_is_an_error():
    with pytest.raises(CommandError, match="an empty entry"):
        parse_waves("1,,25%")


JOB = {"id": 7, "summary": {"hosts": {"SUCCEEDED": 1, "PENDING": 2}}, "wave_sizes": [1, 2]}


@pytest.mark.parametrize(
    ("job", "line"),
    [
        (
            {"status": "RUNNING", "current_wave": 1},
            "job 7 RUNNING, wave 1/2: hosts 2 PENDING, 1 SUCCEEDED",
        ),
        (
            {"status": "PAUSED", "current_wave": 1},
            "job 7 PAUSED: waiting for job-resume (wave 1/2 done): hosts 2 PENDING, 1 SUCCEEDED",
        ),
        (
            {"status": "RUNNING", "current_wave": 1, "next_wave_at": "2026-12-05T05:10:03Z"},
            "job 7 RUNNING, wave 1/2 done, the next starts at 05:10:03 UTC: "
            "hosts 2 PENDING, 1 SUCCEEDED",
        ),
        (
            {"status": "SUCCEEDED", "current_wave": 2},
            "job 7 SUCCEEDED: hosts 2 PENDING, 1 SUCCEEDED",
        ),
        ({"status": "RUNNING", "wave_sizes": None}, "job 7 RUNNING: hosts 2 PENDING, 1 SUCCEEDED"),
    ],
)
def test_the_progress_line_says_where_the_rollout_stands(job, line):  # type: ignore[no-untyped-def]
    assert describe_job({**JOB, **job}) == line
