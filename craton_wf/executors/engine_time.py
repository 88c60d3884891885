"""Ordering the engine's timestamps.

Docker writes times in Go's RFC 3339 with nanoseconds and trims trailing
zeros (``…:05.1Z`` is before ``…:05.123Z``, but sorts after it as a string),
so two of them compared as strings can sort the wrong way round.
:func:`engine_time_key` compares them as times.
"""

from __future__ import annotations

import re

_STAMP = re.compile(r"^(?P<second>[^.]*?)(?:\.(?P<fraction>\d+))?(?P<zone>Z|[+-]\d\d:\d\d)?$")


def engine_time_key(stamp: str | None) -> tuple[str, str]:
    """A sort key for one of the engine's timestamps (all in the engine's one zone)."""
    stamp = stamp or ""
    match = _STAMP.match(stamp)
    if match is None:
        return (stamp, "")
    return (match["second"], (match["fraction"] or "").ljust(9, "0")[:9])
