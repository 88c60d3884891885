"""What the json-file log driver wrote for a log message, and whether a log that
holds given messages can have lost lines before them (when it rotated as many
times as it keeps files)."""

from __future__ import annotations

import json

from craton_wf.executors.container_output import (
    json_entry_bytes_at_most,
    json_file_may_have_lost_lines,
)


def frame(text: str, stamp: str = "2026-12-05T00:11:46.123456700Z") -> tuple[str, bytes]:
    return "stdout", f"{stamp} {text}\n".encode()


def written(text: str, stamp: str) -> int:
    """The bytes the driver writes: its stamp without trailing zeros, and a newline."""
    entry = {"log": text + "\n", "stream": "stdout", "time": stamp}
    return len(json.dumps(entry, separators=(",", ":"))) + 1


def test_an_entry_is_counted_as_the_driver_writes_it():
    assert json_entry_bytes_at_most(frame("12345")) == written(
        "12345", "2026-12-05T00:11:46.1234567Z"
    )
    whole_second = frame("x", "2026-12-05T00:11:46.000000000Z")
    assert json_entry_bytes_at_most(whole_second) == written("x", "2026-12-05T00:11:46Z")


def test_escaped_characters_count_as_written():
    # < > & as \u003c..., a tab as \u0009, a quote and a backslash as two, é as itself,
    # U+2028 as \u2028, an invalid byte as \ufffd.
    line = 'a<b>&\t"\\ é \u2028'.encode() + b" \xff"
    got = json_entry_bytes_at_most(("stdout", b"2026-12-05T00:11:46.1Z " + line + b"\n"))
    assert got == written("", "2026-12-05T00:11:46.1Z") + len(line) + 3 * 5 + 5 + 1 + 1 + 3 + 5


def test_a_log_lost_nothing_until_it_rotated_as_often_as_it_keeps_files():
    one = json_entry_bytes_at_most(frame("7"))
    fits = 1024 // one  # messages a 1k file holds before it is full
    assert not json_file_may_have_lost_lines([frame("7")] * fits, "1k", 2)
    # One rotation with two files: the first file is still there, or was it? Cannot tell.
    assert json_file_may_have_lost_lines([frame("7")] * (fits + 2), "1k", 2)
    # Three files: one rotation kept everything.
    assert not json_file_may_have_lost_lines([frame("7")] * (fits + 2), "1k", 3)
    # A single file leaves no trace of its rotations.
    assert not json_file_may_have_lost_lines([frame("7")] * (10 * fits), "1k", 1)
