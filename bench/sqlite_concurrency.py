"""Many API clients on the embedded SQLite database: latencies and answers, reads vs writes.

    python -m bench.sqlite_concurrency [--clients 100] [--requests 20] [--writes 0.2]
                                       [--hold 0] [--lock-timeout 30]

Starts ``craton-wf serve`` (API and embedded runner) on a fresh SQLite file,
then ``--clients`` concurrent HTTP clients each send ``--requests`` requests:
a share ``--writes`` of them create a host (POST), the rest list hosts or show
one (GET). With ``--hold N`` another connection takes the database's write
lock for N seconds while the clients run (as a long write would), so writes
wait for it, and time out when ``--lock-timeout`` is shorter. Prints, for
reads and writes apart, p50/p99/max latency and the count of each status.
It asserts nothing: a server error (500) is shown, not raised.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.harness import wait_until_ready


@dataclass
class Answer:
    kind: str  # "read" or "write"
    status: int
    seconds: float
    retry_after: str | None
    code: str | None


@dataclass
class Served:
    url: str
    database: Path
    headers: dict[str, str]
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


@dataclass
class Figures:
    answers: list[Answer] = field(default_factory=list)

    def of(self, kind: str) -> list[Answer]:
        return [a for a in self.answers if a.kind == kind]


def start_server(workdir: Path, lock_timeout: float) -> Served:
    """``craton-wf serve`` on a fresh SQLite database in ``workdir``, bootstrapped."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    database = workdir / "craton-wf.db"
    env = {
        **os.environ,
        "CRATON_WF_DATABASE_URL": f"sqlite:///{database}",
        "CRATON_WF_DATA_DIR": str(workdir / "data"),
        "CRATON_WF_API_PORT": str(port),
        "CRATON_WF_EXECUTOR": "fake",
        "CRATON_WF_SQLITE_LOCK_TIMEOUT_SECONDS": str(lock_timeout),
    }
    cli = [sys.executable, "-m", "craton_wf.cli"]
    credentials = json.loads(
        subprocess.run(
            [*cli, "bootstrap", "--format", "json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    log = workdir / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen([*cli, "serve"], env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_until_ready(process, url, log, timeout=30)
    headers = {
        "X-Auth-Project": credentials["project_id"],
        "X-Auth-User": credentials["username"],
        "X-Auth-Token": credentials["token"],
    }
    return Served(url, database, headers, process, log)


def add_region(served: Served, hosts: int) -> tuple[int, list[int]]:
    """A cloud and region to create hosts in, and ``hosts`` hosts to read."""
    with httpx.Client(base_url=served.url, headers=served.headers, timeout=60) as client:
        cloud = client.post("/v1/clouds", json={"name": "bench"}).raise_for_status().json()
        region = (
            client.post("/v1/regions", json={"name": "bench", "cloud_id": cloud["id"]})
            .raise_for_status()
            .json()
        )
        ids = [
            client.post(
                "/v1/hosts",
                json={"name": f"seed{i}", "ip_address": f"10.0.{i}.1", "region_id": region["id"]},
            )
            .raise_for_status()
            .json()["id"]
            for i in range(hosts)
        ]
    return region["id"], ids


def hold_write_lock(database: Path, seconds: float, held: threading.Event) -> None:
    """Another process's long write: the database's write lock held for ``seconds``."""
    connection = sqlite3.connect(database, timeout=60, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(seconds)
        connection.execute("ROLLBACK")
    finally:
        connection.close()


async def _client(
    served: Served,
    number: int,
    requests: int,
    writes: float,
    region_id: int,
    host_ids: list[int],
    figures: Figures,
) -> None:
    rng = random.Random(number)
    limits = httpx.Limits(max_connections=1)
    async with httpx.AsyncClient(
        base_url=served.url, headers=served.headers, timeout=120, limits=limits
    ) as client:
        for i in range(requests):
            if rng.random() < writes:
                kind = "write"
                body = {
                    "name": f"c{number}-{i}",
                    "ip_address": f"10.{1 + number // 250}.{number % 250}.{i % 250}",
                    "region_id": region_id,
                }
                call = client.post("/v1/hosts", json=body)
            elif rng.random() < 0.5:
                kind, call = "read", client.get("/v1/hosts", params={"limit": 20})
            else:
                kind, call = "read", client.get(f"/v1/hosts/{rng.choice(host_ids)}")
            start = time.perf_counter()
            response = await call
            seconds = time.perf_counter() - start
            try:
                code = response.json().get("code") if response.status_code >= 400 else None
            except ValueError:
                code = None
            figures.answers.append(
                Answer(
                    kind, response.status_code, seconds, response.headers.get("retry-after"), code
                )
            )


def load(
    served: Served,
    *,
    clients: int,
    requests: int,
    writes: float,
    hold: float = 0.0,
) -> Figures:
    """``clients`` concurrent clients; with ``hold``, another connection holds the write
    lock for that long from just before they start."""
    region_id, host_ids = add_region(served, 20)
    figures = Figures()
    holder = None
    if hold:
        held = threading.Event()
        holder = threading.Thread(target=hold_write_lock, args=(served.database, hold, held))
        holder.start()
        held.wait()

    async def everyone() -> None:
        await asyncio.gather(
            *(
                _client(served, n, requests, writes, region_id, host_ids, figures)
                for n in range(clients)
            )
        )

    asyncio.run(everyone())
    if holder is not None:
        holder.join()
    return figures


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def summary(figures: Figures) -> list[str]:
    lines = []
    for kind in ("read", "write"):
        answers = figures.of(kind)
        seconds = [a.seconds for a in answers]
        statuses = Counter(a.status for a in answers)
        lines.append(
            f"{kind + 's':6} n={len(answers):5}  p50 {percentile(seconds, 0.5) * 1000:7.1f} ms  "
            f"p99 {percentile(seconds, 0.99) * 1000:7.1f} ms  "
            f"max {max(seconds, default=0) * 1000:7.1f} ms  "
            f"statuses {dict(sorted(statuses.items()))}"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--requests", type=int, default=20, help="per client")
    parser.add_argument("--writes", type=float, default=0.2, help="share of requests that write")
    parser.add_argument("--hold", type=float, default=0.0, help="seconds a writer holds the lock")
    parser.add_argument("--lock-timeout", type=float, default=30.0)
    args = parser.parse_args()
    served = start_server(Path(tempfile.mkdtemp(prefix="craton-bench-")), args.lock_timeout)
    try:
        start = time.perf_counter()
        figures = load(
            served, clients=args.clients, requests=args.requests, writes=args.writes, hold=args.hold
        )
        elapsed = time.perf_counter() - start
    finally:
        served.stop()
    print(
        f"{args.clients} clients x {args.requests} requests, {args.writes:.0%} writes, "
        f"write lock held {args.hold:.1f}s, lock timeout {args.lock_timeout:.1f}s: {elapsed:.1f}s"
    )
    for line in summary(figures):
        print(line)
    unanswered = [a for a in figures.answers if a.status >= 500 and not a.retry_after]
    if unanswered:
        print(f"{len(unanswered)} server errors without Retry-After")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
