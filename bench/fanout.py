"""Fan-out: 200 hosts x 1 step at concurrency 10, against
``xargs -P10`` running 200 ``docker run --rm`` of the same image, in the same run.

    python -m bench.fanout [--hosts 200] [--concurrency 10]

Prints both times and their ratio (target <= 1.15).
"""

from __future__ import annotations

import argparse

from bench.harness import (
    IMAGE,
    add_hosts,
    add_ready_task,
    ensure_image,
    make_platform,
    report,
    run_job,
    timed_shell,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    ensure_image()
    platform = make_platform(args.database_url, runner_slots=args.concurrency)
    try:
        hosts = add_hosts(platform, args.hosts)
        add_ready_task(platform, "audit", "echo")
        platform.start_runner()
        raw = timed_shell(
            f"seq {args.hosts} | xargs -P{args.concurrency} -I{{}} "
            f"docker run --rm {IMAGE} echo host {{}}"
        )
        seconds, status = run_job(
            platform,
            task="audit",
            hosts=hosts,
            concurrency=args.concurrency,
            max_failures=args.hosts,
        )
        assert status == "SUCCEEDED", status
        report(
            "fan-out", seconds, raw, 1.15, f"{args.hosts} hosts at concurrency {args.concurrency}"
        )
    finally:
        platform.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
