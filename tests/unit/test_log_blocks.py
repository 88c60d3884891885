"""Lines stored in blocks are, line for line, what storing each line alone gives."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from craton_wf.domain.loglines import (
    LineBlock,
    cut_lines,
    lines_within,
    published_outputs,
    redacted_lines,
    stored_line,
    text_bytes,
)
from craton_wf.domain.redaction import redaction_needles
from craton_wf.executors.container_output import LineAssembler

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


def test_an_attachs_chunks_assemble_into_the_lines_printed() -> None:
    """Chunks cut anywhere (inside a multi-byte character, an invalid byte, a
    long line) give, block by block, the lines the output holds, each stream
    apart, as splitting the whole output would."""
    printed = {
        "stdout": "".join(f"{n} é日本\n" for n in range(3000)).encode() + b"bad \xff\xfe end\n",
        "stderr": b"x" * 5000 + b"\n" + b"warn\n\n" + b"unterminated",
    }
    assembler = LineAssembler(max_line_bytes=4096)
    blocks: list[LineBlock] = []
    cuts = [1, 7, 100, 4095, 3, 65536]
    for stream, data in printed.items():
        offset = 0
        for size in itertools.cycle(cuts):
            if offset >= len(data):
                break
            blocks += assembler.feed_blocks(stream, data[offset : offset + size], T0, live=True)
            offset += size
    blocks += assembler.flush_blocks()
    got = {
        stream: [line for block in blocks if block.stream == stream for line in block.lines]
        for stream in printed
    }
    assert got["stdout"] == printed["stdout"].decode("utf-8", "replace").split("\n")[:-1]
    *cut, warn, empty, unterminated = got["stderr"]  # a line past 4096 bytes is cut
    assert "".join(cut) == "x" * 5000 and len(cut) == 2 and len(cut[0]) >= 4096
    assert [warn, empty, unterminated] == ["warn", "", "unterminated"]
    assert all(block.ts == T0 and block.live for block in blocks)
    assert len(blocks) < len(got["stdout"]) / 10  # lines come many to a block
