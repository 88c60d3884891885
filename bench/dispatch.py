"""Scheduler dispatch: runs completed per second with a no-op executor, with one
runner and with three (separate processes), on the database given (PostgreSQL
for the figures that count).

    python -m bench.dispatch --database-url postgresql+psycopg://... [--runs 2000] [--repeat 3]

Each run is one step on one host of a single job that runs up to 1,000 hosts
at once, so the figure is what the runners' claim → start → log → finish
cycle sustains, from the committed job to its end. Creating the job (its hosts
and runs, in the API's one transaction) is timed and printed on its own.
Targets: >= 1,500 runs/s with one runner, and >= 0.35 of the hand-written SQL
cycle (below); with three runners, CPU per run (the runners' and their
database backends', read from ``/proc``, so other work on the machine does not
count) <= 1.15x one runner's: on a machine of 2 cores, three runners cannot
go much faster than one (see bench/README.md), but they must not waste it.

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

from sqlalchemy import text

from bench.harness import Platform, add_hosts, add_ready_task, make_platform, time_job
from craton_wf.db.engine import transaction

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


def database_backends(platform: Platform) -> list[int]:
    """The process ids of the PostgreSQL backends serving the benchmark's database
    (its own fresh one: every connection to it is the runners' or the job's);
    none on SQLite, whose work is done in the runner processes themselves."""
    if not platform.settings.database_url.startswith("postgresql"):
        return []
    with transaction(platform.sessions) as session:
        return list(
            session.execute(
                text(
                    "SELECT pid FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalars()
        )


def backends_seconds(pids: list[int]) -> dict[int, float]:
    """CPU seconds of each of ``pids`` still running (a backend may have ended)."""
    seconds = {}
    for pid in pids:
        try:
            seconds[pid] = process_seconds(pid)
        except FileNotFoundError:
            continue
    return seconds


@dataclass
class Figures:
    runs_per_second: float
    created_seconds: float  # creating the job, not counted in the rate
    busy_cores: float  # the machine's average, over the job
    cpu_ms_per_run: float  # the machine's, all processes
    runner_cpu_ms_per_run: float  # the runner processes' share
    # The runners' and their database backends' (PostgreSQL): the CPU the cycle
    # itself costs, whatever else the machine is doing meanwhile.
    cycle_cpu_ms_per_run: float


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

        backends: dict[int, float] = {}

        def created() -> None:  # CPU is counted from the committed job on
            before["busy"] = machine_busy_seconds()
            before["runners"] = sum(process_seconds(p.pid) for p in processes)
            backends.update(backends_seconds(database_backends(platform)))

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
        # Backends that started during the job count from zero; one that ended
        # before this look is missed (the runners keep their connections).
        after = backends_seconds([*backends, *database_backends(platform)])
        database_cpu = sum(spent - backends.get(pid, 0.0) for pid, spent in after.items())
        seconds = timing.dispatched
        return Figures(
            runs_per_second=runs / seconds,
            created_seconds=timing.created,
            busy_cores=busy / seconds,
            cpu_ms_per_run=busy * 1000 / runs,
            runner_cpu_ms_per_run=runner_cpu * 1000 / runs,
            cycle_cpu_ms_per_run=(runner_cpu + database_cpu) * 1000 / runs,
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
        print(describe(floor, cores, driver="the SQL cycle's process", backends=False))
    one = median_of(args.repeat, lambda: measure(args.database_url, args.runs, 1))
    print(f"1 runner: {one.runs_per_second:.0f} runs/s (target >= 1500)")
    if floor is not None:
        share = one.runs_per_second / floor.runs_per_second
        print(f"  {share:.2f}x the hand-written SQL cycle measured above (target >= 0.35)")
    print(describe(one, cores))
    three = median_of(args.repeat, lambda: measure(args.database_url, args.runs, 3))
    ratio = three.runs_per_second / one.runs_per_second
    print(
        f"3 runners: {three.runs_per_second:.0f} runs/s; {ratio:.2f}x one runner"
        " (>= 1.8x needs 3 cores or more)"
    )
    print(describe(three, cores))
    efficiency = three.cycle_cpu_ms_per_run / one.cycle_cpu_ms_per_run
    print(
        f"  CPU per run (runners and their database backends): {efficiency:.2f}x one runner's"
        " (target <= 1.15x)"
    )
    return 0


def median_of(times: int, run: Callable[[], Figures]) -> Figures:
    """The median (by rate) of ``times`` measurements; each is printed as it comes."""
    figures = []
    for _ in range(max(times, 1)):
        figures.append(run())
        if times > 1:
            print(
                f"  ({figures[-1].runs_per_second:.0f} runs/s, "
                f"{figures[-1].cycle_cpu_ms_per_run:.2f} ms of CPU per run)",
                flush=True,
            )
    figures.sort(key=lambda f: f.runs_per_second)
    return figures[len(figures) // 2]


def describe(
    figures: Figures, cores: int, driver: str = "the runners", backends: bool = True
) -> str:
    """The figures' CPU side; ``backends``: whether the database backends' share
    was counted (the SQL cycle's process ends, and its backend with it, before
    it can be read)."""
    return (
        f"  job created in {figures.created_seconds:.2f}s (not counted); "
        f"CPU: {figures.busy_cores:.2f} of {cores} cores busy; "
        f"{figures.cpu_ms_per_run:.1f} ms of CPU per run on the machine, "
        f"{figures.runner_cpu_ms_per_run:.2f} ms of it in {driver}"
        + (
            f", {figures.cycle_cpu_ms_per_run:.2f} ms with their database backends"
            if backends
            else ""
        )
    )


if __name__ == "__main__":
    raise SystemExit(main())
