"""Host pages at fleet scale: ``GET /v1/hosts?limit=100&marker=…`` under 32 concurrent clients.

    python -m bench.host_pages [--database-url postgresql+psycopg://…] [--hosts 100000]
                               [--clients 32] [--seconds 10] [--repeat 3] [--workers N]

Seeds ``--hosts`` hosts (one insert per table, then ``ANALYZE`` on PostgreSQL)
in a project with a cloud, 10 regions and 100 cells, each scope with variables
and each host with two labels, so a page's resolved variables walk the whole
chain (host → cell → region → cloud → project). Starts the real ``craton-wf
serve`` (fake executor, embedded runner) on that database, and drives it with
``wrk``: ``--clients`` connections walking the pages in marker order, each
request sending the token. In the same run, the same load goes to ``/healthz``
of the same server (the same middleware, no authentication, no query): the
ratio between the two is what a page costs beyond the platform's floor. The
CPU that serve's processes (and PostgreSQL's backends of the benchmark's
database) spent per answer is read from ``/proc``: on a shared machine it
says what a page costs when the latencies say mostly how busy the cores were.

``wrk`` is C (``apt-get install wrk``), so the clients take little of the
cores the server needs; latencies are closed-loop, so on a machine with few
cores p50 is about clients / throughput. Each case runs ``--repeat`` times
after a warm-up, and the median (by requests/s) counts. It asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import create_engine, insert, select, text

from bench.dispatch import process_seconds
from bench.harness import fresh_database, wait_until_ready
from craton_wf.db.engine import make_engine, make_session_factory, transaction
from craton_wf.db.models import Host, HostLabel
from craton_wf.services import inventory
from craton_wf.settings import Settings

PAGE = 100
REGIONS = 10
CELLS_PER_REGION = 10

WRK_SCRIPT = """
local paths = {}
local position = 1

function init(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
  position = math.random(#paths)
end

function request()
  local path = paths[position]
  position = position % #paths + 1
  return wrk.format("GET", path)
end

function done(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    server_cpu: float = 0.0  # CPU seconds of serve's processes meanwhile
    database_cpu: float = 0.0  # and of PostgreSQL's backends of its database

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    def describe(self) -> str:
        errors = f", {self.non_2xx} non-2xx" if self.non_2xx else ""
        errors += f", {self.socket_errors} socket errors" if self.socket_errors else ""
        return (
            f"p50 {self.p50_ms:7.1f} ms  p99 {self.p99_ms:7.1f} ms  "
            f"{self.per_second:7.1f} req/s  CPU per answer: serve "
            f"{self.server_cpu / self.requests * 1000:.2f} ms, PostgreSQL "
            f"{self.database_cpu / self.requests * 1000:.2f} ms{errors}"
        )


@dataclass
class Server:
    url: str
    headers: dict[str, str]
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def seed(database_url: str, project_id: str, hosts: int) -> list[int]:
    """The inventory; the ids of the hosts in order."""
    settings = Settings(database_url=database_url)
    engine = make_engine(settings)
    sessions = make_session_factory(engine)
    now = datetime.now(UTC)
    with transaction(sessions) as session:
        inventory.get_project(session, project_id).variables = {"site": "bench", "tier": "p"}
        cloud = inventory.create_cloud(
            session, project_id, {"name": "cloud", "variables": {"tier": "c", "ntp": "10.0.0.1"}}
        )
        cells = []
        for r in range(REGIONS):
            region = inventory.create_region(
                session,
                project_id,
                {"name": f"region{r}", "cloud_id": cloud.id, "variables": {"region": r}},
            )
            for c in range(CELLS_PER_REGION):
                cell = inventory.create_cell(
                    session,
                    project_id,
                    {"name": f"cell{r}-{c}", "region_id": region.id, "variables": {"rack": c}},
                )
                cells.append(cell)
        rows = []
        for i in range(hosts):
            cell = cells[i % len(cells)]
            rows.append(
                {
                    "project_id": project_id,
                    "cloud_id": cell.cloud_id,
                    "region_id": cell.region_id,
                    "cell_id": cell.id,
                    "name": f"host{i:06d}",
                    "ip_address": f"10.{i // 65536}.{i // 256 % 256}.{i % 256}",
                    "device_type": "server",
                    "active": True,
                    "variables": {"slot": i % 42, "role": "compute" if i % 3 else "storage"},
                    "created_at": now,
                }
            )
        session.execute(insert(Host), rows)
        ids = list(session.execute(select(Host.id).order_by(Host.id)).scalars())
        session.execute(
            insert(HostLabel),
            [{"host_id": i, "label": label} for i in ids for label in ("bench", f"rack{i % 20}")],
        )
    if not database_url.startswith("sqlite"):
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))
    engine.dispose()
    return ids


def environment(database_url: str, workdir: Path, **settings: str) -> dict[str, str]:
    """The environment of a ``craton-wf`` on ``database_url`` with the fake executor,
    listening on a free port; ``settings`` by name (``runner_poll_seconds="60"``)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return {
        **os.environ,
        "CRATON_WF_DATABASE_URL": database_url,
        "CRATON_WF_DATA_DIR": str(workdir / "data"),
        "CRATON_WF_API_PORT": str(port),
        "CRATON_WF_EXECUTOR": "fake",
        **{f"CRATON_WF_{name.upper()}": value for name, value in settings.items()},
    }


CLI = [sys.executable, "-m", "craton_wf.cli"]


def bootstrap(env: dict[str, str]) -> dict[str, str]:
    """``craton-wf bootstrap``'s credentials (the database migrated first)."""
    return json.loads(  # type: ignore[no-any-return]
        subprocess.run(
            [*CLI, "bootstrap", "--format", "json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )


def serve(env: dict[str, str], credentials: dict[str, str], log: Path, *args: str) -> Server:
    """``craton-wf serve *args``, once its /readyz answers 200."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*CLI, "serve", *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{env['CRATON_WF_API_PORT']}"
    wait_until_ready(process, url, log, timeout=60)
    headers = {"X-Auth-Project": credentials["project_id"], "X-Auth-Token": credentials["token"]}
    return Server(url, headers, process, log)


def start(database_url: str, workdir: Path, hosts: int, workers: int | None) -> Server:
    """``craton-wf serve`` on a database seeded with ``hosts`` hosts, bootstrapped."""
    env = environment(database_url, workdir, log_level="WARNING")  # no access log line
    credentials = bootstrap(env)
    started = time.perf_counter()
    ids = seed(database_url, credentials["project_id"], hosts)
    print(f"seeded {len(ids)} hosts in {time.perf_counter() - started:.1f}s", flush=True)
    (workdir / "paths").write_text(
        "\n".join(
            f"/v1/hosts?limit={PAGE}" + (f"&marker={ids[k - 1]}" if k else "")
            for k in range(0, len(ids), PAGE)
        )
        + "\n"
    )
    (workdir / "healthz").write_text("/healthz\n")
    workers_args = ["--workers", str(workers)] if workers else []
    return serve(env, credentials, workdir / "serve.log", *workers_args)


def drive(server: Server, paths: Path, clients: int, seconds: float, authenticated: bool) -> Load:
    """``wrk`` with ``clients`` connections for ``seconds``, walking the paths listed."""
    script = paths.with_name("walk.lua")
    script.write_text(WRK_SCRIPT)
    headers = [
        argument
        for name, value in (server.headers.items() if authenticated else ())
        for argument in ("-H", f"{name}: {value}")
    ]
    result = subprocess.run(
        [
            "wrk",
            "-t",
            str(min(2, clients)),
            "-c",
            str(clients),
            "-d",
            f"{seconds:g}s",
            "--timeout",
            "30s",
            *headers,
            "-s",
            str(script),
            server.url,
            "--",
            str(paths),
        ],
        capture_output=True,
        text=True,
    )
    found = re.search(r"^RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)$", result.stdout, re.M)
    if found is None:
        raise RuntimeError(f"wrk said:\n{result.stdout}\n{result.stderr}")
    requests, micros, p50, p99, non_2xx, socket_errors = (int(v) for v in found.groups())
    return Load(requests, micros / 1e6, p50 / 1000, p99 / 1000, non_2xx, socket_errors)


def server_processes(pid: int) -> list[int]:
    """``pid`` and its descendants (serve's workers)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            with open(f"/proc/{current}/task/{current}/children") as children:
                pending += [int(child) for child in children.read().split()]
        except FileNotFoundError:
            continue
    return found


def database_backends(database_url: str) -> list[int]:
    """PostgreSQL's backends connected to the benchmark's own database; none on SQLite."""
    if database_url.startswith("sqlite"):
        return []
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return list(
                connection.execute(
                    text(
                        "SELECT pid FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).scalars()
            )
    finally:
        engine.dispose()


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    seconds = {}
    for pid in pids:
        with contextlib.suppress(FileNotFoundError):
            seconds[pid] = process_seconds(pid)
    return seconds


def spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two readings (a process new since ``before`` counts whole)."""
    return sum(value - before.get(pid, 0.0) for pid, value in after.items())


def measured(
    server: Server, database_url: str, paths: Path, clients: int, seconds: float, auth: bool
) -> Load:
    """:func:`drive`, with the CPU that serve's processes and the database spent meanwhile."""
    serve_before = cpu_seconds(server_processes(server.process.pid))
    database_before = cpu_seconds(database_backends(database_url))
    load = drive(server, paths, clients, seconds, auth)
    serve_after = cpu_seconds(server_processes(server.process.pid))
    database_after = cpu_seconds(database_backends(database_url))
    return dataclasses.replace(
        load,
        server_cpu=spent(serve_before, serve_after),
        database_cpu=spent(database_before, database_after),
    )


def median(loads: list[Load]) -> Load:
    middle = statistics.median_low([load.per_second for load in loads])
    return next(load for load in loads if load.per_second == middle)


def check_page(server: Server) -> None:
    """One page answered as the clients will see it, before timing anything."""
    answer = httpx.get(f"{server.url}/v1/hosts?limit={PAGE}", headers=server.headers, timeout=30)
    answer.raise_for_status()
    body = answer.json()
    if len(body["hosts"]) != PAGE or not body["hosts"][0]["variables"].get("site"):
        raise RuntimeError(f"unexpected page: {answer.text[:500]}")
    print(f"a page is {len(answer.content)} bytes of JSON", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", default=None, help="a PostgreSQL server's URL")
    parser.add_argument("--hosts", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None, help="serve --workers")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is needed: apt-get install wrk", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="craton-bench-"))
    url = (
        fresh_database(args.database_url)
        if args.database_url
        else f"sqlite:///{workdir / 'bench.db'}"
    )
    server = start(url, workdir, args.hosts, args.workers)
    paths = workdir / "paths"
    try:
        check_page(server)
        drive(server, paths, args.clients, 3, authenticated=True)  # warm-up
        pages, floor = [], []
        for _ in range(args.repeat):
            pages.append(measured(server, url, paths, args.clients, args.seconds, True))
            healthz = paths.with_name("healthz")
            floor.append(measured(server, url, healthz, args.clients, args.seconds, False))
    finally:
        server.stop()
    backend = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
    workers = f", serve --workers {args.workers}" if args.workers else ""
    print(
        f"{backend}, {args.hosts} hosts, {args.clients} clients, {args.seconds:.0f}s x "
        f"{args.repeat}{workers} (median by req/s):"
    )
    for name, loads in (("host pages", pages), ("/healthz  ", floor)):
        runs = ", ".join(f"{load.per_second:.0f}" for load in loads)
        print(f"  {name}  {median(loads).describe()}   (req/s of each: {runs})")
    ratio = median(floor).per_second / median(pages).per_second
    print(f"  a page costs {ratio:.1f}x a /healthz answer (target: p99 <= 50 ms, >= 600 req/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
