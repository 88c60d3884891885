"""A Docker log read again after the last message seen: the rest once, or a gap line."""

from __future__ import annotations

from datetime import UTC, datetime

from craton_wf.executors.base import LogLine
from craton_wf.executors.container_output import LineAssembler, frames_after


def frame(second: float, text: str, stream: str = "stdout") -> tuple[str, bytes]:
    whole, fraction = divmod(int(second * 1_000_000), 1_000_000)
    stamp = f"2026-01-01T00:00:{whole:02d}.{fraction:06d}000Z"
    return stream, f"{stamp} {text}\n".encode()


def test_the_frames_after_the_last_one_seen_come_once():
    log = [frame(1, "a"), frame(2, "b"), frame(3, "c")]
    assert list(frames_after(iter(log), log[1])) == [log[2]]


def test_frames_of_the_other_stream_stamped_later_but_seen_before_are_not_repeated():
    log = [frame(1.5, "err", "stderr"), frame(1, "a"), frame(2, "b")]
    assert list(frames_after(iter(log), log[1])) == [log[2]]


def test_a_last_frame_rotated_away_leaves_a_gap_line_before_the_rest():
    last = frame(1, "a")
    log = [frame(5, "x"), frame(6, "y")]
    got = list(frames_after(iter(log), last))
    assert isinstance(got[0], LogLine) and got[0].stream == "system"
    assert got[0].text.startswith("[craton] log gap")
    assert got[1:] == log


def test_nothing_new_and_the_last_frame_gone_is_no_gap_yet():
    assert list(frames_after(iter([]), frame(1, "a"))) == []


def test_an_attach_chunk_splits_into_lines_stamped_as_read():
    assembler = LineAssembler()
    stamp = datetime.now(UTC)
    lines = list(assembler.feed("stdout", b"1\n2\n3", ts=stamp, live=True))
    assert [(line.text, line.live, line.ts) for line in lines] == [
        ("1", True, stamp),
        ("2", True, stamp),
    ]
    assert [line.text for line in assembler.flush()] == ["3"]
