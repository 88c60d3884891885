"""Lines stored in blocks are, line for line, what storing each line alone gives."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from craton_wf.domain.loglines import (
    cut_lines,
    lines_within,
    published_outputs,
    redacted_lines,
    stored_line,
    text_bytes,
)
from craton_wf.domain.redaction import redaction_needles

SECRETS = ("hunter22", "multi\nline-secret", "abc")  # "abc": too short to be looked for
TOKEN = "cwf_" + "A" * 43
T0 = datetime(2026, 1, 1, tzinfo=UTC)

CASES = [
    [str(n) for n in range(1, 1001)],
    ["plain", "the password is hunter22!", "", "hunter22hunter22", "line-secret and multi"],
    [f"token {TOKEN} here", "cwf_short", "nothing", "x" * 40_000],
    ["é" * 5000, "ascii", "日本語" * 3000, "\r", "tab\there"],
    ["a line\nholding a newline hunter22", "next"],
    [""],
]


@pytest.mark.parametrize("lines", CASES)
def test_block_is_stored_as_each_line_alone(lines: list[str]) -> None:
    max_line_bytes = 16 * 1024
    needles = redaction_needles(SECRETS)
    stored = cut_lines(redacted_lines(lines, needles), max_line_bytes)
    assert stored == [stored_line(line, SECRETS, max_line_bytes) for line in lines]
    assert text_bytes(stored) == sum(len(line.encode()) for line in stored)


def test_nothing_to_do_keeps_the_block_as_it_is() -> None:
    lines = [str(n) for n in range(100)]
    assert redacted_lines(lines, redaction_needles(SECRETS)) is lines
    assert cut_lines(lines, 256) is lines


def test_lines_within_room() -> None:
    lines = ["aaaa", "é", "bb"]  # 4, 2 and 2 bytes
    assert [lines_within(lines, room) for room in (0, 3, 4, 5, 6, 7, 8, 100)] == [
        0,
        0,
        1,
        1,
        2,
        2,
        3,
        3,
    ]


def test_outputs_published_by_a_block() -> None:
    lines = [
        "1",
        '::craton-output:: {"a": 1, "b": 2}',
        "::craton-output:: not json",
        '  ::craton-output:: {"a": 3}',
    ]
    assert published_outputs(lines) == {"a": 3, "b": 2}
    assert published_outputs(["1", "2"]) == {}
