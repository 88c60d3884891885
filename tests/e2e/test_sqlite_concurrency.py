"""``craton-wf serve`` on SQLite under many clients while another connection holds
the write lock: reads go on, writes that time out answer 503 with Retry-After,
nothing answers 500."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.sqlite_concurrency import Served, add_region, hold_write_lock, load, start_server

LOCK_TIMEOUT = 1.5


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    running = start_server(tmp_path, lock_timeout=LOCK_TIMEOUT)
    yield running
    running.stop()


def _holding(served: Served, seconds: float) -> threading.Thread:
    held = threading.Event()
    holder = threading.Thread(target=hold_write_lock, args=(served.database, seconds, held))
    holder.start()
    held.wait()
    return holder


def test_reads_answer_while_another_connection_holds_the_write_lock(served: Served) -> None:
    region_id, host_ids = add_region(served, 3)
    holder = _holding(served, 3 * LOCK_TIMEOUT + 2)
    try:
        with httpx.Client(base_url=served.url, headers=served.headers, timeout=60) as client:
            start = time.monotonic()
            listed = client.get("/v1/hosts")
            shown = client.get(f"/v1/hosts/{host_ids[0]}")
            tokens = client.get("/v1/users")
            reads = time.monotonic() - start
            start = time.monotonic()
            refused = client.post(
                "/v1/hosts",
                json={"name": "late", "ip_address": "10.9.9.9", "region_id": region_id},
            )
            waited = time.monotonic() - start
    finally:
        holder.join()
    assert (listed.status_code, shown.status_code, tokens.status_code) == (200, 200, 200)
    assert len(listed.json()["hosts"]) == 3
    assert reads < LOCK_TIMEOUT, f"three reads took {reads:.1f}s behind the writer"
    assert refused.status_code == 503, refused.text
    assert refused.headers["Retry-After"] == "1"
    assert refused.json() == {
        "message": "The database is busy; try again shortly.",
        "status": 503,
        "code": "database_busy",
    }
    assert waited >= LOCK_TIMEOUT * 0.9


def test_a_hundred_clients_get_answers_or_503_with_retry_after_never_500(served: Served) -> None:
    figures = load(served, clients=100, requests=10, writes=0.3, hold=2 * LOCK_TIMEOUT + 1)
    statuses = Counter((a.kind, a.status) for a in figures.answers)
    assert sum(statuses.values()) == 1000
    assert not [a for a in figures.answers if a.status not in (200, 201, 503)], statuses
    busy = [a for a in figures.answers if a.status == 503]
    assert busy, f"the held lock timed no write out: {statuses}"
    assert all(a.retry_after == "1" and a.code == "database_busy" for a in busy)
    assert all(a.kind == "write" for a in busy), statuses  # reads never wait for the lock
    assert statuses[("write", 201)] > 0


def test_reads_answer_while_more_writes_wait_for_the_lock_than_the_server_has_threads(
    tmp_path: Path,
) -> None:
    served = start_server(tmp_path, lock_timeout=6)
    try:
        region_id, _ = add_region(served, 2)
        holder = _holding(served, 8)

        async def crowd() -> tuple[httpx.Response, float, list[httpx.Response]]:
            limits = httpx.Limits(max_connections=100)
            async with httpx.AsyncClient(
                base_url=served.url, headers=served.headers, timeout=60, limits=limits
            ) as client:
                writes = [
                    asyncio.create_task(
                        client.post(
                            "/v1/hosts",
                            json={
                                "name": f"w{i}",
                                "ip_address": "10.8.0.1",
                                "region_id": region_id,
                            },
                        )
                    )
                    for i in range(60)
                ]
                await asyncio.sleep(1.5)  # they all wait for the lock now
                start = time.monotonic()
                read = await client.get("/v1/hosts")
                took = time.monotonic() - start
                return read, took, list(await asyncio.gather(*writes))

        read, took, writes = asyncio.run(crowd())
        holder.join()
    finally:
        served.stop()
    assert read.status_code == 200
    assert took < 2, f"a read waited {took:.1f}s behind writes waiting for the lock"
    assert {w.status_code for w in writes} <= {201, 503}
    assert all(w.headers["Retry-After"] == "1" for w in writes if w.status_code == 503)
