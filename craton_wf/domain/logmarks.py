"""The lines the platform writes into a run's log where the log is incomplete.

A stored log is either exactly what the container printed, or it says where
it is not, in the log itself, at the place where lines are missing:

- a ``[craton] log gap`` line stands where lines were lost: printed while no
  runner read them and rotated away by the runtime before one could (a
  handover between runners, a log stream that broke). It says how many lines
  are missing when that can be known, and otherwise between which stamps;
- a ``[craton] log capped`` line is the last line of a run whose output
  reached the per-run cap; nothing of the container is stored after it.

Executors and the runner write these lines; the recording of a batch
recognises them (:func:`is_gap_marker`) to flag the run and tell the job's
events, so that the log of a run that succeeded can be seen to be partial
without reading it.
"""

from __future__ import annotations

from datetime import datetime

GAP_PREFIX = "[craton] log gap"
CAP_PREFIX = "[craton] log capped"


def log_gap_marker(
    after: datetime | None, before: datetime | None, missing: int | None = None
) -> str:
    """The text of a gap line: lines printed between ``after`` and ``before`` are gone."""
    how_many = "an unknown number of lines" if missing is None else f"{missing} lines"
    where = []
    if after is not None:
        where.append(f"after {after.isoformat()}")
    if before is not None:
        where.append(f"before {before.isoformat()}")
    place = f" ({', '.join(where)})" if where else ""
    return (
        f"{GAP_PREFIX}: {how_many} of the container's output{place} are missing: "
        "the runtime rotated them away before a runner could read them"
    )


def log_cap_marker(max_run_bytes: int) -> str:
    return (
        f"{CAP_PREFIX}: this run stored {max_run_bytes} bytes of output, "
        "the most a run may; later lines are not stored"
    )


def is_gap_marker(stream: str, text: str) -> bool:
    return stream == "system" and text.startswith(GAP_PREFIX)
