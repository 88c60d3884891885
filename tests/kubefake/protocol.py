"""The API server's conventions the fake cluster follows: errors, selectors, patches, checks."""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
from datetime import UTC, datetime
from typing import Any

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_nano(epoch_ns: int) -> str:
    """Go's RFC3339Nano: nanoseconds with their trailing zeros cut."""
    seconds, nanos = divmod(epoch_ns, 1_000_000_000)
    whole = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{nanos:09d}".rstrip("0")
    return f"{whole}.{fraction}Z" if fraction else f"{whole}Z"


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def utcnow() -> datetime:
    return datetime.now(UTC)


class ConnectionDropped(Exception):
    """Raised by a streamed answer: the server drops the connection, the answer unfinished."""


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> dict[str, Any]:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }


def not_found(kind: str, name: str) -> ApiError:
    group, plural = ("batch", "jobs") if kind == "jobs" else ("", kind)
    full = f"{plural}.{group}" if group else plural
    return ApiError(
        404, "NotFound", f'{full} "{name}" not found', name=name, group=group, kind=plural
    )


# -- selectors -------------------------------------------------------------------


def matches_labels(labels: dict[str, str], selector: str) -> bool:
    for requirement in filter(None, (r.strip() for r in re.split(r",(?![^(]*\))", selector))):
        if match := re.fullmatch(r"(\S+)\s+(in|notin)\s+\((.*)\)", requirement):
            key, operator, values = match.groups()
            allowed = {v.strip() for v in values.split(",")}
            if (labels.get(key) in allowed) != (operator == "in"):
                return False
        elif "!=" in requirement:
            key, value = requirement.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in requirement:
            key, value = requirement.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif requirement.startswith("!"):
            if requirement[1:] in labels:
                return False
        elif requirement not in labels:
            return False
    return True


def _field(obj: dict[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


def matches_fields(obj: dict[str, Any], selector: str) -> bool:
    for requirement in filter(None, (r.strip() for r in selector.split(","))):
        negate = "!=" in requirement
        key, value = re.split(r"!=|==|=", requirement, maxsplit=1)
        if (_field(obj, key.strip()) == value.strip()) == negate:
            return False
    return True


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge_patch(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def json_patch(target: dict[str, Any], operations: list[dict[str, Any]]) -> None:
    for operation in operations:
        *parents, last = [
            p.replace("~1", "/").replace("~0", "~") for p in operation["path"].split("/")[1:]
        ]
        node: Any = target
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        if operation["op"] in ("add", "replace"):
            node[last] = copy.deepcopy(operation["value"])
        elif operation["op"] == "remove":
            node.pop(last, None)
        elif operation["op"] == "test" and node.get(last) != operation["value"]:
            raise ApiError(422, "Invalid", f"the test of {operation['path']} failed")


def job_condition(kind: str, reason: str, message: str) -> dict[str, Any]:
    now = rfc3339(utcnow())
    return {
        "type": kind,
        "status": "True",
        "reason": reason,
        "message": message,
        "lastProbeTime": now,
        "lastTransitionTime": now,
    }


def grace_of(pod: dict[str, Any]) -> int:
    return int(pod["spec"].get("terminationGracePeriodSeconds", 30))


def precondition_failed(kind: str, name: str, wanted: str, actual: str) -> ApiError:
    resource = "jobs.batch" if kind == "jobs" else "pods"
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {resource} "{name}": Precondition failed: '
        f"UID in precondition: {wanted}, UID in object meta: {actual}",
        name=name,
        kind=kind,
    )


def delete_options(body: bytes, query: dict[str, str]) -> dict[str, Any]:
    options: dict[str, Any] = json.loads(body) if body.strip() else {}
    if "propagationPolicy" in query:
        options["propagationPolicy"] = query["propagationPolicy"]
    if "gracePeriodSeconds" in query:
        options["gracePeriodSeconds"] = int(query["gracePeriodSeconds"])
    return options


def _invalid(
    name: str, field_path: str, value: Any, why: str, kind: str = "Job", group: str = "batch"
) -> ApiError:
    full = f"{kind}.{group}" if group else kind
    return ApiError(
        422,
        "Invalid",
        f'{full} "{name}" is invalid: {field_path}: Invalid value: {json.dumps(value)}: {why}',
        name=name,
        group=group,
        kind=kind,
    )


def _validate_labels(name: str, path: str, labels: dict[str, Any]) -> None:
    for key, value in labels.items():
        prefix, _, label = str(key).rpartition("/")
        if len(label) > 63 or not _LABEL_NAME.match(label) or len(prefix) > 253:
            raise _invalid(name, path, key, "name part must be a valid label name")
        if not isinstance(value, str) or len(value) > 63 or value and not _LABEL_NAME.match(value):
            raise _invalid(
                name,
                f"{path}",
                value,
                "a label value is empty or at most 63 alphanumerics, '-', '_' or '.'",
            )


def validate_job(body: dict[str, Any]) -> None:
    """What the API server checks before anything else (schemas are the tests' business)."""
    if body.get("kind") != "Job" or body.get("apiVersion") != "batch/v1":
        raise ApiError(400, "BadRequest", "the body is not a batch/v1 Job")
    name = str(body.get("metadata", {}).get("name", ""))
    if len(name) > 63 or not _DNS_LABEL.match(name):
        raise _invalid(
            name,
            "metadata.name",
            name,
            "must be a lowercase RFC 1123 label of at most 63 characters",
        )
    _validate_labels(name, "metadata.labels", body["metadata"].get("labels") or {})
    template = body.get("spec", {}).get("template", {})
    _validate_labels(name, "spec.template.labels", template.get("metadata", {}).get("labels") or {})
    spec = template.get("spec", {})
    if spec.get("restartPolicy") not in ("Never", "OnFailure"):
        raise _invalid(
            name,
            "spec.template.spec.restartPolicy",
            spec.get("restartPolicy"),
            'supported values: "OnFailure", "Never"',
        )
    if not spec.get("containers") or not all(
        c.get("name") and c.get("image") for c in spec["containers"]
    ):
        raise _invalid(
            name, "spec.template.spec.containers", None, "a container needs a name and an image"
        )


def validate_secret(body: dict[str, Any]) -> dict[str, str]:
    """What the API server checks of a v1 Secret; its data, ``stringData`` merged in
    (base64, as stored)."""
    if body.get("kind") != "Secret" or body.get("apiVersion") != "v1":
        raise ApiError(400, "BadRequest", "the body is not a v1 Secret")
    name = str(body.get("metadata", {}).get("name", ""))
    if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        raise _invalid(
            name, "metadata.name", name, "must be a lowercase RFC 1123 subdomain", "Secret", ""
        )
    data = dict(body.get("data") or {})
    for key, value in data.items():
        try:
            base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            raise _invalid(name, f"data[{key}]", value, "not base64", "Secret", "") from None
    for key, value in (body.get("stringData") or {}).items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    for key in data:
        if len(key) > 253 or not _SECRET_KEY.match(key):
            raise _invalid(
                name,
                "data",
                key,
                "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                "Secret",
                "",
            )
    return data


VERSION = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.0-kubefake",
    "gitCommit": "0" * 40,
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.24",
    "compiler": "gc",
    "platform": "linux/amd64",
}
