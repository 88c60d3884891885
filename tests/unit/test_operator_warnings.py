"""Approval turned off is said wherever an operator looks: ``/readyz`` and every answer's
``X-Craton-Warning`` header (the server log at start: tests/e2e/test_single_operator.py)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from craton_wf.api.app import create_app
from craton_wf.api.operator_warnings import APPROVAL_OFF, WARNING_HEADER
from tests.unit.test_api_system import register_runner


def test_readyz_warns_while_approval_is_off_and_stays_ready(settings, sessions, root) -> None:  # type: ignore[no-untyped-def]
    register_runner(sessions)
    lab = settings.model_copy(update={"require_approval": False})
    with TestClient(create_app(lab, sessions), headers=root.headers) as client:
        answer = client.get("/readyz")
    assert answer.status_code == 200, answer.json()
    assert answer.json()["status"] == "ready"
    assert answer.json()["warnings"] == [APPROVAL_OFF]
    assert answer.json()["warnings"][0].startswith("approval is off")


def test_readyz_has_no_warning_while_approval_is_on(api, sessions) -> None:  # type: ignore[no-untyped-def]
    register_runner(sessions)
    answer = api.get("/readyz")
    assert answer.status_code == 200
    assert answer.json()["warnings"] == []
    assert WARNING_HEADER not in answer.headers


def test_every_answer_carries_the_warning_while_approval_is_off(settings, sessions, root) -> None:  # type: ignore[no-untyped-def]
    lab = settings.model_copy(update={"require_approval": False})
    with TestClient(create_app(lab, sessions), headers=root.headers) as client:
        answers = [
            client.get("/healthz"),
            client.get("/v1/hosts"),
            client.get("/v1/hosts/999"),  # an error
            client.get("/v1/hosts", headers={"X-Auth-Token": "wrong"}),  # refused
            client.post("/v1/clouds", content=b"x" * (lab.request_max_bytes + 1)),  # 413
        ]
    assert [a.status_code for a in answers] == [200, 200, 404, 401, 413]
    for answer in answers:
        assert answer.headers.get_list(WARNING_HEADER) == [APPROVAL_OFF], answer.url


def test_no_answer_carries_a_warning_while_approval_is_on(api) -> None:  # type: ignore[no-untyped-def]
    for answer in (api.get("/healthz"), api.get("/v1/hosts"), api.get("/v1/hosts/999")):
        assert WARNING_HEADER not in answer.headers
