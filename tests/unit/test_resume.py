"""Where an adopted run's log resumes: skips what is stored, marks what is gone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from craton_wf.executors.base import LogLine
from craton_wf.runner.resume import resume_lines

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float, text: str, stream: str = "stdout") -> LogLine:
    return LogLine(stream, T0 + timedelta(seconds=seconds), text)


def texts(records) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(r.stream, r.text) for r in records]


def test_without_resume_point_everything_passes():
    assert texts(resume_lines([at(0, "a"), at(1, "b")], None, [])) == [
        ("stdout", "a"),
        ("stdout", "b"),
    ]


def test_stored_lines_sharing_the_last_stamp_are_skipped_once_each():
    since = T0 + timedelta(seconds=1)
    runtime = [at(0, "old"), at(1, "x"), at(1, "x"), at(1, "y"), at(2, "new")]
    # one "x" and the "y" were stored; the second "x" was not
    got = texts(resume_lines(runtime, since, [("stdout", "x"), ("stdout", "y")]))
    assert got == [("stdout", "x"), ("stdout", "new")]


def test_missing_boundary_lines_leave_a_visible_gap_marker():
    since = T0 + timedelta(seconds=1)
    runtime = [at(5, "after rotation"), at(6, "more")]
    got = list(resume_lines(runtime, since, [("stdout", "last stored")]))
    assert got[0].stream == "system" and "log gap" in got[0].text
    assert texts(got[1:]) == [("stdout", "after rotation"), ("stdout", "more")]


def test_no_marker_when_the_boundary_is_there():
    since = T0 + timedelta(seconds=1)
    got = texts(resume_lines([at(1, "b"), at(2, "c")], since, [("stdout", "b")]))
    assert got == [("stdout", "c")]
