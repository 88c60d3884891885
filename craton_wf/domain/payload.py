"""The payload a task container receives as its last argument (docs/api.md).

The host part is snapshotted when the job is created, so later inventory
edits don't change a running job; outputs of earlier steps are added when the
run starts.
"""

from __future__ import annotations

import json
from typing import Any


def host_snapshot(
    host: dict[str, Any], resolved_variables: dict[str, Any], names: dict[str, str | None]
) -> dict[str, Any]:
    """The host's fields and resolved variables, as frozen into a job."""
    return {
        "id": host["id"],
        "name": host["name"],
        "ip_address": host["ip_address"],
        "device_type": host["device_type"],
        "active": host["active"],
        "labels": list(host.get("labels") or []),
        "parent_id": host.get("parent_id"),
        "region": names.get("region"),
        "cell": names.get("cell"),
        "cloud": names.get("cloud"),
        "variables": resolved_variables,
    }


def build_payload(
    *,
    job: dict[str, Any],
    step: dict[str, Any],
    attempt: int,
    host: dict[str, Any] | None,
    outputs: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    return {
        "job": {"id": job["id"], "name": job.get("name"), "variables": job["variables"]},
        "step": {
            "name": step["name"],
            "index": step["index"],
            "args": step.get("args") or {},
            "attempt": attempt,
        },
        "host": host,
        "variables": job["variables"],
        "outputs": outputs,
    }


def encode_payload(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str)
