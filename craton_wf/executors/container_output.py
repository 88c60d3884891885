"""Reading one container's output from the Docker engine: attached, replayed, or followed.

The docker executor reads every run this way, and the swarm executor reads
a service task's container this way when the task runs on its own engine.

Attached: an attach (``POST /containers/{id}/attach``, stream, no logs)
opened before the container starts gets its output from the first byte. The
engine copies the output to each attached reader through a pipe that blocks
when the reader is behind (about 1 MB), so a slow reader slows the container
down instead of losing lines, whatever the json-file log's rotation: while
it is read, the output is exact. An attach carries no engine stamps; its
chunks are stamped when read (:class:`LiveChunk`). When the attach ends the
container has exited (the engine closes it then); if it ends while the
container still runs, a gap line says so and the engine's log is followed
from then on (:meth:`ContainerOutput.live`).

Replayed: a container that was already running when its reader came (a run
taken over from a runner that died, or a swarm task whose container swarm
started before it could be attached) is attached, then paused, and read
from the engine's log, everything it still has, then the attach is read on:
paused, the log and the attach meet exactly
(:meth:`ContainerOutput.replayed_then_live`). What the log rotated away
before then is lost. Whether it can have been is told from the log's size
(:func:`json_file_may_have_lost_lines`): a json-file log deletes a file only
after as many rotations as it keeps files, and rotates a file only once it
is full.

Followed: the engine's log is read from the raw ``GET /containers/{id}/logs``
stream rather than through the SDK's ``logs()``, which drops the stream id of
each frame: a non-TTY container's output comes as frames with an 8-byte
header (stream id, length), and with ``timestamps=1`` every frame is one log
message starting with the engine's RFC 3339 timestamp. Docker splits lines
over 16 KiB into several messages without newlines, so lines are reassembled
per stream and stamped with the time of the message that completed them
(:class:`LineAssembler`). Within a stream the order is exact; across streams
it is the engine's (it copies stdout and stderr in separate goroutines, so a
line written to stderr just after one on stdout may come first). The engine
(seen with 20.10) may end a follow stream before it has sent the last
messages; the log is then read again after the last message seen, and if
that message was rotated away meanwhile a gap line says so
(:func:`frames_after`).
"""

from __future__ import annotations

import contextlib
import logging
import re
import struct
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import requests

from craton_wf.domain.logmarks import log_gap_marker
from craton_wf.errors import ContainerNotFound, ExecutorError, truncate_message
from craton_wf.executors.base import ContainerState, LineBlock, LogLine
from craton_wf.executors.engine_errors import docker_errors

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 1024 * 1024  # a "line" that never ends is cut here
LOG_REOPEN_SECONDS = 0.5
QUIET_SECONDS = 0.05  # a paused container's log has settled when it did not grow this long
QUIET_PATIENCE_SECONDS = 2.0
LIVE_EXIT_PATIENCE_SECONDS = 5.0  # between an attach's end and the exit being recorded
CROSSING_NS = 1_000_000_000  # how far stamps of stdout and stderr may cross in a log

_FRAME_HEADER = struct.Struct(">BxxxL")
_STREAMS = {1: "stdout", 2: "stderr"}
_TIMESTAMP = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d) ")
_RUNNING_STATES = {"running", "paused", "restarting"}
_SIZE_UNITS = {"k": 1024, "m": 1024**2, "g": 1024**3}
# A json-file entry is {"log":"<line>","stream":"<stream>","time":"<stamp>"} and a newline.
_JSON_ENTRY_OVERHEAD = len('{"log":"","stream":"","time":""}\n')
# Bytes the json-file driver writes as more than themselves: a quote, a backslash and a
# newline as two, the other control characters and `<`, `>`, `&` as six
# (\u00XX); of other characters, an invalid byte as six (\ufffd), U+2028 and
# U+2029 as six for their three.
_ESCAPED_TWICE = re.compile(rb'["\\\n]')
_ESCAPED_SIX = re.compile(rb"[\x00-\x09\x0b-\x1f<>&]")
_INVALID_BYTE = re.compile("[\udc80-\udcff]")
_LINE_SEPARATORS = re.compile("[\u2028\u2029]")

Frame = tuple[str, bytes]


def state_of(status: str) -> ContainerState:
    """The state of a container the engine says is ``status``."""
    if status == "created":
        return ContainerState.CREATED
    if status in _RUNNING_STATES:
        return ContainerState.RUNNING
    return ContainerState.EXITED  # exited, dead, removing


def parse_docker_timestamp(match: re.Match[bytes]) -> datetime:
    """An aware UTC datetime from a matched RFC 3339 stamp (nanoseconds cut to micro)."""
    seconds, fraction, zone = (g.decode() if g else "" for g in match.groups())
    stamp = datetime.fromisoformat(seconds + ("+00:00" if zone == "Z" else zone))
    micros = int((fraction or "0").ljust(6, "0")[:6])
    return (stamp + timedelta(microseconds=micros)).astimezone(UTC)


def epoch_micros(stamp: datetime) -> int:
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    delta = stamp - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def since_param(stamp_ns: int) -> str:
    """A Docker ``since`` value: Unix seconds with nanoseconds."""
    seconds, nanos = divmod(max(stamp_ns, 0), 1_000_000_000)
    return f"{seconds}.{nanos:09d}"


def stamp_of_ns(stamp_ns: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=stamp_ns // 1000)


def frame_stamp_ns(message: bytes) -> int | None:
    """The engine's stamp of a log message (``timestamps=1``), in Unix nanoseconds."""
    match = _TIMESTAMP.match(message)
    if match is None:
        return None
    stamp = parse_docker_timestamp(match)
    nanos = int((match.group(2) or b"0").ljust(9, b"0")[:9]) % 1000
    return epoch_micros(stamp) * 1000 + nanos


def _read_exactly(raw: Any, size: int) -> bytes:
    """``size`` bytes from the response, fewer only at the end of the stream."""
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        chunk = raw.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def iter_frames(raw: Any) -> Iterator[Frame]:
    """(stream, payload) of each frame of a multiplexed (non-TTY) log stream."""
    while header := _read_exactly(raw, _FRAME_HEADER.size):
        if len(header) < _FRAME_HEADER.size:
            return
        stream_id, length = _FRAME_HEADER.unpack(header)
        payload = _read_exactly(raw, length)
        if payload:
            yield _STREAMS.get(stream_id, "stdout"), payload


def frames_after(frames: Iterator[Frame], last: Frame) -> Iterator[Frame | LogLine]:
    """The frames of a log read again that come after ``last``, the last frame seen.

    The log was reopened from a second before ``last`` (stamps of stdout and
    stderr may cross by that much), so ``last`` comes first unless the runtime
    rotated it away meanwhile. Then every frame read is new, lines between
    ``last`` and them may be gone, and a ``system`` gap line says so before
    them. Frames stamped after ``last`` are held until ``last`` is found (they
    were seen before it) or cannot come any more (a frame stamped past the
    crossing, or the end of the log).
    """
    last_ns = frame_stamp_ns(last[1]) or 0
    held: list[Frame] = []
    for frame in frames:
        if frame == last:
            yield from frames
            return
        stamp = frame_stamp_ns(frame[1])
        if stamp is None or stamp <= last_ns:
            continue  # seen before ``last``
        held.append(frame)
        if stamp > last_ns + CROSSING_NS:
            break
    if not held:
        return
    yield LogLine(
        "system",
        stamp_of_ns(frame_stamp_ns(held[0][1]) or last_ns),
        log_gap_marker(stamp_of_ns(last_ns), stamp_of_ns(frame_stamp_ns(held[0][1]) or 0)),
    )
    yield from held
    yield from frames


class LogRereads:
    """Reads of a log opened again and again, each going on after the last message seen.

    Open each read from :meth:`opened_from` and read it through :meth:`frames`.
    """

    def __init__(self, since_ns: int | None) -> None:
        self.since_ns = since_ns
        self.last: Frame | None = None

    def opened_from(self) -> int | None:
        """Where to open the next read: a second before the last message seen
        (stamps of stdout and stderr may cross by that much), or ``since_ns``."""
        last_ns = None if self.last is None else frame_stamp_ns(self.last[1])
        return self.since_ns if last_ns is None else last_ns - CROSSING_NS

    def frames(self, raw: Any) -> Iterator[Frame | LogLine]:
        """The frames of this read not seen before (:func:`frames_after`)."""
        frames: Iterator[Frame | LogLine] = iter_frames(raw)
        if self.last is not None:
            frames = frames_after(iter_frames(raw), self.last)
        for frame in frames:
            if not isinstance(frame, LogLine):
                self.last = frame
            yield frame


def size_in_bytes(size: str) -> int:
    """A json-file ``max-size`` (``64m``, ``512k``, ``1g``; binary units) in bytes."""
    unit = _SIZE_UNITS.get(size[-1:].lower(), 1)
    return int(size[:-1] if unit != 1 else size) * unit


def json_entry_bytes_at_most(frame: Frame) -> int:
    """The most bytes the json-file driver can have written for this log message.

    Exact for output without control characters (but newlines) and valid
    UTF-8, which is what most output is: the frame's payload starts with the
    engine's stamp, which the driver writes without the trailing zeros of
    its fraction. A carriage return or a tab may be written as two bytes
    rather than six.
    """
    stream, message = frame
    stamp, _, line = message.partition(b" ")
    whole, dot, fraction = stamp.partition(b".")
    if dot:
        digits, zone = fraction[:9].rstrip(b"0"), fraction[9:]
        stamp = whole + (b"." + digits if digits else b"") + zone
    escaped = len(_ESCAPED_TWICE.findall(line)) + 5 * len(_ESCAPED_SIX.findall(line))
    if not line.isascii():
        text = line.decode("utf-8", "surrogateescape")
        escaped += 5 * len(_INVALID_BYTE.findall(text)) + 3 * len(_LINE_SEPARATORS.findall(text))
    return _JSON_ENTRY_OVERHEAD + len(stream) + len(stamp) + len(line) + escaped


def json_file_may_have_lost_lines(frames: Iterable[Frame], max_size: str, max_files: int) -> bool:
    """Whether a json-file log that holds ``frames`` can have lost lines before them.

    The driver rotates a file once it holds ``max_size`` or more, before it
    writes the next message; with ``max_files`` files it deletes the oldest
    on the ``max_files``-th rotation. What the log holds begins a file (the
    first one, or one begun by a rotation), so its rotations can be counted
    again from its first message: fewer than ``max_files - 1`` means none was
    deleted. As many cannot be told apart from more (the first line of the
    output or not): the log may have lost lines. With a single file
    (``max-file=1``) a rotation empties it and leaves no trace: it cannot be
    told, and False is answered.
    """
    if max_files < 2:
        return False
    capacity = size_in_bytes(max_size)
    written = rotations = 0
    for frame in frames:
        if written >= capacity:
            rotations, written = rotations + 1, 0
        written += json_entry_bytes_at_most(frame)
    return rotations >= max_files - 1


@dataclass
class _PendingLine:
    data: bytearray = field(default_factory=bytearray)
    ts: datetime | None = None
    live: bool = False


@dataclass(frozen=True)
class LiveChunk:
    """A chunk of an attach's output, stamped when it was read."""

    stream: str
    data: bytes
    ts: datetime


# What a source of output yields: a frame of the logs API (its payload led by
# the engine's stamp), a chunk of an attach, or a line of the executor's own (a gap).
Output = Frame | LiveChunk | LogLine


class LineAssembler:
    """Turns timestamped log messages into whole lines, per stream.

    A message that ends without a newline (docker's 16 KiB split, or output
    read before its newline arrived) is kept until the rest of its line comes.
    """

    def __init__(self, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self.max_line_bytes = max_line_bytes
        self._pending: dict[str, _PendingLine] = {}

    def feed(
        self, stream: str, message: bytes, ts: datetime | None = None, live: bool = False
    ) -> Iterator[LogLine]:
        """The lines ``message`` completes; ``ts`` stamps an attach's output, which
        carries no stamp of the engine's (``live``)."""
        for block in self.feed_blocks(stream, message, ts, live):
            yield from _lines_in(block)

    def feed_blocks(
        self, stream: str, message: bytes, ts: datetime | None = None, live: bool = False
    ) -> Iterator[LineBlock]:
        """As :meth:`feed`, the lines in one block: a chunk of an attach holds
        thousands, split and decoded at once."""
        pending = self._pending.setdefault(stream, _PendingLine())
        match = None if ts is not None else _TIMESTAMP.match(message)
        if ts is not None:
            pending.ts = ts
        elif match:
            pending.ts = parse_docker_timestamp(match)
            message = message[match.end() :]
        elif pending.ts is None:  # no stamp at all: not expected from the engine
            pending.ts = datetime.now(UTC)
        pending.live = live
        pending.data += message
        if b"\n" in message:
            # A newline is one byte no multi-byte character holds: the block
            # decodes, and splits, as its lines would one by one.
            end = pending.data.rfind(b"\n")
            text = pending.data[:end].decode("utf-8", "replace")
            del pending.data[: end + 1]
            yield LineBlock(stream, pending.ts, text.split("\n"), live)
        if len(pending.data) >= self.max_line_bytes:
            yield self._block(stream, pending)

    def flush(self) -> Iterator[LogLine]:
        """The unterminated last line of each stream, oldest first."""
        for block in self.flush_blocks():
            yield from _lines_in(block)

    def flush_blocks(self) -> Iterator[LineBlock]:
        """As :meth:`flush`, each line a block."""
        leftovers = [
            self._block(stream, pending)
            for stream, pending in self._pending.items()
            if pending.data
        ]
        self._pending.clear()
        yield from sorted(leftovers, key=lambda block: block.ts)

    @staticmethod
    def _block(stream: str, pending: _PendingLine) -> LineBlock:
        """What ``pending`` holds, as one line, which it then no longer holds."""
        assert pending.ts is not None
        text = pending.data.decode("utf-8", "replace")
        pending.data.clear()
        return LineBlock(stream, pending.ts, [text], pending.live)


def _lines_in(block: LineBlock) -> Iterator[LogLine]:
    for text in block.lines:
        yield LogLine(stream=block.stream, ts=block.ts, text=text, live=block.live)


def blocks_of(
    output: Iterator[Output], since: datetime | None = None, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[LineBlock]:
    """The whole lines of a container's output in blocks (a frame's, or an
    attach's chunk's, together), those stamped after ``since``."""
    assembler = LineAssembler(max_line_bytes)
    for item in output:
        if isinstance(item, LogLine):
            blocks: Iterator[LineBlock] = iter(
                (LineBlock(item.stream, item.ts, [item.text], item.live),)
            )
        elif isinstance(item, LiveChunk):
            blocks = assembler.feed_blocks(item.stream, item.data, item.ts, live=True)
        else:
            blocks = assembler.feed_blocks(*item)
        for block in blocks:
            if since is None or block.ts > since:
                yield block
    for block in assembler.flush_blocks():
        if since is None or block.ts > since:
            yield block


def lines_of(
    output: Iterator[Output], since: datetime | None = None, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[LogLine]:
    """The whole lines of a container's output, those stamped after ``since``."""
    for block in blocks_of(output, since, max_line_bytes):
        yield from _lines_in(block)


def close_quietly(attached: Any) -> None:
    """Close an attach socket; the engine then stops holding the container for it."""
    if attached is None:
        return
    with contextlib.suppress(OSError):
        attached.close()
    raw = getattr(attached, "_sock", None)  # the SDK hands out the socket's file object
    if raw is not None:
        with contextlib.suppress(OSError):
            raw.close()


@dataclass(frozen=True)
class Drained:
    """What an attach received before its container was paused, and a reader of the rest."""

    received: bytes
    rest: Any


def drain_attach(attached: Any) -> Drained:
    """What an attach socket received so far (until it has been quiet a moment),
    and a reader of what comes after.

    Read through the HTTP response's buffer, which may hold output that came
    with the attach's headers; the socket's own file object is spent by the
    timeout, so the rest is read through a new one.
    """
    response = getattr(attached, "_response", None)
    buffered = response.raw._fp.fp if response is not None else attached
    sock = attached._sock
    received = bytearray()
    sock.settimeout(QUIET_SECONDS * 2)
    try:
        while chunk := buffered.read1(65536):
            received += chunk
    except (TimeoutError, OSError):
        pass
    finally:
        sock.settimeout(None)
    rest = sock.makefile("rb", buffering=0)
    rest._response = response  # the socket lives as long as its response
    return Drained(bytes(received), rest)


def split_frames(data: bytes) -> tuple[list[Frame], bytes]:
    """The whole frames in ``data``, and what is left of a frame cut short."""
    frames: list[Frame] = []
    offset = 0
    while offset + _FRAME_HEADER.size <= len(data):
        stream_id, length = _FRAME_HEADER.unpack_from(data, offset)
        end = offset + _FRAME_HEADER.size + length
        if end > len(data):
            break
        frames.append((_STREAMS.get(stream_id, "stdout"), data[offset + _FRAME_HEADER.size : end]))
        offset = end
    return frames, data[offset:]


def unfinished_lines(frames: list[Frame]) -> dict[str, bytes]:
    """Per stream, what follows the last newline of the frames: not logged yet."""
    joined: dict[str, bytearray] = {}
    for stream, payload in frames:
        joined.setdefault(stream, bytearray()).extend(payload)
    return {
        stream: bytes(data[data.rfind(b"\n") + 1 :])
        for stream, data in joined.items()
        if not data.endswith(b"\n")
    }


class PrefixedReader:
    """A reader that returns ``prefix`` before what ``rest`` reads."""

    def __init__(self, prefix: bytes, rest: Any) -> None:
        self.prefix, self.rest = prefix, rest

    def read(self, size: int) -> bytes:
        if self.prefix:
            chunk, self.prefix = self.prefix[:size], self.prefix[size:]
            return chunk
        return bytes(self.rest.read(size) or b"")

    def close(self) -> None:
        close_quietly(self.rest)


def raise_for_log_status(response: requests.Response, source: str) -> None:
    """Raise if the engine refused to give the logs of ``source`` (``container x``)."""
    if response.status_code == 404:
        raise ContainerNotFound(f"{source} is gone")
    if response.status_code >= 400:
        raise ExecutorError(
            f"could not read the logs of {source}: "
            f"{response.status_code}: {truncate_message(response.text)}"
        )


class ContainerOutput:
    """The output of one container of an engine (``api``: the SDK's low-level client)."""

    def __init__(self, api: Any, container_id: str, name: str) -> None:
        self.api = api
        self.container_id = container_id
        self.name = name

    def status(self) -> str:
        """The engine's word for the container's state (``created``, ``running``, ...)."""
        with docker_errors(f"inspect container {self.name}"):
            return str(self.api.inspect_container(self.container_id)["State"].get("Status", ""))

    def attach(self) -> Any:
        """An attach socket to the container's stdout and stderr, from now on."""
        params = {"stdout": 1, "stderr": 1, "stream": 1}
        with docker_errors(f"attach to container {self.name}"):
            return self.api.attach_socket(self.container_id, params=params)

    def live(self, attached: Any) -> Iterator[Output]:
        """The attach's output, stamped as it is read, until the container exited.

        Should the stream end while the container still runs (the engine
        restarted), the engine's log is followed from then on, after a gap line.
        """
        stamp = datetime.now(UTC)
        try:
            for stream, data in iter_frames(attached):
                stamp = max(stamp, datetime.now(UTC))  # non-decreasing, whatever the clock does
                yield LiveChunk(stream, data, stamp)
        finally:
            close_quietly(attached)
        # The engine closes an attach when the container exits, just before it
        # records the exit: give it a moment to.
        if self.wait(timeout=LIVE_EXIT_PATIENCE_SECONDS) is not None:
            return
        broke = datetime.now(UTC)
        yield LogLine("system", broke, log_gap_marker(stamp, None))
        yield from self.messages(epoch_micros(broke) * 1000)

    def replayed_then_live(self) -> Iterator[Output]:
        """What the engine still has of a container started elsewhere, then its attach.

        The engine refuses to attach to a paused container, so the attach is
        opened first and the container paused right after
        (:meth:`drained_while_paused`). The stored log is read while the
        container is paused, so it and the attach meet exactly. The reader
        (the runner taking the run over) finds where its stored lines end
        among the replayed ones. A container that cannot be paused is
        followed through the engine's log instead.
        """
        status = self.status()
        if status == "paused":  # by a reader that died while taking it over
            self.unpause()
        elif status != "running":
            yield from self.history()
            return
        attached = self.attach()
        if not self.pause():
            close_quietly(attached)
            yield from self.messages(None)
            return
        with self.drained_while_paused(attached) as drained:
            yield from self.history()
        yield from self.after_replay(drained)

    def pause(self) -> bool:
        """Pause the container; False if it cannot be: it is not running (not
        started yet, or exited)."""
        try:
            with docker_errors(f"pause container {self.name}"):
                self.api.pause(self.container_id)
        except ExecutorError as exc:
            log.debug("could not pause %s: %s", self.name, exc)
            return False
        return True

    @contextmanager
    def drained_while_paused(self, attached: Any) -> Iterator[Drained]:
        """Of a paused container, what its attach got until then; unpaused on leaving.

        What the attach got is in the engine's log as well (read it inside),
        but for a line not finished yet: the engine logs a line once it ends
        (:meth:`after_replay` reads on from there).
        """
        try:
            self.await_quiet()
            yield drain_attach(attached)
        finally:
            self.unpause()

    def after_replay(self, drained: Drained) -> Iterator[Output]:
        """The output that follows a replay: the lines the attach had begun, then live."""
        frames, unread = split_frames(drained.received)
        now = datetime.now(UTC)
        for stream, unfinished in unfinished_lines(frames).items():
            yield LiveChunk(stream, unfinished, now)
        yield from self.live(PrefixedReader(unread, drained.rest))

    def history(self) -> Iterator[Frame]:
        """Every message the engine has stored of the container, once, without follow."""
        with self.log_stream(None, follow=False) as response:
            yield from iter_frames(response.raw)

    def await_quiet(self) -> None:
        """Wait until the engine logged what the paused container had already written."""
        newest = None
        deadline = time.monotonic() + QUIET_PATIENCE_SECONDS
        while time.monotonic() < deadline:
            with self.log_stream(None, follow=False, tail=1) as response:
                now = response.raw.read()
            if now == newest:
                return
            newest = now
            time.sleep(QUIET_SECONDS)

    def unpause(self) -> None:
        try:
            with docker_errors(f"unpause container {self.name}"):
                self.api.unpause(self.container_id)
        except ExecutorError as exc:  # gone, or stopped meanwhile: nothing to resume
            log.info("could not unpause %s: %s", self.name, exc)

    def messages(self, since_ns: int | None) -> Iterator[Frame | LogLine]:
        """Each log message of the container once, following it until it exited.

        The engine may end a follow stream before it has sent the container's
        last messages, and a stream can drop while the container runs: either
        way the log is opened again and read on after the last message seen
        (:func:`frames_after`: a gap line if it was rotated away meanwhile).
        """
        reads = LogRereads(since_ns)
        follow = True
        while True:
            with self.log_stream(reads.opened_from(), follow) as response:
                yield from reads.frames(response.raw)
            if not follow:
                return
            if self.exit_code_if_exited() is not None:
                follow = False  # one last read, without follow, for what the stream missed
            else:
                time.sleep(LOG_REOPEN_SECONDS)

    @contextmanager
    def log_stream(
        self, since_ns: int | None, follow: bool, tail: int | None = None
    ) -> Iterator[requests.Response]:
        """The raw ``GET /containers/{id}/logs`` response, stamped, multiplexed."""
        params: dict[str, Any] = {"stdout": 1, "stderr": 1, "timestamps": 1}
        if follow:
            params["follow"] = 1
        if since_ns is not None:
            params["since"] = since_param(since_ns)
        if tail is not None:
            params["tail"] = tail
        api = self.api
        url = f"{api.base_url}/v{api.api_version}/containers/"
        url += f"{quote(self.container_id, safe='')}/logs"
        with docker_errors(f"read the logs of container {self.name}"):
            # A follow stream is open as long as the container runs: no read timeout.
            response = api.get(url, params=params, stream=True, timeout=None)
            try:
                raise_for_log_status(response, f"container {self.name}")
                yield response
            finally:
                response.close()

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code once the container exited, None if ``timeout`` passed first."""
        try:
            with docker_errors(f"wait for container {self.name}"):
                result = self.api.wait(self.container_id, timeout=timeout)
        except ExecutorError as exc:
            if timeout is None or not isinstance(
                exc.__cause__, requests.exceptions.RequestException
            ):
                raise
            # The unix-socket adapter reports a read timeout as a ConnectionError:
            # ask the engine whether the container is still running instead.
            return self.exit_code_if_exited()
        return int(result["StatusCode"])

    def exit_code_if_exited(self) -> int | None:
        with docker_errors(f"inspect container {self.name}"):
            state = self.api.inspect_container(self.container_id)["State"]
        if state_of(state.get("Status", "")) == ContainerState.EXITED:
            return int(state["ExitCode"])
        return None
