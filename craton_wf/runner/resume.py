"""Where a taken-over run's log resumes: no line lost, none stored twice, gaps shown.

The new owner asks the runtime for the lines stamped at or after the last
stored line (``since``). Lines stamped before ``since`` are stored; lines
stamped exactly ``since`` may be (several lines can share a microsecond), so
the stored ones (``boundary``) are skipped once each. If the runtime no longer
has the boundary lines, its log was cut (rotation, a lost log file): lines
between may be gone, and a ``system`` line says so instead of silence.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime

from craton_wf.executors.base import LogLine
from craton_wf.services.runs import LogRecord


def resume_lines(
    lines: Iterable[LogLine], since: datetime | None, boundary: Iterable[tuple[str, str]]
) -> Iterator[LogRecord]:
    if since is None:
        yield from (LogRecord(line.stream, line.ts, line.text) for line in lines)
        return
    pending = Counter(boundary)
    expect_boundary = bool(pending)
    checked = False
    for line in lines:
        if line.ts < since:
            continue
        key = (line.stream, line.text)
        if line.ts == since and pending[key] > 0:
            pending[key] -= 1
            checked = True
            continue
        if expect_boundary and not checked:
            checked = True
            yield LogRecord(
                "system",
                line.ts,
                f"[craton] log gap: the runtime no longer has the lines after "
                f"{since.isoformat()}; lines before {line.ts.isoformat()} may be missing",
            )
        yield LogRecord(line.stream, line.ts, line.text)
