"""Rollout waves: how a job's hosts are cut into waves, and how long to wait between them.

A job may roll through its hosts in waves, as an operator patches a fleet:
``[1, 5, "25%", "100%"]`` starts one host, then five, then a quarter of the
hosts left, then all the rest. A size is a positive count or ``"N%"`` with
``0 < N <= 100``, a percentage of the hosts not yet in a wave (rounded up, so
a wave is never empty while hosts are left); ``"rest"`` is ``"100%"``. Hosts
left after the last entry go into the last wave: the last entry applies to
the rest. Entries that would find no host left are dropped, so a job over
two hosts with ``[1, 5, "25%"]`` has two waves of one.

The sizes are resolved once, when the job is created, over its hosts in
their order; the engine (:mod:`craton_wf.engine.waves`) only compares host
positions with the running total.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from craton_wf.errors import InvalidInput


class InvalidWaves(InvalidInput):
    """The waves, wave_pause or wave_gate of a job are not valid (the message names which)."""

    status = 422


MAX_WAVES = 100
GATES = ("approve",)
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_PAUSE_SECONDS = 7 * 86400


def check_wave_spec(spec: Sequence[Any]) -> list[int | str]:
    """The entries of ``spec``, each a positive count or ``"N%"``; ``InvalidWaves``
    names a bad one."""
    if not isinstance(spec, list | tuple) or not spec:
        raise InvalidWaves("waves must be a non-empty list of sizes (1, 5) or percentages ('25%')")
    if len(spec) > MAX_WAVES:
        raise InvalidWaves(f"waves: at most {MAX_WAVES} waves")
    checked: list[int | str] = []
    for index, entry in enumerate(spec, start=1):
        checked.append(_check_entry(index, entry))
    return checked


def _check_entry(index: int, entry: Any) -> int | str:
    bad = f"waves entry {index} ({entry!r})"
    if isinstance(entry, bool):
        raise InvalidWaves(f"{bad} must be a positive count or a percentage like '25%'")
    if isinstance(entry, int):
        if entry < 1:
            raise InvalidWaves(f"{bad} must be a positive count")
        return entry
    if isinstance(entry, str):
        text = entry.strip()
        if text.lower() == "rest":
            return "100%"
        if text.isdigit():
            return _check_entry(index, int(text))
        match = _PERCENT.match(text)
        if match:
            percent = float(match.group(1))
            if not 0 < percent <= 100:
                raise InvalidWaves(f"{bad}: a percentage must be more than 0 and at most 100")
            return f"{match.group(1)}%"
    raise InvalidWaves(f"{bad} must be a positive count or a percentage like '25%'")


def wave_sizes(spec: Sequence[int | str], host_count: int) -> list[int]:
    """How many hosts each wave has, over ``host_count`` hosts (see the module docstring)."""
    sizes: list[int] = []
    left = host_count
    for entry in spec:
        if left <= 0:
            break
        share = entry if isinstance(entry, int) else left * float(entry.rstrip("%")) / 100
        size = max(1, min(math.ceil(share), left))
        sizes.append(size)
        left -= size
    if left > 0 and sizes:
        sizes[-1] += left
    return sizes


def parse_pause(value: Any) -> int:
    """Seconds of ``value``: an int of seconds, or ``"30s"``, ``"10m"``, ``"2h"``, ``"1d"``."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise InvalidWaves(f"wave_pause ({value!r}) must be seconds or a duration like '10m'")
    if isinstance(value, int):
        seconds = value
    else:
        match = _DURATION.match(str(value).lower())
        if not match:
            raise InvalidWaves(
                f"wave_pause ({value!r}) must be seconds or a duration like '30s', '10m', '2h'"
            )
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if not 0 <= seconds <= MAX_PAUSE_SECONDS:
        raise InvalidWaves(f"wave_pause must be between 0 and {MAX_PAUSE_SECONDS} seconds")
    return seconds


def check_gate(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if value not in GATES:
        raise InvalidWaves(f"wave_gate ({value!r}) must be one of: {', '.join(GATES)}")
    return str(value)


def wave_end(sizes: Sequence[int], wave: int) -> int:
    """The position after the last host of wave ``wave`` (1-based)."""
    return sum(sizes[:wave])


def rollout_columns(spec: Any, pause: Any, gate: Any, host_count: int) -> dict[str, Any]:
    """A job's wave columns from what was asked (``spec`` None: no waves), over its hosts."""
    if spec is None:
        if pause not in (None, 0, "") or gate not in (None, ""):
            raise InvalidWaves("wave_pause and wave_gate need waves")
        return {}
    checked = check_wave_spec(spec)
    return {
        "waves": checked,
        "wave_sizes": wave_sizes(checked, host_count),
        "wave_pause_seconds": parse_pause(pause),
        "wave_gate": check_gate(gate),
    }
