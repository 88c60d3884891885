"""Where an adopted run's log resumes: skips what is stored, marks what is gone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from craton_wf.engine.claims import StoredStream
from craton_wf.executors.base import LogLine
from craton_wf.runner.resume import resume_lines

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float, text: str, stream: str = "stdout", live: bool = False) -> LogLine:
    return LogLine(stream, T0 + timedelta(seconds=seconds), text, live=live)


def numbered(first: int, last: int, stream: str = "stdout", live: bool = False) -> list[LogLine]:
    return [at(i, f"n {i}", stream, live) for i in range(first, last + 1)]


def stored(first: int, last: int) -> StoredStream:
    texts = [f"n {i}" for i in range(first, last + 1)]
    return StoredStream(len(texts), tuple(texts[:3]), tuple(texts[-3:]))


def texts(records) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(r.stream, r.text) for r in records]


def numbers(records) -> list[int]:  # type: ignore[no-untyped-def]
    return [int(r.text.split()[1]) for r in records if r.stream == "stdout"]


def gaps(records) -> list[int]:  # type: ignore[no-untyped-def]
    return [i for i, r in enumerate(records) if r.stream == "system" and "log gap" in r.text]


def test_without_stored_lines_everything_passes():
    assert texts(resume_lines([at(0, "a"), at(1, "b")])) == [("stdout", "a"), ("stdout", "b")]


def test_the_whole_log_replayed_skips_exactly_the_stored_lines():
    got = list(resume_lines(numbered(1, 100), {"stdout": stored(1, 40)}))
    assert numbers(got) == list(range(41, 101)) and not gaps(got)


def test_repeated_lines_are_counted_not_matched_by_text():
    replay = [at(i, "same") for i in range(10)]
    got = list(resume_lines(replay, {"stdout": StoredStream(4, ("same",) * 3, ("same",) * 3)}))
    assert len(got) == 6 and not gaps(got)


def test_start_rotated_away_resumes_after_the_stored_tail_without_a_gap():
    got = list(resume_lines(numbered(30, 100), {"stdout": stored(1, 40)}))
    assert numbers(got) == list(range(41, 101)) and not gaps(got)


def test_stored_tail_rotated_away_leaves_one_gap_line_before_the_first_line_left():
    got = list(resume_lines(numbered(500, 600), {"stdout": stored(1, 40)}, last_stored_ts=T0))
    assert gaps(got) == [0]
    assert numbers(got) == list(range(500, 601))


def test_the_other_stream_passes_through_in_order():
    replay = [*numbered(1, 5), at(5.5, "oops", "stderr"), *numbered(6, 8)]
    got = list(resume_lines(replay, {"stdout": stored(1, 6)}))
    assert texts(got) == [("stderr", "oops"), ("stdout", "n 7"), ("stdout", "n 8")]


def test_live_lines_end_the_search_and_pass():
    # The tail is gone and the replay ends before as many lines as were stored.
    replay = [*numbered(90, 95), *numbered(96, 99, live=True)]
    got = list(resume_lines(replay, {"stdout": stored(1, 40)}))
    assert gaps(got) == [0] and numbers(got) == list(range(90, 100))


def test_live_lines_after_a_full_replay_all_pass():
    replay = [*numbered(1, 40), *numbered(41, 45, live=True)]
    got = list(resume_lines(replay, {"stdout": stored(1, 40)}))
    assert numbers(got) == list(range(41, 46)) and not gaps(got)


def test_lines_are_compared_as_stored():
    replay = [at(i, f"secret-{i}") for i in range(1, 6)]
    kept = StoredStream(2, ("x-1", "x-2"), ("x-1", "x-2"))
    got = list(resume_lines(replay, {"stdout": kept}, lambda t: t.replace("secret", "x")))
    assert [r.text for r in got] == ["secret-3", "secret-4", "secret-5"]
