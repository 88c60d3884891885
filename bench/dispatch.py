"""Scheduler dispatch: runs completed per second with a no-op executor, with one
runner and with three (separate processes), on the database given (PostgreSQL
for the figures that count).

    python -m bench.dispatch --database-url postgresql+psycopg://... [--runs 2000]

Each run is one step on one host of a single job whose concurrency admits every
host at once, so the figure is what the runners' claim → start → log → finish
cycle sustains. Targets: >= 1,000 runs/s with one runner; three >= 1.8x one.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from bench.harness import add_hosts, add_ready_task, make_platform, run_job

SLOTS = int(os.environ.get("BENCH_SLOTS", "16"))


def measure(database_url: str | None, runs: int, runners: int) -> float:
    platform = make_platform(
        database_url, executor="fake", runner_slots=SLOTS, runner_poll_seconds=0.05
    )
    hosts = add_hosts(platform, runs)
    add_ready_task(platform, "noop", "true")
    processes = []
    env = {
        **os.environ,
        "CRATON_WF_DATABASE_URL": platform.settings.database_url,
        "CRATON_WF_EXECUTOR": "fake",
        "CRATON_WF_RUNNER_SLOTS": str(SLOTS),
        "CRATON_WF_RUNNER_POLL_SECONDS": "0.05",
    }
    try:
        for index in range(runners):
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "craton_wf.cli",
                        "--log-level",
                        "WARNING",
                        "runner",
                        "--name",
                        f"bench-{index}",
                    ],
                    env=env,
                )
            )
        time.sleep(2)  # runners registered and idle
        seconds, status = run_job(
            platform,
            task="noop",
            hosts=hosts,
            concurrency=min(runs, 1000),
            max_failures=runs,
            wake=False,
        )
        assert status == "SUCCEEDED", status
        return runs / seconds
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()
    one = measure(args.database_url, args.runs, 1)
    print(f"1 runner: {one:.0f} runs/s (target >= 1000)")
    three = measure(args.database_url, args.runs, 3)
    print(f"3 runners: {three:.0f} runs/s; {three / one:.2f}x one runner (target >= 1.8x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
