"""A batch's log lines, held and then inserted in blocks: few statements, no row objects.

The lines an engine batch stores (every run's appends of a recorder batch)
wait in the session as segments: consecutive lines of one run and stream,
numbered from ``first_seq``, stamped once (:class:`LineSegment`). At the end
of the batch (:mod:`craton_wf.engine.writes`) they go in, in the order they
were added, so a run's lines get increasing ids, which is the order the log
is read in:

- PostgreSQL: one ``INSERT … SELECT`` from ``unnest`` of arrays: the lines
  with the segment of each, and the segments' run, job, first number, stamp
  and stream. The driver sends each array as one parameter and the server
  makes the rows, so a million lines cost the runner the making of a few
  lists, not a row each (``COPY`` writes a row at a time from Python);
- SQLite: per segment, an ``INSERT … SELECT`` from ``json_each`` of its
  lines as one JSON array (``json.dumps`` and SQLite's parser, both in C),
  all segments in one ``executemany``. A segment whose text holds a NUL goes
  in as rows of its own, since SQLite's JSON strings end at one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import repeat
from typing import Any

from sqlalchemy import bindparam, insert, text
from sqlalchemy.orm import Session

from craton_wf.db.models import RunLog, UTCDateTime

_KEY = "pending_log_lines"

_POSTGRES_INSERT = text(
    """
    INSERT INTO run_logs (run_id, job_id, seq, ts, stream, line)
    SELECT s.run_id, s.job_id, s.first_seq + (l.ord - s.start - 1), s.ts, s.stream, l.line
    FROM unnest(CAST(:segment_of_line AS bigint[]), CAST(:lines AS text[]))
         WITH ORDINALITY AS l(segment, line, ord)
    JOIN unnest(
        CAST(:run_ids AS bigint[]), CAST(:job_ids AS bigint[]), CAST(:first_seqs AS bigint[]),
        CAST(:stamps AS timestamptz[]), CAST(:streams AS text[]), CAST(:starts AS bigint[])
    ) WITH ORDINALITY AS s(run_id, job_id, first_seq, ts, stream, start, segment)
      ON s.segment = l.segment
    ORDER BY l.ord
    """
)
_SQLITE_INSERT = text(
    """
    INSERT INTO run_logs (run_id, job_id, seq, ts, stream, line)
    SELECT :run_id, :job_id, :first_seq + key, :ts, :stream, value
    FROM json_each(:lines) ORDER BY key
    """
).bindparams(bindparam("ts", type_=UTCDateTime()))


@dataclass(frozen=True)
class LineSegment:
    """Lines of one run and stream, stored as ``first_seq``, ``first_seq + 1``…"""

    run_id: int
    job_id: int
    first_seq: int
    ts: datetime
    stream: str
    lines: list[str]


def insert_lines_later(session: Session, segment: LineSegment) -> None:
    """Hold ``segment``'s lines until the batch's end, after those held before."""
    if segment.lines:
        session.info.setdefault(_KEY, []).append(segment)


def insert_pending_lines(session: Session) -> None:
    """Insert the lines waiting in ``session``, in the order they were added."""
    segments: list[LineSegment] = session.info.pop(_KEY, None) or []
    if not segments:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_POSTGRES_INSERT, _arrays(segments))
    else:
        _insert_sqlite(session, segments)


def forget_pending_lines(session: Session) -> None:
    """Drop the lines waiting in ``session`` (its batch failed)."""
    session.info.pop(_KEY, None)


def _arrays(segments: list[LineSegment]) -> dict[str, list[Any]]:
    lines: list[str] = []
    segment_of_line: list[int] = []
    starts: list[int] = []
    for number, segment in enumerate(segments, start=1):
        starts.append(len(lines))
        lines.extend(segment.lines)
        segment_of_line.extend(repeat(number, len(segment.lines)))
    return {
        "segment_of_line": segment_of_line,
        "lines": lines,
        "run_ids": [s.run_id for s in segments],
        "job_ids": [s.job_id for s in segments],
        "first_seqs": [s.first_seq for s in segments],
        "stamps": [_utc(s.ts) for s in segments],
        "streams": [s.stream for s in segments],
        "starts": starts,
    }


def _insert_sqlite(session: Session, segments: list[LineSegment]) -> None:
    batch: list[dict[str, Any]] = []
    for segment in segments:
        if "\x00" in "\n".join(segment.lines):
            _flush_sqlite(session, batch)
            batch = []
            session.execute(insert(RunLog), _rows(segment))
            continue
        batch.append(
            {
                "run_id": segment.run_id,
                "job_id": segment.job_id,
                "first_seq": segment.first_seq,
                "ts": segment.ts,
                "stream": segment.stream,
                "lines": json.dumps(segment.lines, ensure_ascii=False),
            }
        )
    _flush_sqlite(session, batch)


def _flush_sqlite(session: Session, batch: list[dict[str, Any]]) -> None:
    if batch:
        session.execute(_SQLITE_INSERT, batch)


def _rows(segment: LineSegment) -> list[dict[str, Any]]:
    return [
        {
            "run_id": segment.run_id,
            "job_id": segment.job_id,
            "seq": segment.first_seq + offset,
            "ts": segment.ts,
            "stream": segment.stream,
            "line": line,
        }
        for offset, line in enumerate(segment.lines)
    ]


def _utc(stamp: datetime) -> datetime:
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)
