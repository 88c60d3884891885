"""Per-step overhead: a 10-step workflow of a trivial container on one host, against
10 sequential ``docker run --rm`` of the same image, measured in the same run.

    python -m bench.step_overhead [--rounds 3]

Prints both times and their ratio (target <= 1.10). The best of the rounds is
compared for each side, so a slow first start (cold page cache) does not skew it.
"""

from __future__ import annotations

import argparse

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
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
            raw.append(timed_shell(" && ".join([docker_run("echo payload")] * STEPS)))
            seconds, status = run_job(platform, workflow="ten", hosts=hosts)
            assert status == "SUCCEEDED", status
            ours.append(seconds)
            print(
                f"round {round_ + 1}: craton-wf {seconds:.2f}s, docker run x{STEPS} {raw[-1]:.2f}s"
            )
        report(
            "per-step overhead",
            min(ours),
            min(raw),
            1.10,
            f"{STEPS} steps; {min(ours) / STEPS * 1000:.0f} ms/step vs "
            f"{min(raw) / STEPS * 1000:.0f} ms/docker run",
        )
    finally:
        platform.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
