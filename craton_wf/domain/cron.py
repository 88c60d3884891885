"""Fire times of a cron expression in a time zone, daylight saving time included.

croniter reads the expression (five fields, or an alias: ``@hourly``,
``@daily``/``@midnight``, ``@weekly``, ``@monthly``, ``@yearly``/``@annually``);
zoneinfo places each time. croniter walks wall-clock times without a zone, and
this module turns each into an instant itself: croniter's own arithmetic on
zone-aware times is off around transitions (a ``@daily`` landing at 23:00).

Around a transition, as the classic cron daemons do:

- a wall time that does not exist (spring forward: 02:30 on the night clocks
  jump from 02:00 to 03:00) fires when the clock has jumped, at 03:30;
- a wall time that happens twice (fall back: 01:30) fires once, the first time.

Seconds-level expressions (six fields) are refused: a schedule fires at most
once a minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from craton_wf.errors import InvalidInput

ALIASES = frozenset(
    {"@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually"}
)


def check_cron(expression: str) -> str:
    """The expression, or InvalidInput saying what is wrong with it."""
    text = " ".join(expression.split())
    if text.startswith("@"):
        if text.lower() not in ALIASES:
            raise InvalidInput(f"cron {expression!r}: aliases are {', '.join(sorted(ALIASES))}")
        return text.lower()
    if len(text.split(" ")) != 5:
        raise InvalidInput(
            f"cron {expression!r}: five fields (minute hour day-of-month month day-of-week), "
            "or an alias like @daily"
        )
    if not croniter.is_valid(text):
        raise InvalidInput(f"cron {expression!r} is not a valid cron expression")
    return text


def zone(name: str) -> ZoneInfo:
    """The IANA time zone, or InvalidInput naming it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(
            f"unknown time zone {name!r}: give an IANA name like Europe/Paris"
        ) from exc


def fire_times(expression: str, timezone: str, after: datetime) -> Iterator[datetime]:
    """The fire times strictly after ``after``, in order, as UTC instants."""
    tz = zone(timezone)
    wall = after.astimezone(tz).replace(tzinfo=None)
    walls = croniter(check_cron(expression), wall)
    last = after.astimezone(UTC)
    while True:
        candidate = walls.get_next(datetime)
        # fold=0: a time that happens twice is its first; one that does not exist
        # is read with the offset before the jump, i.e. as late as the jump.
        instant = candidate.replace(tzinfo=tz, fold=0).astimezone(UTC)
        if instant > last:
            last = instant
            yield instant


def next_fire_time(expression: str, timezone: str, after: datetime) -> datetime:
    return next(fire_times(expression, timezone, after))
