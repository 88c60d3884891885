"""The launch form of a workflow or a task: what was typed, turned into a job's request.

The form is text a person types; the job is what ``POST /v1/jobs`` takes.
:func:`job_request` turns the one into the other and checks it with the API's
own model (``JobCreate``), so a launch from the console is bounded and
refused exactly as the same request to the API would be; the service then
checks the rest (hosts, tasks, approvals) as it does for the API.

Targets: host names (or ids) separated by commas, spaces or lines; labels
the same way (a host must carry every label given); a region and a cell by
name or id. Variables: a JSON object, or ``key=value`` lines whose values
are taken as text, whatever they look like (``version=1.10`` stays the text
``1.10``; a number or a list is given as JSON). Blank lines and lines
starting with ``#`` are skipped.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData

from craton_wf.api.schemas import JobCreate
from craton_wf.errors import InvalidInput
from craton_wf.ui.deps import form_text

FIELDS = (
    "workflow",
    "workflow_version",
    "task",
    "name",
    "hosts",
    "labels",
    "region",
    "cell",
    "variables",
    "concurrency",
    "max_failures",
    "timeout",
)
NUMBERS = ("workflow_version", "concurrency", "max_failures", "timeout")
_SEPARATORS = re.compile(r"[\s,]+")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def typed_fields(form: FormData) -> dict[str, str]:
    """The form's fields as typed (to show them again when the launch is refused)."""
    return {name: form_text(form, name) for name in FIELDS}


def words(text: str) -> list[str]:
    return [word for word in _SEPARATORS.split(text.strip()) if word]


def parse_variables(text: str) -> dict[str, Any]:
    """A JSON object, or ``key=value`` lines (values as text)."""
    text = text.strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise InvalidInput(f"variables: not a JSON object: {exc}") from exc
        except RecursionError as exc:  # the decoder's own limit on nesting
            raise InvalidInput("variables: not a JSON object: nested too deeply") from exc
        if not isinstance(value, dict):
            raise InvalidInput("variables: not a JSON object")
        return value
    variables: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, equals, value = line.partition("=")
        key = key.strip()
        if not equals or not _KEY.match(key):
            raise InvalidInput(
                f"variables, line {number}: write key=value (a key starts with a letter "
                f"or _), or give a JSON object; got {line[:80]!r}"
            )
        variables[key] = value.strip()
    return variables


def _number(fields: dict[str, str], name: str) -> int | None:
    text = fields.get(name, "").strip()
    if not text:
        return None
    if not (text.isascii() and text.lstrip("-").isdigit()) or len(text) > 19:
        raise InvalidInput(f"{name.replace('_', ' ')} must be a whole number, not {text[:40]!r}")
    return int(text)


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(part) for part in error.get("loc", ()))
        parts.append(f"{where or 'form'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def job_request(fields: dict[str, str]) -> dict[str, Any]:
    """The body ``POST /v1/jobs`` would take for this form, checked by its model."""
    body: dict[str, Any] = {}
    for name in ("workflow", "task", "name"):
        if fields.get(name, "").strip():
            body[name] = fields[name].strip()
    for name in NUMBERS:
        value = _number(fields, name)
        if value is not None:
            body[name] = value
    hosts = words(fields.get("hosts", ""))
    if hosts:
        body["hosts"] = hosts
    filters: dict[str, Any] = {}
    labels = words(fields.get("labels", ""))
    if labels:
        filters["label"] = labels
    for name in ("region", "cell"):
        if fields.get(name, "").strip():
            filters[name] = fields[name].strip()
    if filters:
        body["filters"] = filters
    body["variables"] = parse_variables(fields.get("variables", ""))
    try:
        checked = JobCreate.model_validate(body)
    except ValidationError as exc:
        raise InvalidInput(_validation_message(exc)) from exc
    # As the API's route passes it on (api.routes.jobs.create_job).
    data = checked.model_dump(exclude_unset=True)
    if checked.filters is not None:
        data["filters"] = checked.filters.model_dump(exclude_none=True)
    return data
