"""Where a taken-over run's log resumes: no line lost, none stored twice, gaps shown.

The runner that takes a run over reads everything the runtime still has of
the container (``Executor.logs`` without ``since``) and must find where the
lines its predecessor stored end. Stamps cannot say: the Docker executor
stamps the lines it reads from an attach when it reads them, not when the
engine logged them. Counts can: per stream (stdout, stderr), the attempt
stored ``count`` lines, and the runtime replays that stream from its first
line, so its line ``count`` is the last one stored, unless the runtime
rotated the start of its log away.

So, per stream, from what the attempt stored (:class:`StoredStream`):

- the replay begins with the stored ``head``: the runtime has the stream
  from its start. Its first ``count`` lines are skipped, the last of them
  checked against the stored ``tail``;
- it does not: the start was rotated away. The lines are held until the
  stored ``tail`` shows up among them (what comes after it is new: nothing
  lost) or cannot any more (the replay has more lines than were stored, or
  ended): then the predecessor's last lines are gone, and with them an
  unknown number of lines after them. One ``system`` gap line stands in their
  place, before the first line the runtime still has; every held line is new.

Lines read live (an attach, :attr:`LogLine.live`) come after the replay and
were never stored: the first of them ends the search of every stream.
Streams are held together, so the order in which lines arrive is kept.

Lines are compared as they were stored (``stored_form``: secrets redacted,
long lines cut). What cannot be seen: lines rotated away from a stream of
which nothing was stored yet, and, in output that repeats itself exactly,
which repetition the stored tail was.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from craton_wf.domain.logmarks import log_gap_marker
from craton_wf.engine.claims import StoredStream
from craton_wf.engine.recording import LogRecord
from craton_wf.executors.base import LogLine

HELD_LINES_MAX = 200_000  # a search that holds more gives up: the tail is called gone


@dataclass
class _Held:
    line: LogLine
    emit: bool | None = None  # None: not decided yet
    gap_before: bool = False


@dataclass
class _Stream:
    """The search of one stream for the end of what was stored."""

    stored: StoredStream
    seen: int = 0  # replayed lines of this stream so far
    mode: str = "head"  # head → skip → done, or head → search → done
    window: deque[str] = field(default_factory=deque)
    held: list[_Held] = field(default_factory=list)
    suspect: bool = False  # the replay did not end the stored lines as they were

    def __post_init__(self) -> None:
        if self.stored.count == 0:
            self.mode = "done"

    def decide(self, skip_through: int | None) -> bool:
        """Settle the held lines: those up to ``skip_through`` were stored; None:
        none of them was, and a gap stands before the first. True for a gap."""
        first_new = True
        for number, held in enumerate(self.held, start=self.seen - len(self.held) + 1):
            held.emit = skip_through is None or number > skip_through
            if held.emit and skip_through is None and first_new:
                held.gap_before, first_new = True, False
        gap = skip_through is None
        self.held, self.mode = [], "done"
        return gap


def resume_lines(
    lines: Iterable[LogLine],
    stored: Mapping[str, StoredStream] | None = None,
    stored_form: Callable[[str], str] = lambda text: text,
    last_stored_ts: datetime | None = None,
) -> Iterator[LogRecord]:
    """The records of ``lines`` that were not stored yet, with gap lines where some are gone."""
    if not stored:  # nothing stored: every line, as it comes
        yield from (LogRecord(line.stream, line.ts, line.text) for line in lines)
        return
    streams = {name: _Stream(s) for name, s in (stored or {}).items()}
    pending: deque[_Held] = deque()  # in arrival order, while a stream is undecided

    def release() -> Iterator[LogRecord]:
        while pending and pending[0].emit is not None:
            held = pending.popleft()
            if held.gap_before:
                yield LogRecord(
                    "system", held.line.ts, log_gap_marker(last_stored_ts, held.line.ts)
                )
            if held.emit:
                yield LogRecord(held.line.stream, held.line.ts, held.line.text)

    def end_replay() -> None:
        for stream in streams.values():
            if stream.mode == "search":
                stream.decide(None)
            elif stream.mode in ("head", "skip"):
                stream.decide(stream.seen)  # fewer lines than stored: all seen were stored

    for line in lines:
        stream = streams.get(line.stream)
        if line.live and any(s.mode != "done" for s in streams.values()):
            end_replay()
        held = _Held(line)
        pending.append(held)
        if stream is None or stream.mode == "done":
            held.emit = True
            if stream is not None and stream.suspect:
                held.gap_before, stream.suspect = True, False
        else:
            _advance(stream, held, stored_form(line.text))
            if sum(len(s.held) for s in streams.values()) > HELD_LINES_MAX:
                end_replay()
        yield from release()
    end_replay()
    yield from release()


def _advance(stream: _Stream, held: _Held, text: str) -> None:
    """One more replayed line of an undecided stream."""
    stored = stream.stored
    stream.seen += 1
    stream.window.append(text)
    if len(stream.window) > len(stored.tail):
        stream.window.popleft()
    if stream.mode == "skip":  # the runtime has the stream from its start
        held.emit = False
        if stream.seen >= stored.count:
            # The last stored line should be here; if it is not, the output
            # repeats itself and hid a rotation: say the log may have a gap.
            stream.suspect = tuple(stream.window) != stored.tail
            stream.mode = "done"
        return
    stream.held.append(held)
    if stream.mode == "head":
        if text != stored.head[stream.seen - 1]:
            stream.mode = "search"  # the start is gone: look for the tail
        elif stream.seen == len(stored.head):
            for earlier in stream.held:
                earlier.emit = False
            stream.held, stream.mode = [], "skip"
            if stream.seen >= stored.count:
                stream.mode = "done"
            return
    if stream.mode == "search":
        if tuple(stream.window) == stored.tail:
            stream.decide(stream.seen)
        elif stream.seen >= stored.count:
            stream.decide(None)
