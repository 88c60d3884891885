"""Live streams over real connections (uvicorn in-process): open streams hold no worker
thread while idle, so many browser tabs leave the API answering; a stream whose client
went away is closed."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from craton_wf.api import streams
from craton_wf.api.app import create_app
from craton_wf.db.engine import transaction
from tests.e2e.conftest import free_port
from tests.factories import make_inventory, make_ready_task

#: More than the worker threads a sync route shares (anyio's default limiter: 40).
STREAMS = 60


@pytest.fixture
def live_url(settings, sessions, root) -> Iterator[str]:  # type: ignore[no-untyped-def]
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, sessions), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=20)


@pytest.fixture
def running_job(sessions, root, live_url) -> int:  # type: ignore[no-untyped-def]
    """A job no runner runs: its streams stay open, quiet."""
    with transaction(sessions) as session:
        hosts = make_inventory(session, root.project_id, 1)
        make_ready_task(session, root.project_id, "quiet")
    made = httpx.post(
        f"{live_url}/v1/jobs", json={"task": "quiet", "hosts": [hosts[0].id]}, headers=root.headers
    )
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


def test_many_open_streams_leave_the_api_answering(live_url, root, running_job) -> None:  # type: ignore[no-untyped-def]
    headers = {**root.headers, "Accept": "text/event-stream"}
    url = f"{live_url}/v1/jobs/{running_job}/logs?follow=true"

    async def scenario() -> tuple[int, float]:
        limits = httpx.Limits(max_connections=STREAMS + 5)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:
            opened: list[Any] = []
            try:
                for _ in range(STREAMS):
                    stream = client.stream("GET", url, headers=headers)
                    response = await stream.__aenter__()
                    opened.append(stream)
                    assert response.status_code == 200
                    first = await response.aiter_text().__anext__()
                    assert first.startswith("retry:")
                await asyncio.sleep(1.5)  # every stream has polled a few times meanwhile
                started = time.monotonic()
                shown = await client.get(
                    f"{live_url}/v1/jobs/{running_job}", headers=root.headers, timeout=10
                )
                return shown.status_code, time.monotonic() - started
            finally:
                for stream in opened:
                    await stream.__aexit__(None, None, None)

    status, took = asyncio.run(asyncio.wait_for(scenario(), 60))

    assert status == 200
    assert took < 3.0, f"a plain GET took {took:.1f} s with {STREAMS} streams open"


def test_a_stream_is_closed_when_its_client_goes_away(  # type: ignore[no-untyped-def]
    live_url, root, running_job, monkeypatch
) -> None:
    closed = threading.Event()
    seen: list[Any] = []
    original = streams.job_log_items

    async def watched(*args: Any, **kwargs: Any) -> Any:
        try:
            async for item in original(*args, **kwargs):
                seen.append(item)
                yield item
        except BaseException as exc:
            seen.append(exc)
            raise
        finally:
            closed.set()

    monkeypatch.setattr("craton_wf.api.routes.jobs.job_log_items", watched)
    headers = {**root.headers, "Accept": "text/event-stream"}
    with httpx.stream(
        "GET", f"{live_url}/v1/jobs/{running_job}/logs?follow=true", headers=headers, timeout=10
    ) as response:
        assert response.status_code == 200
        assert next(response.iter_text()).startswith("retry:")

    assert closed.wait(10), "the stream went on polling after its client left"
