"""Scheduler dispatch: runs completed per second with a no-op executor, with one
runner and with three (separate processes), on the database given (PostgreSQL
for the figures that count).

    python -m bench.dispatch --database-url postgresql+psycopg://... [--runs 2000] [--repeat 3]

Each run is one step on one host of a single job that runs up to 1,000 hosts
at once, so the figure is what the runners' claim → start → log → finish
cycle sustains, from the committed job to its end. Creating the job (its hosts
and runs, in the API's one transaction) is timed and printed on its own.
Targets: >= 1,000 runs/s with one runner; three >= 1.8x one.

On PostgreSQL the same job is first driven by ``bench.raw_cycle``: the same
lease cycle in hand-written, set-based SQL, from one process, with none of the
platform's other work. Its rate is what this machine's database and cores
allow the cycle at best, and one runner's rate is printed as a share of it,
which (unlike runs/s) compares across machines of different speed. Each case is
measured ``--repeat`` times (the figures vary by a tenth from one job to the
next) and the median counts.

Each runner has BENCH_SLOTS (default 128) slots: with a no-op executor a run
takes a few milliseconds of the runner's time, so what bounds the rate is how
many runs' writes the runner gathers into one transaction.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.harness import add_hosts, add_ready_task, make_platform, time_job

SLOTS = int(os.environ.get("BENCH_SLOTS", "128"))


TICKS = os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent not idle since boot (all cores)."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / TICKS


def process_seconds(pid: int) -> float:
    """User + system CPU seconds of one process."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


@dataclass
class Figures:
    runs_per_second: float
    created_seconds: float  # creating the job, not counted in the rate
    busy_cores: float  # the machine's average, over the job
    cpu_ms_per_run: float  # the machine's, all processes
    runner_cpu_ms_per_run: float  # the runner processes' share


def measure(database_url: str | None, runs: int, runners: int) -> Figures:
    """The job's figures with ``runners`` runner processes; 0: the hand-written
    SQL cycle of ``bench.raw_cycle`` drives it instead (PostgreSQL only)."""
    platform = make_platform(
        database_url, executor="fake", runner_slots=SLOTS, runner_poll_seconds=0.05
    )
    hosts = add_hosts(platform, runs)
    add_ready_task(platform, "noop", "true")
    processes: list[subprocess.Popen[bytes]] = []
    url = platform.settings.database_url
    env = {
        **os.environ,
        "CRATON_WF_DATABASE_URL": url,
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
        if not runners:
            raw = [sys.executable, "-m", "bench.raw_cycle", url, "--batch", str(SLOTS)]
            processes.append(subprocess.Popen(raw))
        time.sleep(2)  # runners registered and idle
        before: dict[str, float] = {}

        def created() -> None:  # CPU is counted from the committed job on
            before["busy"] = machine_busy_seconds()
            before["runners"] = sum(process_seconds(p.pid) for p in processes)

        timing = time_job(
            platform,
            on_created=created,
            task="noop",
            hosts=hosts,
            concurrency=min(runs, 1000),
            max_failures=runs,
            wake=False,
        )
        assert timing.status == "SUCCEEDED", timing.status
        busy = machine_busy_seconds() - before["busy"]
        runner_cpu = sum(process_seconds(p.pid) for p in processes) - before["runners"]
        seconds = timing.dispatched
        return Figures(
            runs_per_second=runs / seconds,
            created_seconds=timing.created,
            busy_cores=busy / seconds,
            cpu_ms_per_run=busy * 1000 / runs,
            runner_cpu_ms_per_run=runner_cpu * 1000 / runs,
        )
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="measure each case this many times; the median run counts (default 3)",
    )
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    floor = None
    if args.database_url and args.database_url.startswith("postgresql"):
        floor = median_of(args.repeat, lambda: measure(args.database_url, args.runs, 0))
        print(
            f"hand-written SQL cycle (bench.raw_cycle), one process: "
            f"{floor.runs_per_second:.0f} runs/s"
        )
        print(describe(floor, cores, driver="the SQL cycle's process"))
    one = median_of(args.repeat, lambda: measure(args.database_url, args.runs, 1))
    print(f"1 runner: {one.runs_per_second:.0f} runs/s (target >= 1000)")
    if floor is not None:
        share = one.runs_per_second / floor.runs_per_second
        print(f"  {share:.2f}x the hand-written SQL cycle measured above")
    print(describe(one, cores))
    three = median_of(args.repeat, lambda: measure(args.database_url, args.runs, 3))
    ratio = three.runs_per_second / one.runs_per_second
    print(
        f"3 runners: {three.runs_per_second:.0f} runs/s; {ratio:.2f}x one runner (target >= 1.8x)"
    )
    print(describe(three, cores))
    return 0


def median_of(times: int, run: Callable[[], Figures]) -> Figures:
    """The median (by rate) of ``times`` measurements; each is printed as it comes."""
    figures = []
    for _ in range(max(times, 1)):
        figures.append(run())
        if times > 1:
            print(f"  ({figures[-1].runs_per_second:.0f} runs/s)", flush=True)
    figures.sort(key=lambda f: f.runs_per_second)
    return figures[len(figures) // 2]


def describe(figures: Figures, cores: int, driver: str = "the runners") -> str:
    return (
        f"  job created in {figures.created_seconds:.2f}s (not counted); "
        f"CPU: {figures.busy_cores:.2f} of {cores} cores busy; "
        f"{figures.cpu_ms_per_run:.1f} ms of CPU per run on the machine, "
        f"{figures.runner_cpu_ms_per_run:.1f} ms of it in {driver}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
