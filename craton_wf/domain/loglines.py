"""A container's output in blocks of lines, and what storing a block does to them.

A container that prints as fast as it can hands its reader thousands of lines
per read. Made into one Python object per line, and redacted, measured and
inserted one by one, they cost the runner far more than the database's
insert does, and the runner's one interpreter lock is shared by every thread
it has. So lines go from the executor to the database in blocks: consecutive
lines of one stream, read together and stamped once (:class:`LineBlock`).

What happens to every stored line (secrets redacted, a long line cut, the
run's cap, outputs published by a marker line) is done here to a whole block
with the string methods of its joined text, which run in C. Single lines are
looked at only when the block's text holds something to act on: a secret or
token, a line that may be too long, the cap, the output marker. The result is
line for line what the same steps give each line on its own
(:func:`stored_line`): redaction needles hold no newline, so none matches
across two lines of the joined text.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from craton_wf.domain.outputs import OUTPUT_MARKER, parse_output_line
from craton_wf.domain.redaction import TOKEN_PREFIX, redact

TRUNCATED = " [line truncated]"
UTF8_MAX_BYTES = 4  # the most bytes one character takes


@dataclass(frozen=True)
class LineBlock:
    """Consecutive lines of one stream, read together and stamped with one time.

    ``lines`` are without their newlines. ``live``: read straight from the
    container's output, not replayed from the runtime's stored log
    (:attr:`craton_wf.executors.base.LogLine.live`).
    """

    stream: str  # "stdout" | "stderr" | "system"
    ts: datetime
    lines: list[str]
    live: bool = False


def stored_line(text: str, redact_values: Iterable[str], max_line_bytes: int) -> str:
    """A line as it is stored: secrets and tokens redacted, cut to ``max_line_bytes``."""
    return cut_line(redact(text, redact_values), max_line_bytes)


def cut_line(line: str, max_line_bytes: int) -> str:
    """``line`` cut to ``max_line_bytes`` of UTF-8 (whole characters), marked as cut."""
    if len(line) * UTF8_MAX_BYTES <= max_line_bytes:
        return line
    encoded = line.encode()
    if len(encoded) <= max_line_bytes:
        return line
    return encoded[:max_line_bytes].decode(errors="ignore") + TRUNCATED


def redacted_lines(lines: list[str], needles: tuple[str, ...]) -> list[str]:
    """``lines`` with the secret values (``needles``, :func:`redaction_needles`) and
    API tokens redacted: the same list when there is nothing to redact."""
    joined = "\n".join(lines)
    if TOKEN_PREFIX not in joined and not any(needle in joined for needle in needles):
        return lines
    if joined.count("\n") != len(lines) - 1:  # a line holding a newline: line by line
        return [redact(line, needles) for line in lines]
    return redact(joined, needles).split("\n")


def cut_lines(lines: list[str], max_line_bytes: int) -> list[str]:
    """``lines`` each cut to ``max_line_bytes``: the same list when none is too long."""
    if max(map(len, lines), default=0) * UTF8_MAX_BYTES <= max_line_bytes:
        return lines
    return [cut_line(line, max_line_bytes) for line in lines]


def text_bytes(lines: list[str]) -> int:
    """The UTF-8 size of ``lines``, newlines not counted."""
    if not lines:
        return 0
    return len("\n".join(lines).encode()) - (len(lines) - 1)


def lines_within(lines: list[str], room: int) -> int:
    """How many of ``lines``, from the first, fit in ``room`` bytes (newlines not counted)."""
    used = 0
    for count, line in enumerate(lines):
        used += len(line.encode())
        if used > room:
            return count
    return len(lines)


def published_outputs(lines: list[str]) -> dict[str, Any]:
    """The outputs ``lines`` of stdout publish (``::craton-output::`` lines), later
    keys over earlier ones."""
    outputs: dict[str, Any] = {}
    if OUTPUT_MARKER not in "\n".join(lines):
        return outputs
    for line in lines:
        if OUTPUT_MARKER in line:
            published = parse_output_line(line)
            if published:
                outputs.update(published)
    return outputs
