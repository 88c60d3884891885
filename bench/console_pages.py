"""The console's job pages on a big job: 2,000 hosts × 9 steps, and a run with a million
log lines.

    python -m bench.console_pages [--database-url postgresql+psycopg://…] [--hosts 2000]
                                  [--log-lines 1000000] [--repeat 7]

Creates the job with the services (``services.jobs.create_job``, as the API
does, on a fresh database; fake executor, no runner), then sets its runs as a
job half-way through would have them: the first four steps done on every
host, the fifth failed on 1 % of the hosts and running on 50, the rest
pending; and stores ``--log-lines`` lines for one run (one insert, ``COPY`` on
PostgreSQL). Then it signs in to the console of the real app (in process,
Starlette's test client: no network, no server process) and times each page
``--repeat`` times, printing the median and the slowest:

- the job page (header, graph coloured over 18,000 runs, the first grid page
  of 100 hosts), a later grid page, the failed hosts only, a name search, and
  the live fragment the page's script fetches;
- the jobs list;
- the big run's log: its last 500 lines (where the log pane opens), and a
  page of 500 before a line in its middle (scrolling back).

The target: each page under a second, server-side. It asserts nothing.
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from bench.harness import Platform, add_hosts, add_ready_task, add_workflow, fresh_database
from craton_wf.api.app import create_app
from craton_wf.db.bulk import insert_rows
from craton_wf.db.engine import make_engine, make_session_factory, transaction
from craton_wf.db.migrate import upgrade
from craton_wf.db.models import Job, JobHost, Run, RunLog
from craton_wf.services import jobs as job_service
from craton_wf.services.auth import bootstrap
from craton_wf.settings import Settings

STEPS = ["drain", "migrate", "pre-check", "silence", "patch", "reboot", "post-check",
         "unsilence", "undrain"]  # fmt: skip
NONCE = re.compile(r'name="sign_in_nonce" value="([^"]*)"')


def seed(platform: Platform, hosts: int) -> int:
    """The job, its runs set half-way through; returns its id."""
    ids = add_hosts(platform, hosts)
    for name in STEPS:
        add_ready_task(platform, name, "run")
    add_workflow(platform, "runbook", STEPS)
    with transaction(platform.sessions) as session:
        job = job_service.create_job(
            session, platform.project_id, None,
            {"workflow": "runbook", "hosts": ids, "concurrency": 100, "max_failures": hosts},
        )  # fmt: skip
        job_id = job.id
    now = datetime.now(UTC)
    with transaction(platform.sessions) as session:
        host_ids = list(
            session.execute(
                select(JobHost.id).where(JobHost.job_id == job_id).order_by(JobHost.position)
            ).scalars()
        )
        failed = set(host_ids[:: max(1, 100)])
        running = set(host_ids[1:51]) - failed
        session.execute(update(Job).where(Job.id == job_id).values(status="RUNNING",
                        started_at=now - timedelta(hours=1)))  # fmt: skip
        done = {
            "status": "SUCCEEDED",
            "exit_code": 0,
            "attempt": 1,
            "started_at": now - timedelta(minutes=50),
            "finished_at": now - timedelta(minutes=49),
        }
        session.execute(update(Run).where(Run.job_id == job_id, Run.step_index < 4).values(**done))
        session.execute(update(Run).where(Run.job_id == job_id, Run.step_index >= 4)
                        .values(status="PENDING"))  # fmt: skip
        step5 = Run.job_id == job_id, Run.step_index == 4
        session.execute(update(Run).where(*step5, Run.job_host_id.in_(failed))
                        .values(**{**done, "status": "FAILED", "exit_code": 2}))  # fmt: skip
        session.execute(update(Run).where(*step5, Run.job_host_id.in_(running))
                        .values(status="RUNNING", attempt=1, started_at=now))  # fmt: skip
        session.execute(update(JobHost).where(JobHost.id.in_(failed))
                        .values(status="FAILED", failed_step="patch"))  # fmt: skip
        session.execute(update(JobHost).where(JobHost.id.in_(running)).values(status="RUNNING"))
    return job_id


def store_log(platform: Platform, job_id: int, lines: int) -> int:
    """``lines`` lines for the first running run; returns the run's id."""
    with transaction(platform.sessions) as session:
        run_id = session.execute(
            select(Run.id).where(Run.job_id == job_id, Run.status == "RUNNING").limit(1)
        ).scalar_one()
        started = datetime.now(UTC)
        table = RunLog.__table__
        for start in range(0, lines, 100_000):
            rows = [
                {
                    "run_id": run_id,
                    "job_id": job_id,
                    "seq": i + 1,
                    "ts": started + timedelta(microseconds=i),
                    "stream": "stderr" if i % 10 == 9 else "stdout",
                    "line": f"line {i + 1}: migrating instance {i % 37} of host h0001",
                }  # fmt: skip
                for i in range(start, min(lines, start + 100_000))
            ]
            insert_rows(session.connection(), table, rows)  # type: ignore[arg-type]
        session.execute(update(Run).where(Run.id == run_id).values(log_seq=lines))
    if platform.settings.database_url.startswith("postgresql"):
        # As autovacuum would have by the time anyone reads it: the planner's statistics.
        with platform.sessions() as session:
            session.connection().exec_driver_sql("ANALYZE")
            session.commit()
    return run_id


def platform_with_token(database_url: str | None) -> tuple[Platform, str]:
    workdir = Path(tempfile.mkdtemp(prefix="craton-bench-"))
    url = fresh_database(database_url) if database_url else f"sqlite:///{workdir / 'bench.db'}"
    config = Settings(database_url=url, data_dir=workdir, executor="fake")
    upgrade(config)
    sessions = make_session_factory(make_engine(config))
    with transaction(sessions) as session:
        done = bootstrap(session, "bench", "bench")
        project_id, token = done.project.id, done.token.token
    return Platform(config, sessions, project_id), token


def timed(client: TestClient, path: str, repeat: int, accept: str) -> tuple[float, float, int]:
    seconds = []
    size = 0
    for _ in range(repeat):
        started = time.perf_counter()
        answer = client.get(path, headers={"Accept": accept})
        seconds.append(time.perf_counter() - started)
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
        size = len(answer.content)
    return statistics.median(seconds), max(seconds), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a PostgreSQL server URL (default: SQLite)")
    parser.add_argument("--hosts", type=int, default=2000)
    parser.add_argument("--log-lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    platform, token = platform_with_token(args.database_url)
    started = time.perf_counter()
    job_id = seed(platform, args.hosts)
    run_id = store_log(platform, job_id, args.log_lines)
    database = platform.settings.database_url.split(":")[0]
    seconds = time.perf_counter() - started
    print(f"seeded {args.hosts} hosts x {len(STEPS)} steps and {args.log_lines} log lines "
          f"in {seconds:.1f}s ({database})")  # fmt: skip
    with transaction(platform.sessions) as session:
        middle = session.execute(
            select(RunLog.id).where(RunLog.run_id == run_id, RunLog.seq == args.log_lines // 2)
        ).scalar_one()

    app = create_app(platform.settings, platform.sessions)
    with TestClient(app, base_url="http://testserver") as client:
        form = client.get("/ui/sign-in", headers={"Accept": "text/html"})
        nonce = NONCE.search(form.text)
        assert nonce is not None
        fields = {"sign_in_nonce": nonce.group(1), "token": token, "project": "", "next": ""}
        signed = client.post("/ui/sign-in", data=fields, follow_redirects=False)
        assert signed.status_code == 303, signed.text
        pages = [
            ("job page (graph + first 100 hosts)", f"/ui/jobs/{job_id}", "text/html"),
            ("grid page 15 of 20", f"/ui/jobs/{job_id}?page=15", "text/html"),
            ("failed hosts only", f"/ui/jobs/{job_id}?failed=true", "text/html"),
            ("host name search", f"/ui/jobs/{job_id}?q=h19", "text/html"),
            ("live fragment, page 10", f"/ui/jobs/{job_id}/live?page=10", "text/html"),
            ("jobs list", "/ui/jobs", "text/html"),
            (f"log tail 500 of {args.log_lines}", f"/ui/jobs/{job_id}/logs?run={run_id}&tail=500",
             "application/json"),
            ("log 500 before the middle", f"/ui/jobs/{job_id}/logs?run={run_id}&before={middle}"
             "&limit=500", "application/json"),
        ]  # fmt: skip
        print(f"{'page':<40} {'median':>9} {'slowest':>9} {'bytes':>9}")
        for name, path, accept in pages:
            median, slowest, size = timed(client, path, args.repeat, accept)
            print(f"{name:<40} {median * 1000:7.0f}ms {slowest * 1000:7.0f}ms {size:>9}")


if __name__ == "__main__":
    main()
