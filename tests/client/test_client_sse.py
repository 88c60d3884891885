"""Follow streams read as Server-Sent Events (``cratonclient._sse``), and by the managers."""

from __future__ import annotations

import httpx
import pytest

import cratonclient
from cratonclient._sse import StreamEvent, parse_ndjson, parse_sse


def test_events_are_read_with_their_ids_and_comments_and_retry_are_skipped() -> None:
    body = [
        "retry: 2000",
        "",
        ": keep-alive",
        "",
        "id: 7",
        "event: line",
        'data: {"id": 7, "line": "a"}',
        "",
        "event: end",
        'data: {"job_status":',
        'data:  "SUCCEEDED"}',
        "",
    ]

    events = list(parse_sse(body))

    assert events == [
        StreamEvent("line", {"id": 7, "line": "a"}, 7),
        StreamEvent("end", {"job_status": "SUCCEEDED"}, 7),  # the last id stays, per the spec
    ]


def test_an_event_cut_before_its_blank_line_is_no_event() -> None:
    body = ["id: 1", "event: line", 'data: {"line": "whole"}', "", "id: 2", "event: line"]
    assert [e.id for e in parse_sse(body)] == [1]
    assert [e.id for e in parse_sse([*body, 'data: {"line": "half'])] == [1]


def test_ndjson_lines_become_the_same_events() -> None:
    lines = [
        '{"id": 3, "line": "x"}',
        "",
        '{"seq": 4, "line": "y"}',
        '{"end": true, "status": "READY"}',
    ]
    assert list(parse_ndjson(lines)) == [
        StreamEvent("line", {"id": 3, "line": "x"}, 3),
        StreamEvent("line", {"seq": 4, "line": "y"}, 4),
        StreamEvent("end", {"status": "READY"}),
    ]
    with pytest.raises(cratonclient.ClientError, match="Bad line"):
        list(parse_ndjson(["{nope"]))


def test_a_follow_asks_for_events_resumes_with_last_event_id_and_stops_at_the_end(
    router, client
) -> None:
    stream = [{"id": 11, "line": "eleven"}, {"id": 12, "line": "twelve"}]
    router.add("GET", "/v1/jobs/5/logs", router.sse(stream, end={"job_status": "FAILED"}))

    items = [item.to_dict() for item in client.jobs.logs(5, follow=True, last_event_id=10)]

    assert items == [*stream, {"end": True, "job_status": "FAILED"}]
    (request,) = router.requests
    assert request.headers["last-event-id"] == "10"
    assert request.headers["accept"].startswith("text/event-stream")


def test_followed_events_and_build_logs_come_from_their_streams(router, client) -> None:
    router.add(
        "GET",
        "/v1/jobs/5/events",
        router.sse([{"id": 1, "kind": "job_created"}], {"job_status": "RUNNING"}, "event"),
    )
    router.add(
        "GET",
        "/v1/tasks/4/builds/latest/logs",
        router.sse([{"seq": 1, "line": "b"}], {"status": "READY"}),
    )

    events = [e.to_dict() for e in client.jobs.follow_events(5)]
    built = [e.to_dict() for e in client.tasks.build_logs(4, follow=True, after=0)]

    assert events == [{"id": 1, "kind": "job_created"}, {"end": True, "job_status": "RUNNING"}]
    assert built == [{"seq": 1, "line": "b"}, {"end": True, "status": "READY"}]


def test_an_error_event_is_raised_as_the_error_its_status_means(router, client) -> None:
    body = (
        'event: error\ndata: {"message": "job 5 not found", "status": 404, "code": "not_found"}\n\n'
    )
    router.add(
        "GET",
        "/v1/jobs/5/logs",
        httpx.Response(200, content=body, headers={"content-type": "text/event-stream"}),
    )

    with pytest.raises(cratonclient.NotFound, match="job 5 not found"):
        list(client.jobs.logs(5, follow=True))
