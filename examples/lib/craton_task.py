"""Helpers for craton-wf tasks written in Python: read the payload, publish outputs.

A task runs as ``<command> '<payload json>'``: the payload is the last
argument (docs/api.md). Baked into the ``craton/python-task:3`` base image,
which every example task builds ``FROM``. Stdlib only.
"""

import json
import sys

OUTPUT_MARKER = "::craton-output::"


def load_payload() -> dict:
    """The payload JSON the platform passes as the last argument."""
    if len(sys.argv) < 2:
        fail(f"usage: {sys.argv[0]} '<payload json>'")
    try:
        payload = json.loads(sys.argv[-1])
    except ValueError as exc:
        fail(f"the payload is not valid JSON: {exc}")
    if not isinstance(payload, dict):
        fail("the payload must be a JSON object")
    return payload


def host_of(payload: dict) -> dict:
    host = payload.get("host")
    if not isinstance(host, dict) or not host.get("name"):
        fail("this task runs per host: the payload has no host")
    return host


def setting(payload: dict, name: str, default=None):
    """A job variable wins over the host's resolved variable of the same name."""
    job_vars = payload.get("variables") or {}
    host_vars = (payload.get("host") or {}).get("variables") or {}
    return job_vars.get(name, host_vars.get(name, default))


def output_of(payload: dict, step: str) -> dict:
    """What an earlier step published (empty if it did not run or published nothing)."""
    return (payload.get("outputs") or {}).get(step) or {}


def is_true(value) -> bool:
    return value is True or str(value).strip().lower() in ("1", "true", "yes", "on")


def say(message: str) -> None:
    print(message, flush=True)


def publish(outputs: dict) -> None:
    print(f"{OUTPUT_MARKER} {json.dumps(outputs, sort_keys=True)}", flush=True)


def fail(message: str, code: int = 1):
    print(f"ERROR: {message}", file=sys.stderr, flush=True)
    sys.exit(code)
