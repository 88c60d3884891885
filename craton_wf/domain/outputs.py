"""The stdout marker a task uses to publish outputs for later steps.

A line ``::craton-output:: {"key": "value"}`` (a JSON object) adds its keys to
the step's outputs; later lines override earlier keys. Anything after the
marker that is not a JSON object is ignored (the line stays in the log).
"""

from __future__ import annotations

import json
from typing import Any

OUTPUT_MARKER = "::craton-output::"
TEMPORARY_FAILURE_EXIT_CODE = 75  # EX_TEMPFAIL from sysexits.h


def parse_output_line(line: str) -> dict[str, Any] | None:
    stripped = line.strip()
    if not stripped.startswith(OUTPUT_MARKER):
        return None
    try:
        value = json.loads(stripped[len(OUTPUT_MARKER) :])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
