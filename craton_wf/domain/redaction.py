"""Keeping secret values out of stored logs and API answers.

A task's secrets reach its container as environment variables; a careless
(or hostile) task may print them. Every stored log line passes through
:func:`redact` with the values of the secrets its run received. A value that
spans several lines is redacted line by line, since logs are stored per line;
longer values go first, so a secret containing a shorter one is replaced
whole. Values shorter than :data:`MIN_REDACTED_LENGTH` are not looked for:
secrets are refused below that length when they are stored.

The platform's API tokens (a task's ``CRATON_TOKEN`` among them) are
redacted by their form, :data:`TOKEN_PREFIX` and the random part after it,
whatever values a run passes: a runner that adopts a container another
runner started cannot know its token (only a hash is stored), and a task may
print any token it was handed. A piece of 16 or more of the random part is
redacted too: a token cut short is still most of a credential.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[redacted]"
MIN_REDACTED_LENGTH = 4
TOKEN_PREFIX = "cwf_"  # then secrets.token_urlsafe(32): 43 of [A-Za-z0-9_-]
_TOKEN = re.compile(re.escape(TOKEN_PREFIX) + r"[A-Za-z0-9_-]{16,}")


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
    """``text`` with every secret value and every API token replaced by ``[redacted]``."""
    for needle in redaction_needles(secrets):
        if needle in text:
            text = text.replace(needle, REDACTED)
    if TOKEN_PREFIX in text:
        text = _TOKEN.sub(REDACTED, text)
    return text
