"""Keeping secret values out of stored logs and API answers.

A task's secrets reach its container as environment variables; a careless
(or hostile) task may print them. Every stored log line passes through
:func:`redact` with the values of the secrets its run received. A value that
spans several lines is redacted line by line, since logs are stored per line;
longer values go first, so a secret containing a shorter one is replaced
whole. Values shorter than :data:`MIN_REDACTED_LENGTH` are not looked for:
secrets are refused below that length when they are stored.
"""

from __future__ import annotations

from collections.abc import Iterable

REDACTED = "[redacted]"
MIN_REDACTED_LENGTH = 4


def redaction_needles(secrets: Iterable[str]) -> tuple[str, ...]:
    """The strings to look for: each line of each value, longest first, no duplicates."""
    needles = {
        line.strip("\r")
        for value in secrets
        for line in value.split("\n")
        if len(line.strip("\r")) >= MIN_REDACTED_LENGTH
    }
    return tuple(sorted(needles, key=lambda needle: (-len(needle), needle)))


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of a secret value replaced by ``[redacted]``."""
    for needle in redaction_needles(secrets):
        if needle in text:
            text = text.replace(needle, REDACTED)
    return text
