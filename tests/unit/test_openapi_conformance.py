"""The API keeps to its OpenAPI document: schemathesis fuzzes every operation.

Each operation gets a few generated requests (valid and invalid ones) against
the real app, authenticated as the bootstrap root user, over a database that
holds one object of each kind so that some generated ids name something. A
request may be refused, but never with a server error, and every answer must
be one the document describes: its status, content type, headers and body;
what the document calls invalid is refused, and so is a call without credentials.
``CRATON_WF_FUZZ_EXAMPLES`` sets how many requests each operation gets per round.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, given  # noqa: E402
from hypothesis import settings as hypothesis_settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.core.failures import ServerError  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from craton_wf.db.engine import transaction  # noqa: E402
from tests.factories import make_inventory, make_ready_task  # noqa: E402


def no_server_error(ctx: Any, response: Any, case: Any) -> None:
    """No 5xx, but /readyz's 503: no runner runs beside this app."""
    if response.status_code >= 500 and not (case.path == "/readyz" and response.status_code == 503):
        raise ServerError(operation=case.operation.label, status_code=response.status_code)


CHECKS = [
    no_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,  # what the document says is invalid is refused
    missing_required_header,
    unsupported_method,
    ignored_auth,  # an operation that declares security refuses a request without it
]

# A few per operation and round keep the suite's time; set more for a deeper search.
EXAMPLES_PER_OPERATION = int(os.environ.get("CRATON_WF_FUZZ_EXAMPLES", "8"))


def seed(client: Any, sessions: Any, project_id: str) -> dict[str, Any]:
    """Id 1 of each kind: inventory (3 hosts), a READY approved task, a workflow, a
    pending job (no runner runs here), a secret. The path parameters naming them."""
    with transaction(sessions) as session:
        make_inventory(session, project_id)
        make_ready_task(session, project_id, "audit")
    for path, body in (
        ("/v1/workflows", {"name": "audit", "steps": ["audit"]}),
        ("/v1/jobs", {"workflow": "audit", "hosts": ["host-000", "host-001"]}),
        ("/v1/secrets", {"name": "secret", "value": "s3cret"}),
    ):
        answer = client.post(path, json=body)
        assert answer.status_code == 201, answer.text
    return {
        "project_id": project_id,
        "host_id": 1,
        "task_id": 1,
        "build_id": "1",
        "workflow_id": 1,
        "job_id": 1,
        "secret_id": "1",
    }


def known_path_parameters(operation: Any, known: dict[str, Any]) -> dict[str, Any] | None:
    """The seeded objects' ids for every path parameter of ``operation``, else None."""
    names = [p.name for p in operation.path_parameters]
    if not names or operation.method.upper() == "DELETE":  # keep the seeded objects
        return None
    values = {**known, "object_id": known["project_id"] if "/projects/" in operation.path else 1}
    if any(name not in values for name in names):
        return None
    return {name: values[name] for name in names}


def operations(app: Any) -> list[Any]:
    loaded = schemathesis.openapi.from_asgi("/openapi.json", app)
    return [result.ok() for result in loaded.get_all_operations()]


def fuzz(
    operation: Any, mode: Any, headers: dict[str, str], **strategy: Any
) -> tuple[int, list[str]]:
    """Requests sent, and how the answers broke the document (first failure's case)."""
    sent = 0
    problems: list[str] = []

    @hypothesis_settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the first failure is shown
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, **strategy))
    def run(case: Any) -> None:
        nonlocal sent
        if case.query and "follow" in case.query:
            case.query.pop("follow")  # a followed log streams until its job or build ends
        sent += 1
        try:
            case.call_and_validate(headers=headers, checks=CHECKS)
        except (AssertionError, BaseExceptionGroup) as exc:  # schemathesis's failures
            problems.append(f"{case.as_curl_command(headers)}\n{exc}")
            raise

    try:
        run()
    except (AssertionError, BaseExceptionGroup):
        pass
    except Unsatisfiable:  # nothing of the operation can be made invalid (no parameter)
        assert mode == GenerationMode.NEGATIVE
    return sent, problems[:1]


def test_every_answer_is_one_the_document_describes(api: Any, sessions: Any, root: Any) -> None:
    known = seed(api, sessions, root.project_id)
    sent = 0
    failures: list[str] = []
    for operation in operations(api.app):
        rounds: list[tuple[str, Any, dict[str, Any]]] = [
            ("positive", GenerationMode.POSITIVE, {}),
            ("negative", GenerationMode.NEGATIVE, {}),
        ]
        path_parameters = known_path_parameters(operation, known)
        if path_parameters:
            rounds.append(
                ("seeded ids", GenerationMode.POSITIVE, {"path_parameters": path_parameters})
            )
        for name, mode, strategy in rounds:
            count, problems = fuzz(operation, mode, root.headers, **strategy)
            sent += count
            failures += [f"{operation.label} ({name}): {p}" for p in problems]
    assert sent > 1000
    assert not failures, f"{len(failures)} operations broke the document:\n\n" + "\n\n".join(
        failures
    )


def test_every_operation_is_tagged_typed_and_secured(api: Any) -> None:
    """What a new route must say of itself for /docs to be of use."""
    document = api.get("/openapi.json").json()
    untidy = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            label = f"{method.upper()} {path}"
            success = next(code for code in operation["responses"] if code.startswith("2"))
            schema = (
                operation["responses"][success]
                .get("content", {})
                .get("application/json", {})
                .get("schema", {})
            )
            if not operation.get("tags"):
                untidy.append(f"{label}: no tag")
            if success != "204" and ("$ref" not in schema and "items" not in schema):
                untidy.append(f"{label}: {success} has no model")
            if path.startswith("/v1/") and (
                "security" not in operation or "401" not in operation["responses"]
            ):
                untidy.append(f"{label}: no security or no 401")
    assert untidy == []
    schemes = document["components"]["securitySchemes"]
    assert set(schemes) == {
        "X-Auth-Token",
        "X-Auth-User",
        "X-Auth-Project",
        "Bearer",
        "TriggerSignature",  # a template trigger's URL: its own secret, no token
        "TriggerTimestamp",
        "TriggerSecret",
    }


def test_a_query_parameter_taking_one_value_is_refused_twice(api: Any) -> None:
    twice = api.get("/v1/hosts", params=[("name", "a"), ("name", "b")])
    assert twice.status_code == 400
    assert twice.json()["message"] == "query parameter given more than once: name"
    assert api.get("/v1/hosts", params=[("label", "a"), ("label", "b")]).status_code == 200
    assert api.get("/v1/hosts/1/variables?resolved-values=1&resolved-values=0").status_code == 400


def test_a_method_a_path_does_not_take_is_405_with_allow(api: Any) -> None:
    answer = api.request("TRACE", "/v1/hosts")
    assert answer.status_code == 405
    assert set(answer.headers["Allow"].split(", ")) == {"GET", "POST"}
    assert answer.json()["code"] == "method_not_allowed"


def test_audit_times_are_iso_8601(api: Any) -> None:
    assert api.get("/v1/audit-events", params={"since": "2026-01-01T00:00:00Z"}).status_code == 200
    refused = api.get("/v1/audit-events", params={"until": "0.5"})
    assert refused.status_code == 422
    assert "ISO 8601" in refused.json()["message"]


def test_a_digit_that_is_not_ascii_is_a_name_not_an_id(api: Any) -> None:
    # '²'.isdigit() is true, but int('²') fails: it once answered 500
    assert api.put("/v1/workflows/²", json={}).status_code == 404
    assert api.get("/v1/tasks/²").status_code == 404
    assert api.get("/v1/users/²").status_code == 404
