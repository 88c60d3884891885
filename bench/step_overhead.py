"""Per-step overhead: a 10-step workflow of a trivial container on one host, against
10 sequential ``docker run --rm`` of the same image, measured in the same run.

    python -m bench.step_overhead [--rounds 5] [--database-url postgresql+psycopg://...]

Each round times both sides back to back, in alternating order, so a burst of
load from elsewhere on the machine falls on both of one round more often than
on one side only. Prints each round, the ratio of the best times of each side
(a slow first start, on a cold page cache, does not skew it) and the median of
the rounds' own ratios, which the target (<= 1.10) is read against.
"""

from __future__ import annotations

import argparse
import statistics

from bench.harness import (
    add_hosts,
    add_ready_task,
    add_workflow,
    docker_run,
    ensure_image,
    make_platform,
    report,
    run_job,
    timed_shell,
)

STEPS = 10
TARGET = 1.10


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    ensure_image()
    platform = make_platform(args.database_url)
    try:
        hosts = add_hosts(platform, 1)
        add_ready_task(platform, "noop", "echo")
        add_workflow(platform, "ten", [{"task": "noop", "name": f"s{i}"} for i in range(STEPS)])
        platform.start_runner()
        ours, raw = [], []
        for round_ in range(args.rounds):

            def ours_once() -> None:
                seconds, status = run_job(platform, workflow="ten", hosts=hosts)
                assert status == "SUCCEEDED", status
                ours.append(seconds)

            def raw_once() -> None:
                raw.append(timed_shell(" && ".join([docker_run("echo payload")] * STEPS)))

            for side in (raw_once, ours_once) if round_ % 2 == 0 else (ours_once, raw_once):
                side()
            print(
                f"round {round_ + 1}: craton-wf {ours[-1]:.2f}s, docker run x{STEPS} {raw[-1]:.2f}s"
                f" ({ours[-1] / raw[-1]:.3f})",
                flush=True,
            )
        report(
            "per-step overhead, best of each side",
            min(ours),
            min(raw),
            TARGET,
            f"{STEPS} steps; {min(ours) / STEPS * 1000:.0f} ms/step vs "
            f"{min(raw) / STEPS * 1000:.0f} ms/docker run",
        )
        ratios = [mine / theirs for mine, theirs in zip(ours, raw, strict=True)]
        median = statistics.median(ratios)
        verdict = "OK" if median <= TARGET else "OVER TARGET"
        print(
            f"per-step overhead, median of the rounds' ratios: {median:.3f} "
            f"(target <= {TARGET:.2f}) {verdict}"
        )
    finally:
        platform.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
