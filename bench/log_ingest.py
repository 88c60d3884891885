"""Log ingest: one container printing a million numbered lines, stored and readable,
against ``docker run`` of the same image and command followed by ``docker logs``,
measured in the same run.

    python -m bench.log_ingest [--database-url URL] [--lines 1000000] [--rounds 3]

The container is busybox's ``seq 1 N`` (stdio-buffered: the fastest numbered
printer busybox has). Our time runs from the job's creation until the log is
stored and readable: the job's end as stamped by the runner (its last lines
are committed with its outcome), plus one read of the log's last page through
the service's read path (``services.jobs.read_logs``), which must end with
line N. The whole log is then read back page by page (10,000 lines, the API's
largest page) after the last round and checked: every number once, in order;
that read is timed and printed apart. The baseline is ``docker run`` (attached, its output to
/dev/null, the engine's default json-file log) and then ``docker logs`` of
the container to /dev/null. Rounds alternate baseline and ours; medians count
(target: ratio <= 1.5).

The runner runs in this process: its memory growth is read from
``/proc/self/status``, the peak (VmHWM, reset before each round through
``/proc/self/clear_refs``) against the resident size before the job.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
import uuid
from pathlib import Path

from sqlalchemy import func, select

from bench.harness import (
    IMAGE,
    Platform,
    add_hosts,
    add_ready_task,
    ensure_image,
    make_platform,
    report,
    time_job,
)
from craton_wf.db.engine import transaction
from craton_wf.db.models import Job, Run
from craton_wf.services import jobs as job_service

PAGE = 10_000  # the API's largest page of log lines


def memory_kib(field: str) -> int:
    """A ``/proc/self/status`` figure (VmRSS, VmHWM), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak_memory() -> None:
    """Start VmHWM again from the present resident size (Linux 4.0 and later)."""
    Path("/proc/self/clear_refs").write_text("5")


def raw_docker(lines: int) -> float:
    """``docker run`` of the printer, attached, then ``docker logs`` of it: seconds."""
    name = f"craton-bench-log-{uuid.uuid4().hex[:8]}"
    start = time.perf_counter()
    try:
        subprocess.run(
            ["docker", "run", "--name", name, IMAGE, "seq", "1", str(lines)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        subprocess.run(
            ["docker", "logs", name],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return time.perf_counter() - start
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)


def newest_job_id(platform: Platform) -> int:
    with transaction(platform.sessions) as session:
        return int(session.execute(select(func.max(Job.id))).scalar_one())


def read_last_page(platform: Platform, job_id: int, lines: int) -> float:
    """Seconds to read the log's last page through the service's read path, which
    must end with line ``lines``.

    The page is found by line number: the run's lines are numbered from 1, and
    the read starts after the id of the line ``PAGE`` before the end.
    """
    start = time.perf_counter()
    with transaction(platform.sessions) as session:
        job = session.get(Job, job_id)
        assert job is not None
        run_id = session.execute(select(Run.id).where(Run.job_id == job_id)).scalar_one()
        page = job_service.read_logs(
            session, job, run_id=run_id, from_seq=max(1, lines - PAGE + 1), limit=PAGE
        )
    assert page and page[-1][0].line == str(lines), page[-1:] or "no lines"
    return time.perf_counter() - start


def read_back(platform: Platform, job_id: int, lines: int) -> float:
    """Seconds to read the whole log through the read path, page by page; every
    number once, in order."""
    start = time.perf_counter()
    expected, after = 1, 0
    while True:
        with transaction(platform.sessions) as session:
            job = session.get(Job, job_id)
            assert job is not None
            page = job_service.read_logs(session, job, after=after, limit=PAGE)
        if not page:
            break
        for log, _host, _step in page:
            if log.stream == "stdout":
                assert log.line == str(expected), (log.line, expected)
                expected += 1
        after = page[-1][0].id
    assert expected == lines + 1, f"read {expected - 1} lines of {lines}"
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    ensure_image()
    platform = make_platform(args.database_url)
    ours: list[float] = []
    raw: list[float] = []
    growth: list[float] = []
    try:
        hosts = add_hosts(platform, 1)
        add_ready_task(platform, "printer", f"sh -c 'seq 1 {args.lines}'")
        platform.start_runner()
        for round_ in range(args.rounds):
            raw.append(raw_docker(args.lines))
            reset_peak_memory()
            before = memory_kib("VmRSS")
            timing = time_job(platform, task="printer", hosts=hosts)
            assert timing.status == "SUCCEEDED", timing.status
            peak = memory_kib("VmHWM")
            job_id = newest_job_id(platform)
            last_page = read_last_page(platform, job_id, args.lines)
            ours.append(timing.total + last_page)
            growth.append((peak - before) / 1024)
            print(
                f"round {round_ + 1}: craton-wf {ours[-1]:.2f}s "
                f"({args.lines / ours[-1]:,.0f} lines/s; last page {last_page * 1000:.0f} ms), "
                f"docker run + logs {raw[-1]:.2f}s; runner RSS +{growth[-1]:.1f} MB"
            )
        whole = read_back(platform, newest_job_id(platform), args.lines)
        print(f"the last job's whole log read back and checked in {whole:.2f}s")
        report(
            "log ingest",
            statistics.median(ours),
            statistics.median(raw),
            1.5,
            f"{args.lines:,} lines, medians of {args.rounds}; "
            f"RSS growth median {statistics.median(growth):.1f} MB",
        )
    finally:
        platform.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
