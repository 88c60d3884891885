"""Live streams of a job's log, a job's events and a build's log: one implementation for
the API's ``follow=true`` (Server-Sent Events, or NDJSON for older clients), the CLI's
``--follow`` and the web console.

A stream is an async iterator of :class:`StreamItem`: ``line`` or ``event`` items,
each with the id a reader resumes after, then one ``end`` item when the job,
run or build is finished and everything was sent. The framing is the
response's business (:func:`sse_response`, :func:`ndjson_response`), so the
console and the API send the same items.

Polling, not holding: each poll is a short read transaction run in a worker
thread (``anyio.to_thread``), and between polls the stream sleeps on the event
loop. An open stream thus holds no thread and no transaction while idle, so
many browser tabs do not exhaust the thread pool or hold back the database
(PostgreSQL's vacuum, SQLite's checkpoints). Polls come every quarter of a
second while lines arrive and slow to one a second while nothing does.

Every poll looks the job (or task and build) up in the caller's project
again, so a stream never outlives the object being the caller's; one that is
gone ends the stream with an ``error`` item. The routes look it up once
before answering, so a wrong id answers 404 before any stream starts.

Exact resumption: items are sent in id order and a reader resumes after the
last id it got (``Last-Event-ID``, :func:`last_event_id`). Log lines and
events of a job are written by several transactions at once (runners, the
API), and on PostgreSQL their ids are drawn when a row is inserted, not when
it is committed; so a stream only sends rows up to the table's
:class:`~craton_wf.db.commit_horizon.CommitHorizon`, below which no row can
still appear. A build's log is written by its one builder, numbered in order:
its lines resume after their number (``seq``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from itertools import takewhile
from typing import Any, TypeVar

import anyio
from fastapi import Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session, sessionmaker

from craton_wf.api.schemas import BuildLogRead, EventRead, LogRead
from craton_wf.db.commit_horizon import CommitHorizon
from craton_wf.domain.states import FINAL_JOB_STATES, FINAL_RUN_STATES, BuildStatus
from craton_wf.errors import NotFound
from craton_wf.services import jobs as job_service
from craton_wf.services import tasks as task_service
from craton_wf.services.events import host_names_of_runs, list_events

T = TypeVar("T")

#: Rows read per poll; a stream behind by more reads again at once.
PAGE = 1000
#: Seconds between polls while rows arrive, and at most while none do.
FIRST_PAUSE, LONGEST_PAUSE = 0.25, 1.0
#: Seconds of silence after which an SSE stream sends a comment, so proxies keep it.
KEEP_ALIVE_SECONDS = 15.0
#: The reconnection delay an SSE stream asks browsers for, in milliseconds.
RETRY_MILLISECONDS = 2000
#: Headers of a stream: never cached, never buffered by a proxy (nginx reads the second).
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

_FINAL_JOB = {s.value for s in FINAL_JOB_STATES}
_FINAL_RUN = {s.value for s in FINAL_RUN_STATES}
_FINAL_BUILD = {BuildStatus.READY.value, BuildStatus.FAILED.value}


@dataclass(frozen=True)
class StreamItem:
    id: int | None  # the SSE event id (log line id, job event id); None for control items
    event: str  # "line", "event", "end", "error"
    data: dict[str, Any]


@dataclass
class _Poll:
    """What one poll read: the items to send, and the ``end`` item's data once finished."""

    items: list[StreamItem] = field(default_factory=list)
    end: dict[str, Any] | None = None


# -- the streams -------------------------------------------------------------------


async def job_log_items(
    read_sessions: sessionmaker[Session],
    project_id: str,
    job_id: int,
    *,
    after: int = 0,
    host: str | None = None,
    step: str | None = None,
    run_id: int | None = None,
) -> AsyncIterator[StreamItem]:
    """``line`` items (a :class:`LogRead` each, id = the line's id) until the job, or the
    run when ``run_id`` is given, is finished and every line was sent; then ``end``
    (``{"job_status"}``, and ``"run_status"`` with ``run_id``)."""
    horizon = CommitHorizon("run_logs")
    filters: dict[str, Any] = {"host": host, "step": step, "run_id": run_id}

    def poll(session: Session, after: int) -> _Poll:
        job = job_service.get_job(session, project_id, job_id)
        rows = job_service.read_logs(session, job, after=after, limit=PAGE, **filters)
        end: dict[str, Any] = {"job_status": job.status}
        finished = job.status in _FINAL_JOB
        if run_id is not None:
            end["run_status"] = job_service.get_run_of_job(session, job, run_id).status
            finished = end["run_status"] in _FINAL_RUN
        items = [
            StreamItem(row[0].id, "line", log_read(row).model_dump(mode="json")) for row in rows
        ]
        return _Poll(items, end if finished else None)

    async for item in _polled(read_sessions, horizon, poll, after):
        yield item


async def job_event_items(
    read_sessions: sessionmaker[Session], project_id: str, job_id: int, *, after: int = 0
) -> AsyncIterator[StreamItem]:
    """``event`` items (an :class:`EventRead` each, with its run's host; id = the event's
    id) until the job is finished and its last event (``job_finished``) was sent; then
    ``end`` (``{"job_status"}``)."""
    horizon = CommitHorizon("job_events")

    def poll(session: Session, after: int) -> _Poll:
        job = job_service.get_job(session, project_id, job_id)
        events = list_events(session, job.id, after, PAGE)
        hosts = host_names_of_runs(session, events)
        items = []
        for event in events:
            read = EventRead.model_validate(event)
            read.host_name = hosts.get(event.run_id) if event.run_id is not None else None
            items.append(StreamItem(event.id, "event", read.model_dump(mode="json")))
        finished = job.status in _FINAL_JOB
        return _Poll(items, {"job_status": job.status} if finished else None)

    async for item in _polled(read_sessions, horizon, poll, after):
        yield item


async def build_log_items(
    read_sessions: sessionmaker[Session],
    project_id: str,
    task_id: int | str,
    build_id: int | str,
    *,
    after: int = 0,
) -> AsyncIterator[StreamItem]:
    """``line`` items (a :class:`BuildLogRead` each, id = its number in the build's log)
    until the build is finished; then ``end`` (``{"status"}``). ``build_id`` may be
    ``latest``: the build that is the latest when the stream starts is followed."""
    build_ref: int | str = build_id

    def poll(session: Session, after: int) -> _Poll:
        nonlocal build_ref
        task = task_service.get_owned_task(session, project_id, task_id)
        build = task_service.get_build(session, task, build_ref)
        build_ref = build.id
        lines = task_service.read_build_logs(session, build, after, PAGE)
        items = [
            StreamItem(x.seq, "line", BuildLogRead.model_validate(x).model_dump(mode="json"))
            for x in lines
        ]
        return _Poll(items, {"status": build.status} if build.status in _FINAL_BUILD else None)

    # One builder writes a build's log, numbered in order: every visible line may be sent.
    async for item in _polled(read_sessions, None, poll, after):
        yield item


def log_read(row: job_service.LogRow) -> LogRead:
    line, host_name, step_name = row
    return LogRead(
        id=line.id,
        run_id=line.run_id,
        host_name=host_name,
        step_name=step_name,
        seq=line.seq,
        ts=line.ts,
        stream=line.stream,
        line=line.line,
    )


async def _polled(
    read_sessions: sessionmaker[Session],
    horizon: CommitHorizon | None,
    poll: Callable[[Session, int], _Poll],
    after: int,
) -> AsyncIterator[StreamItem]:
    """The items of ``poll`` after ``after``, polled until it says the end.

    With a ``horizon``, each poll first samples it in a transaction of its
    own, then reads in a later one; items past the horizon wait for a later
    poll, and the end is only sent once nothing was in flight at the sample.
    """
    pause = FIRST_PAUSE
    while True:
        try:
            bound, complete, read = await anyio.to_thread.run_sync(
                _poll_once, read_sessions, horizon, poll, after
            )
        except NotFound as exc:  # no longer the caller's
            error = {"message": exc.message, "status": exc.status, "code": exc.code}
            yield StreamItem(None, "error", error)
            return
        sent = _up_to(bound, read.items)
        for item in sent:
            after = item.id or after
            yield item
        if read.end is not None and len(sent) == len(read.items) < PAGE and complete:
            yield StreamItem(None, "end", read.end)
            return
        if len(read.items) == PAGE and sent:
            continue  # behind: read on at once
        pause = FIRST_PAUSE if sent else min(pause * 2, LONGEST_PAUSE)
        await asyncio.sleep(pause)


def _up_to(bound: int | None, items: list[StreamItem]) -> list[StreamItem]:
    """The first ``items`` whose ids are at most ``bound`` (None: all of them)."""
    if bound is None:
        return items
    return list(takewhile(lambda item: (item.id or 0) <= bound, items))


def _poll_once(
    read_sessions: sessionmaker[Session],
    horizon: CommitHorizon | None,
    poll: Callable[[Session, int], _Poll],
    after: int,
) -> tuple[int | None, bool, _Poll]:
    bound, complete = None, True
    if horizon is not None:
        with read_sessions.begin() as session:
            bound = horizon.advance(session)
            complete = horizon.complete
    with read_sessions.begin() as session:  # after the sample: sees all it settled
        return bound, complete, poll(session, after)


# -- responses ---------------------------------------------------------------------


def wants_event_stream(request: Request) -> bool:
    """Whether the request accepts ``text/event-stream`` (a browser's ``EventSource``,
    the CLI): the same URL answers NDJSON otherwise."""
    return "text/event-stream" in request.headers.get("accept", "")


def follow_response(request: Request, items: AsyncIterator[StreamItem]) -> StreamingResponse:
    """SSE or NDJSON, as the request accepts."""
    if wants_event_stream(request):
        return sse_response(request, items)
    return ndjson_response(items)


def last_event_id(request: Request, after: int) -> int:
    """The ``Last-Event-ID`` header (a browser's reconnect) when present and valid, else
    ``after``."""
    value = request.headers.get("last-event-id", "").strip()
    if value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    return after


def sse_response(request: Request, items: AsyncIterator[StreamItem]) -> StreamingResponse:
    """``items`` as ``text/event-stream``: ``id:``, ``event:`` and one ``data:`` line of
    JSON per item, a ``retry:`` hint first, and a ``: keep-alive`` comment after
    :data:`KEEP_ALIVE_SECONDS` of silence. When the client goes away the response
    is cancelled (Starlette listens for the disconnect), which closes ``items``."""
    return StreamingResponse(
        _sse_frames(items), media_type="text/event-stream", headers=STREAM_HEADERS
    )


def ndjson_response(items: AsyncIterator[StreamItem]) -> StreamingResponse:
    """``items`` as newline-delimited JSON, the shape older clients read: each item's
    data on a line, the end as ``{"end": true, ...}``."""
    return StreamingResponse(
        _ndjson_lines(items), media_type="application/x-ndjson", headers=STREAM_HEADERS
    )


def sse_frame(item: StreamItem) -> str:
    head = f"id: {item.id}\n" if item.id is not None else ""
    data = json.dumps(item.data, separators=(",", ":"), ensure_ascii=False)
    return f"{head}event: {item.event}\ndata: {data}\n\n"


async def _sse_frames(items: AsyncIterator[StreamItem]) -> AsyncIterator[str]:
    yield f"retry: {RETRY_MILLISECONDS}\n\n"
    async for item in with_keep_alive(items, KEEP_ALIVE_SECONDS):
        yield ": keep-alive\n\n" if item is None else sse_frame(item)


async def _ndjson_lines(items: AsyncIterator[StreamItem]) -> AsyncIterator[str]:
    try:
        async for item in items:
            data = {"end": True, **item.data} if item.event == "end" else item.data
            yield json.dumps(data, ensure_ascii=False) + "\n"
    finally:
        await _close(items)


async def with_keep_alive(items: AsyncIterator[T], every: float) -> AsyncIterator[T | None]:
    """``items``, with a ``None`` each time ``every`` seconds pass without one.

    The next item is awaited in a task of its own, so a timeout never cancels
    ``items`` half-way through a poll; when this iterator is closed (the
    client went away) that task is cancelled and ``items`` closed.
    """
    pending: asyncio.Future[T] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(_next(items))
            done, _ = await asyncio.wait({pending}, timeout=every)
            if not done:
                yield None
                continue
            future, pending = pending, None
            try:
                item = future.result()
            except StopAsyncIteration:
                return
            yield item
    finally:
        with anyio.CancelScope(shield=True):
            if pending is not None:
                pending.cancel()
                await asyncio.wait({pending})
            await _close(items)


async def _next(items: AsyncIterator[T]) -> T:
    return await anext(items)


async def _close(items: AsyncIterator[Any]) -> None:
    aclose = getattr(items, "aclose", None)
    if aclose is not None:
        await aclose()
