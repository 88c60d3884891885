"""Creating a job over a fleet: ``create_job`` on 10,000 (or 100,000) hosts, in the API's
one transaction, against the same rows written with hand-written, set-based SQL.

    python -m bench.job_create [--database-url postgresql+psycopg://…] [--hosts 10000]
                               [--repeat 3] [--concurrency 50] [--workflows one,nine]

Seeds ``--hosts`` hosts as ``bench.host_pages`` does (one insert per table;
``ANALYZE`` on PostgreSQL, as a fleet that has been there a while): a project
with a cloud, 10 regions and 100 cells, every scope with variables (some
overriding others), each host with its own variables and two labels; here
also one host in four is the parent of the three after it (a chassis and its
sleds), so each host's variables resolve through the whole chain: host →
parent → cell → region → cloud → project. Two workflows: one step (an
audit) and nine steps in sequence (a maintenance runbook). Each job targets
every host by label.

What is timed, for each workflow:

- craton-wf: ``services.jobs.create_job`` and the commit, as ``POST /v1/jobs``
  runs them (targets found, variables resolved, steps and payloads
  snapshotted, the graph stored, the first hosts started);
- the floor: the rows that job left (job, job hosts with the same payload
  snapshots, runs, dependencies, events, the first ``--concurrency`` hosts
  running and their first runs queued) written by hand: the job hosts with
  ``COPY`` on PostgreSQL (``executemany`` on SQLite), runs and dependencies
  with one ``INSERT … SELECT`` each, in one transaction. The payloads are
  known beforehand, so the floor resolves nothing: it is what the database
  needs to store such a job at best.

The two alternate, ``--repeat`` times each (the median counts); both jobs'
hosts, runs and dependencies are counted by status and compared. Targets:
at most 1 s for 10,000 hosts and 10 s for 100,000. It asserts nothing on the
times: a busy machine gives numbers, not failures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, text, update

from bench import host_pages
from bench.dispatch import process_seconds
from bench.harness import Platform, add_ready_task, add_workflow, make_platform
from craton_wf.db.engine import transaction
from craton_wf.db.models import Host, Job, JobHost, Run, RunDependency
from craton_wf.services import jobs as job_service

NINE_STEPS = [
    "disable-compute",
    "migrate-vms",
    "pre-check",
    "silence-alerts",
    "patch",
    "reboot",
    "post-check",
    "unsilence-alerts",
    "enable-compute",
]
WORKFLOWS = {"one": ["audit"], "nine": NINE_STEPS}
TARGET_SECONDS_PER_10K = 1.0


def seed(platform: Platform, hosts: int) -> None:
    """``bench.host_pages``'s inventory, one host in four then the parent of the
    three after it (a chassis and its sleds)."""
    ids = host_pages.seed(platform.settings.database_url, platform.project_id, hosts)
    with transaction(platform.sessions) as session:
        offset = (Host.id - ids[0]) % 4  # ids[0] is the smallest: they are in order
        session.execute(
            update(Host).where(offset != 0).values(parent_id=Host.id - offset),
            execution_options={"synchronize_session": False},
        )
    if platform.settings.database_url.startswith("postgresql"):
        analyze(platform)


def analyze(platform: Platform) -> None:
    engine = platform.sessions.kw["bind"]
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE"))


@dataclass
class Timing:
    job_id: int
    wall: float  # seconds from the transaction's start to its commit
    cpu: float  # CPU seconds of this process and of its PostgreSQL backend meanwhile


class Clock:
    """Wall and CPU time of one transaction: this process's (SQLite works in it)
    and, on PostgreSQL, its connection's server process's, read from ``/proc``
    (the server runs on this machine). On a machine shared with other work,
    the wall time includes waiting for a core; the CPU time much less."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        self.backend: int | None = None
        self.backend_cpu = 0.0

    def watch(self, connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            self.backend = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
            self.backend_cpu = process_seconds(self.backend)

    def stop(self, job_id: int) -> Timing:
        wall, cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        if self.backend is not None:
            cpu += process_seconds(self.backend) - self.backend_cpu
        return Timing(job_id, wall, cpu)


def create_with_service(platform: Platform, workflow: str, concurrency: int) -> Timing:
    clock = Clock()
    with transaction(platform.sessions) as session:
        clock.watch(session.connection())
        spec = {"workflow": workflow, "filters": {"label": "bench"}, "concurrency": concurrency}
        job_id = job_service.create_job(session, platform.project_id, None, spec).id
    return clock.stop(job_id)


@dataclass
class Template:
    """What the floor writes: the rows of a job made by the service, read back."""

    job: dict[str, Any]
    hosts: list[dict[str, Any]]  # host_id, host_name, host (the payload snapshot)
    steps: list[dict[str, Any]]
    concurrency: int


def read_template(platform: Platform, job_id: int) -> Template:
    with transaction(platform.sessions) as session:
        job = session.get(Job, job_id)
        assert job is not None
        hosts = [
            {"host_id": host_id, "host_name": name, "host": snapshot}
            for host_id, name, snapshot in session.execute(
                select(JobHost.host_id, JobHost.host_name, JobHost.host)
                .where(JobHost.job_id == job_id)
                .order_by(JobHost.position)
            )
        ]
        fields = ("name", "workflow_id", "workflow_version", "variables", "targets", "steps")
        return Template(
            job={name: getattr(job, name) for name in fields},
            hosts=hosts,
            steps=list(job.steps),
            concurrency=job.concurrency,
        )


def create_by_hand(platform: Platform, template: Template) -> Timing:
    """The template's rows, in one transaction, with set-based SQL."""
    clock = Clock()
    engine = platform.sessions.kw["bind"]
    postgres = engine.dialect.name == "postgresql"
    now = datetime.now(UTC)
    with engine.begin() as connection:
        clock.watch(connection)
        job_id = connection.execute(
            insert(Job)
            .values(
                project_id=platform.project_id,
                status="PENDING",
                concurrency=template.concurrency,
                max_failures=0,
                created_at=now,
                **template.job,
            )
            .returning(Job.id)
        ).scalar_one()
        started = len(template.hosts[: template.concurrency])
        host_rows = [
            (
                job_id,
                row["host_id"],
                row["host_name"],
                position,
                "RUNNING" if position < started else "PENDING",
                json.dumps(row["host"]),
                now if position < started else None,
            )
            for position, row in enumerate(template.hosts)
        ]
        columns = "job_id, host_id, host_name, position, status, host, started_at"
        events = [(job_id, "job_created", "", "{}", now)] + [
            (job_id, "host_started", row["host_name"], "{}", now)
            for row in template.hosts[:started]
        ]
        if postgres:
            copy(connection, f"job_hosts ({columns})", host_rows)
            copy(connection, "job_events (job_id, kind, message, data, created_at)", events)
        else:
            raw = connection.connection.driver_connection
            assert raw is not None
            raw.executemany(
                f"INSERT INTO job_hosts ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?)", host_rows
            )
            raw.executemany(
                "INSERT INTO job_events (job_id, kind, message, data, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                events,
            )
        insert_runs(connection, postgres, job_id, template, now)
        connection.execute(
            text(
                "INSERT INTO run_dependencies (run_id, depends_on_id)"
                " SELECT r.id, d.id FROM job_hosts h"
                " JOIN runs r ON r.job_host_id = h.id"
                " JOIN runs d ON d.job_host_id = h.id AND d.step_index = r.step_index - 1"
                " WHERE h.job_id = :job"
            ),
            {"job": job_id},
        )
    return clock.stop(job_id)


def insert_runs(
    connection: Connection, postgres: bool, job_id: int, template: Template, now: datetime
) -> None:
    """Every (host, step) run, host by host, the first step of running hosts queued."""
    json_cast = "CAST({} AS jsonb)" if postgres else "{}"
    uid = "substr(md5(random()::text), 1, 12)" if postgres else "lower(hex(randomblob(6)))"
    steps = ", ".join(
        f"(:i{i}, :n{i}, :t{i}, :b{i}, :img{i}, :c{i}, :a{i}, :m{i})"
        for i in range(len(template.steps))
    )
    params: dict[str, Any] = {"job": job_id, "now": now}
    for i, step in enumerate(template.steps):
        params.update(
            {
                f"i{i}": i,
                f"n{i}": step["name"],
                f"t{i}": step["task_id"],
                f"b{i}": step["build_id"],
                f"img{i}": step["image"],
                f"c{i}": json.dumps(step["command"]),
                f"a{i}": json.dumps(step.get("args") or {}),
                f"m{i}": 1 + int(step.get("retries") or 0),
            }
        )
    connection.execute(
        text(
            f"WITH s (step_index, step_name, task_id, build_id, image, command, args,"
            f" max_attempts) AS (VALUES {steps})"
            " INSERT INTO runs (uid, job_id, job_host_id, project_id, step_index, step_name,"
            " task_id, build_id, image, command, args, required, status, attempt,"
            " max_attempts, outputs, log_seq, log_bytes, attempt_log_seq, log_gap, log_capped,"
            " lease_epoch, created_at, queued_at)"
            f" SELECT {uid}, :job, h.id, j.project_id, s.step_index, s.step_name, s.task_id,"
            f" s.build_id, s.image, {json_cast.format('s.command')},"
            f" {json_cast.format('s.args')}, true,"
            " CASE WHEN h.status = 'RUNNING' AND s.step_index = 0 THEN 'QUEUED'"
            " ELSE 'PENDING' END, 0, s.max_attempts, "
            + json_cast.format("'{}'")
            + ", 0, 0, 0, false, false, 0, :now,"
            " CASE WHEN h.status = 'RUNNING' AND s.step_index = 0 THEN :now END"
            " FROM job_hosts h JOIN jobs j ON j.id = h.job_id, s"
            " WHERE h.job_id = :job ORDER BY h.position, s.step_index"
        ).bindparams(**params)
    )


def copy(connection: Connection, target: str, rows: list[tuple[Any, ...]]) -> None:
    raw = connection.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor, cursor.copy(f"COPY {target} FROM STDIN") as stream:  # type: ignore[attr-defined]
        for row in rows:
            stream.write_row(row)


def shape(platform: Platform, job_id: int) -> tuple[Any, ...]:
    """Hosts and runs by status, and the number of dependencies: what both jobs must share."""
    with transaction(platform.sessions) as session:
        statuses = tuple(
            tuple(
                session.execute(
                    select(model.status, func.count())
                    .where(model.job_id == job_id)
                    .group_by(model.status)
                    .order_by(model.status)
                ).all()
            )
            for model in (JobHost, Run)
        )
        edges = session.execute(
            select(func.count())
            .select_from(RunDependency)
            .join(Run, Run.id == RunDependency.run_id)
            .where(Run.job_id == job_id)
        ).scalar_one()
    return statuses, edges


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--workflows", default="one,nine", help="one, nine or both (one,nine)")
    args = parser.parse_args()
    platform = make_platform(args.database_url, executor="fake")
    started = time.perf_counter()
    seed(platform, args.hosts)
    print(f"{args.hosts} hosts seeded in {time.perf_counter() - started:.1f}s", flush=True)
    for name in {step for steps in WORKFLOWS.values() for step in steps}:
        add_ready_task(platform, name, "true")
    target = TARGET_SECONDS_PER_10K * max(1.0, args.hosts / 10_000)
    for workflow in args.workflows.split(","):
        steps = WORKFLOWS[workflow]
        add_workflow(platform, workflow, [{"task": step, "name": step} for step in steps])
        ours: list[Timing] = []
        floor: list[Timing] = []
        for _ in range(max(1, args.repeat)):
            ours.append(create_with_service(platform, workflow, args.concurrency))
            if len(ours) == 1:
                template = read_template(platform, ours[0].job_id)
                expected = shape(platform, ours[0].job_id)
            floor.append(create_by_hand(platform, template))
            assert shape(platform, floor[-1].job_id) == expected
            print(
                f"  (craton-wf {ours[-1].wall:.2f}s, CPU {ours[-1].cpu:.2f}s; "
                f"floor {floor[-1].wall:.2f}s, CPU {floor[-1].cpu:.2f}s)",
                flush=True,
            )
        wall, base = (
            statistics.median(t.wall for t in ours),
            statistics.median(t.wall for t in floor),
        )
        cpu, base_cpu = (
            statistics.median(t.cpu for t in ours),
            statistics.median(t.cpu for t in floor),
        )
        runs = args.hosts * len(steps)
        verdict = "OK" if wall <= target else "OVER TARGET"
        print(
            f"{workflow}-step job over {args.hosts} hosts ({runs} runs): craton-wf {wall:.2f}s "
            f"(CPU {cpu:.2f}s), hand-written SQL {base:.2f}s (CPU {base_cpu:.2f}s); "
            f"ratio {wall / base:.2f} (CPU {cpu / base_cpu:.2f}); "
            f"target <= {target:.0f}s {verdict}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
