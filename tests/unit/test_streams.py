"""Live streams (``api.streams``): SSE framing, exact resumption after ``Last-Event-ID``
(also while two runs write at once), tenancy, roles, keep-alive, the end of a stream,
and a long log read backwards from its end."""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, insert, update

from craton_wf.api import streams
from craton_wf.api.streams import StreamItem, job_log_items, with_keep_alive
from craton_wf.db.commit_horizon import CommitHorizon
from craton_wf.db.engine import reading, transaction
from craton_wf.db.models import BuildLog, Job, Run, RunLog
from craton_wf.engine.events import record_event
from tests.conftest import POSTGRES_URL
from tests.factories import make_inventory, make_ready_task

SSE = {"Accept": "text/event-stream"}


@pytest.fixture
def job(api, sessions, root) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A job of two hosts, one run each, that no runner runs: the tests write its log."""
    with transaction(sessions) as session:
        hosts = make_inventory(session, root.project_id, 2)
        make_ready_task(session, root.project_id, "t")
    made = api.post("/v1/jobs", json={"task": "t", "hosts": [h.id for h in hosts]})
    assert made.status_code == 201, made.text
    body = made.json()
    body["runs"] = [r["id"] for r in api.get(f"/v1/jobs/{body['id']}/runs").json()["runs"]]
    assert len(body["runs"]) == 2
    return body  # type: ignore[no-any-return]


def write_lines(sessions, job: dict[str, Any], run_id: int, texts: list[str], seq: int = 1) -> None:  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        session.execute(insert(RunLog), rows(job["id"], run_id, texts, seq))


def rows(job_id: int, run_id: int, texts: list[str], seq: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [
        {
            "run_id": run_id,
            "job_id": job_id,
            "seq": seq + i,
            "ts": now,
            "stream": "stdout",
            "line": t,
        }
        for i, t in enumerate(texts)
    ]


def finish(sessions, job: dict[str, Any], status: str = "SUCCEEDED") -> None:  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        session.execute(update(Run).where(Run.job_id == job["id"]).values(status=status))
        session.execute(update(Job).where(Job.id == job["id"]).values(status=status))


def parse_sse(text: str) -> list[dict[str, Any]]:
    """The events of an SSE body: ``{"id", "event", "data"}`` each; comments as ``{":"}``."""
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        event: dict[str, Any] = {}
        for line in block.split("\n"):
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "":
                event[":"] = value
            elif name == "data":
                event["data"] = json.loads(value)
            else:
                event[name] = value
        events.append(event)
    return events


def collect(items: AsyncIterator[StreamItem], timeout: float = 20) -> list[StreamItem]:
    async def run() -> list[StreamItem]:
        return [item async for item in items]

    return asyncio.run(asyncio.wait_for(run(), timeout))


# -- framing and resumption over HTTP ------------------------------------------------


def test_a_followed_log_is_server_sent_events_ending_with_the_jobs_status(api, sessions, job):  # type: ignore[no-untyped-def]
    write_lines(sessions, job, job["runs"][0], ["one", "two"])
    write_lines(sessions, job, job["runs"][1], ["three"])
    finish(sessions, job)

    answer = api.get(f"/v1/jobs/{job['id']}/logs?follow=true", headers=SSE)

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert answer.headers["cache-control"] == "no-cache"
    assert answer.headers["x-accel-buffering"] == "no"
    events = parse_sse(answer.text)
    assert events[0] == {"retry": str(streams.RETRY_MILLISECONDS)}
    lines = events[1:-1]
    assert [e["event"] for e in lines] == ["line"] * 3
    assert [e["data"]["line"] for e in lines] == ["one", "two", "three"]
    assert [int(e["id"]) for e in lines] == [e["data"]["id"] for e in lines]
    assert lines[0]["data"]["host_name"] == "host-000" and lines[0]["data"]["seq"] == 1
    assert events[-1] == {"event": "end", "data": {"job_status": "SUCCEEDED"}}


def test_last_event_id_resumes_with_exactly_the_remaining_lines(api, sessions, job):  # type: ignore[no-untyped-def]
    write_lines(sessions, job, job["runs"][0], [f"l{i}" for i in range(10)])
    finish(sessions, job)
    url = f"/v1/jobs/{job['id']}/logs?follow=true"
    ids = [int(e["id"]) for e in parse_sse(api.get(url, headers=SSE).text) if e.get("id")]

    resumed = parse_sse(api.get(url, headers={**SSE, "Last-Event-ID": str(ids[3])}).text)

    assert [e["data"]["line"] for e in resumed if e.get("event") == "line"] == [
        f"l{i}" for i in range(4, 10)
    ]
    # The header wins over after= (a browser reconnects with the URL it first opened);
    # a header that is not an id is ignored.
    again = api.get(url + f"&after={ids[0]}", headers={**SSE, "Last-Event-ID": str(ids[8])})
    assert [e["data"]["line"] for e in parse_sse(again.text) if "id" in e] == ["l9"]
    bad = api.get(url + f"&after={ids[7]}", headers={**SSE, "Last-Event-ID": "x"})
    assert [e["data"]["line"] for e in parse_sse(bad.text) if "id" in e] == ["l8", "l9"]


def test_without_event_stream_in_accept_the_same_url_answers_ndjson(api, sessions, job):  # type: ignore[no-untyped-def]
    write_lines(sessions, job, job["runs"][0], ["a"])
    finish(sessions, job, "FAILED")

    answer = api.get(f"/v1/jobs/{job['id']}/logs?follow=true")

    assert answer.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(x) for x in answer.text.splitlines()]
    assert lines[0]["line"] == "a" and lines[1] == {"end": True, "job_status": "FAILED"}


def test_a_followed_run_ends_when_the_run_does_with_both_statuses(api, sessions, job):  # type: ignore[no-untyped-def]
    first, second = job["runs"]
    write_lines(sessions, job, first, ["mine"])
    write_lines(sessions, job, second, ["not mine"])
    with transaction(sessions) as session:
        session.execute(update(Run).where(Run.id == first).values(status="SUCCEEDED"))

    answer = api.get(f"/v1/jobs/{job['id']}/logs?follow=true&run={first}", headers=SSE)

    events = parse_sse(answer.text)
    assert [e["data"]["line"] for e in events if e.get("event") == "line"] == ["mine"]
    assert events[-1]["data"] == {"job_status": "PENDING", "run_status": "SUCCEEDED"}
    other = api.get(f"/v1/jobs/{job['id']}/logs?follow=true&run=999999", headers=SSE)
    assert other.status_code == 404 and other.json()["code"] == "not_found"


def test_followed_events_carry_their_run_and_host_and_end_after_job_finished(api, sessions, job):  # type: ignore[no-untyped-def]
    run = job["runs"][0]
    with transaction(sessions) as session:
        record_event(session, job["id"], "run_started", "go", run_id=run)
        record_event(session, job["id"], "job_finished", "done")
    finish(sessions, job)

    events = parse_sse(api.get(f"/v1/jobs/{job['id']}/events?follow=true", headers=SSE).text)

    kinds = [e["data"]["kind"] for e in events if e.get("event") == "event"]
    assert kinds[0] == "job_created" and kinds[-2:] == ["run_started", "job_finished"]
    assert [int(e["id"]) for e in events if "id" in e] == sorted(
        e["data"]["id"] for e in events if "id" in e
    )
    started = next(
        e for e in events if e.get("event") == "event" and e["data"]["kind"] == "run_started"
    )
    assert started["data"]["host_name"] == "host-000" and started["data"]["run_id"] == run
    assert events[-1] == {"event": "end", "data": {"job_status": "SUCCEEDED"}}
    resumed = api.get(
        f"/v1/jobs/{job['id']}/events?follow=true",
        headers={**SSE, "Last-Event-ID": started["id"]},
    )
    assert [e["data"]["kind"] for e in parse_sse(resumed.text) if "id" in e] == ["job_finished"]


def test_a_followed_build_log_resumes_after_its_line_number(api, sessions, root):  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        task = make_ready_task(session, root.project_id, "built")
        build_id = task.current_build_id
        now = datetime.now(UTC)
        session.add_all(BuildLog(build_id=build_id, seq=i, ts=now, line=f"b{i}") for i in (1, 2, 3))
    url = f"/v1/tasks/{task.id}/builds/latest/logs?follow=true"

    events = parse_sse(api.get(url, headers={**SSE, "Last-Event-ID": "1"}).text)

    assert [(e["id"], e["data"]["line"]) for e in events if "id" in e] == [("2", "b2"), ("3", "b3")]
    assert events[-1] == {"event": "end", "data": {"status": "READY"}}


# -- tenancy and roles -------------------------------------------------------------


def test_another_projects_job_is_404_before_any_stream_and_a_viewer_gets_403(  # type: ignore[no-untyped-def]
    api, sessions, root, job
):
    other = api.post("/v1/projects", json={"name": "other"}).json()["id"]
    outsider = TestClient(api.app, headers={**root.headers, "X-Auth-Project": other})
    for path in ("logs", "events"):
        answer = outsider.get(f"/v1/jobs/{job['id']}/{path}?follow=true", headers=SSE)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"].startswith("application/json")
    assert api.post("/v1/users", json={"name": "vera", "role": "viewer"}).status_code == 201
    token = api.post("/v1/tokens", json={"user": "vera", "name": "t"}).json()["token"]
    viewer = TestClient(
        api.app, headers={"X-Auth-Project": root.project_id, "Authorization": f"Bearer {token}"}
    )
    refused = viewer.get(f"/v1/jobs/{job['id']}/logs?follow=true", headers=SSE)
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    finish(sessions, job)
    # Events are a viewer's to read, as their page is.
    assert viewer.get(f"/v1/jobs/{job['id']}/events?follow=true", headers=SSE).status_code == 200


def test_a_job_that_stops_being_the_callers_ends_the_stream_with_an_error(
    sessions, root, job
) -> None:
    write_lines(sessions, job, job["runs"][0], ["seen"])
    items = job_log_items(reading(sessions), root.project_id, job["id"])

    async def read() -> list[StreamItem]:
        got = [await anext(items)]
        with transaction(sessions) as session:  # the job is gone from the project
            session.execute(delete(Job).where(Job.id == job["id"]))
        got.extend([item async for item in items])
        return got

    got = asyncio.run(asyncio.wait_for(read(), 10))

    assert [i.event for i in got] == ["line", "error"]
    assert got[1].data["status"] == 404 and got[1].id is None


# -- keep-alive and closing --------------------------------------------------------


def test_silence_is_filled_with_keep_alives_and_closing_closes_the_source() -> None:
    closed = asyncio.Event()

    async def slow() -> AsyncIterator[int]:
        try:
            yield 1
            await asyncio.sleep(0.35)
            yield 2
            await asyncio.sleep(60)
            yield 3
        finally:
            closed.set()

    async def read() -> list[int | None]:
        seen: list[int | None] = []
        wrapped = with_keep_alive(slow(), 0.1)
        async for item in wrapped:
            seen.append(item)
            if item == 2:
                break
        await wrapped.aclose()  # the client went away while the source waits
        return seen

    seen = asyncio.run(asyncio.wait_for(read(), 5))

    assert seen[0] == 1 and seen[-1] == 2 and 2 <= seen.count(None) <= 4
    assert closed.is_set()


def test_an_sse_response_sends_keep_alive_comments_while_the_job_is_quiet(
    api, sessions, job, monkeypatch
) -> None:
    monkeypatch.setattr(streams, "KEEP_ALIVE_SECONDS", 0.2)
    write_lines(sessions, job, job["runs"][0], ["early"])
    timer = threading.Timer(1.0, finish, (sessions, job))
    timer.start()
    try:
        answer = api.get(f"/v1/jobs/{job['id']}/logs?follow=true", headers=SSE)
    finally:
        timer.join()

    events = parse_sse(answer.text)
    assert events[1]["data"]["line"] == "early"
    assert {":": "keep-alive"} in events[2:-1]
    assert events[-1]["event"] == "end"


# -- exactness while several transactions write --------------------------------------


def test_two_runs_writing_at_once_reach_a_reader_reconnecting_at_every_line_once_in_order(
    sessions, root, job, monkeypatch
) -> None:
    """Two writers commit lines of one job in overlapping transactions (as two runners
    do); a reader that resumes after every single line still gets each line once."""
    monkeypatch.setattr(streams, "FIRST_PAUSE", 0.01)
    per_run, batches = 60, 12
    errors: list[BaseException] = []

    def writer(run_id: int, name: str, seed: int) -> None:
        chance = random.Random(seed)
        try:
            for batch in range(batches):
                size = per_run // batches
                texts = [f"{name}-{batch * size + i}" for i in range(size)]
                with transaction(sessions) as session:
                    session.execute(
                        insert(RunLog), rows(job["id"], run_id, texts, batch * size + 1)
                    )
                    time.sleep(chance.uniform(0, 0.03))  # commit after the other's insert
                time.sleep(chance.uniform(0, 0.01))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=writer, args=(run, name, seed))
        for run, name, seed in zip(job["runs"], ("a", "b"), (1, 2), strict=True)
    ]

    async def read() -> tuple[list[StreamItem], StreamItem]:
        got: list[StreamItem] = []
        after = 0
        while True:
            items = job_log_items(reading(sessions), root.project_id, job["id"], after=after)
            item = await anext(items)
            await items.aclose()  # the connection drops after every line
            if item.event == "end":
                return got, item
            got.append(item)
            after = item.id or after

    def finish_when_written() -> None:
        for thread in threads:
            thread.join()
        finish(sessions, job)

    for thread in threads:
        thread.start()
    finisher = threading.Thread(target=finish_when_written)
    finisher.start()
    got, end = asyncio.run(asyncio.wait_for(read(), 120))
    finisher.join()

    assert not errors
    texts = [item.data["line"] for item in got]
    assert sorted(texts) == sorted([f"{n}-{i}" for n in "ab" for i in range(per_run)])
    assert len(texts) == len(set(texts)) == 2 * per_run
    ids = [item.id for item in got]
    assert ids == sorted(ids)
    for name in "ab":  # each run's lines in their own order
        assert [t for t in texts if t[0] == name] == [f"{name}-{i}" for i in range(per_run)]
    assert end.data == {"job_status": "SUCCEEDED"}


@pytest.mark.skipif(not POSTGRES_URL, reason="PostgreSQL draws ids before commit")
def test_a_line_committed_after_a_larger_id_is_not_skipped(sessions, root, job) -> None:
    """The hazard itself: line A gets an id, line B a larger one and commits first.
    A reader must not send B before A is committed."""
    first, second = job["runs"]
    slow = sessions()
    slow.begin()
    slow.execute(insert(RunLog), rows(job["id"], first, ["A"], 1))
    write_lines(sessions, job, second, ["B"])
    with transaction(sessions) as session:
        visible = [r[0].line for r in _all_lines(session, job)]
    assert visible == ["B"]  # B is visible, A (a smaller id) is not yet: the hazard

    items = job_log_items(reading(sessions), root.project_id, job["id"])

    async def read() -> list[str]:
        nothing = asyncio.ensure_future(anext(items))
        done, _ = await asyncio.wait({nothing}, timeout=1.0)
        assert not done, "B was sent while A, with a smaller id, was in flight"
        slow.commit()
        got = [(await nothing).data["line"], (await anext(items)).data["line"]]
        await items.aclose()
        return got

    try:
        assert asyncio.run(asyncio.wait_for(read(), 10)) == ["A", "B"]
    finally:
        slow.close()


def _all_lines(session: Any, job: dict[str, Any]) -> list[Any]:
    from craton_wf.services import jobs as job_service

    return job_service.read_logs(session, session.get(Job, job["id"]))


def test_a_horizon_on_sqlite_limits_nothing(sessions) -> None:
    with transaction(sessions) as session:
        horizon = CommitHorizon("run_logs")
        bound = horizon.advance(session)
    assert (bound is None) == (not POSTGRES_URL) and horizon.complete


# -- a long log read backwards -------------------------------------------------------


def test_a_runs_log_opens_at_its_tail_and_pages_back_to_its_start(api, sessions, job) -> None:
    first, second = job["runs"]
    for start in range(0, 250, 50):  # interleaved with another run's lines
        write_lines(sessions, job, first, [f"x{i}" for i in range(start, start + 50)], start + 1)
        write_lines(sessions, job, second, ["other"] * 5, start // 10 + 1)
    url = f"/v1/jobs/{job['id']}/logs?run={first}"

    tail = api.get(url + "&tail=100").json()
    assert [x["line"] for x in tail["logs"]] == [f"x{i}" for i in range(150, 250)]
    pages = [tail["logs"]]
    before = tail["previous_before"]
    while before is not None:
        page = api.get(url + f"&before={before}&limit=100").json()
        pages.insert(0, page["logs"])
        before = page["previous_before"]

    assert [x["line"] for page in pages for x in page] == [f"x{i}" for i in range(250)]
    assert [len(p) for p in pages] == [50, 100, 100]
    # A page before a line of the other run is still this run's, by id.
    other_line = api.get(f"/v1/jobs/{job['id']}/logs?run={second}&tail=1").json()["logs"][0]
    page = api.get(url + f"&before={other_line['id']}&limit=3").json()["logs"]
    assert [x["line"] for x in page] == ["x247", "x248", "x249"]
    # The whole job's tail, and the refusals.
    assert len(api.get(f"/v1/jobs/{job['id']}/logs?tail=7").json()["logs"]) == 7
    mixed = api.get(url + "&tail=5&follow=true")
    assert mixed.status_code == 400 and "backwards" in mixed.json()["message"]
    assert api.get(url + "&tail=0").status_code == 422
    assert api.get(f"/v1/jobs/{job['id']}/logs?host=nowhere&tail=1").status_code == 404
