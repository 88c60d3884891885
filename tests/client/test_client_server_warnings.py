"""A server's ``X-Craton-Warning`` (e.g. approval off) reaches the user once per command."""

from __future__ import annotations

import logging

import httpx
import pytest

from cratonclient import Client

WARNING = "approval is off (CRATON_WF_REQUIRE_APPROVAL=false): single-operator labs only"


def warned(answer: httpx.Response) -> httpx.Response:
    answer.headers["X-Craton-Warning"] = WARNING
    return answer


def test_a_session_logs_each_warning_once(router, caplog: pytest.LogCaptureFixture) -> None:
    router.add("GET", "/healthz", lambda request: warned(httpx.Response(200, json={})))
    with caplog.at_level(logging.WARNING, logger="cratonclient"), router.client() as client:
        client.health()
        client.health()
        client.health()
    assert [r.getMessage() for r in caplog.records] == [WARNING]


def test_the_cli_prints_one_warning_line_for_a_command_of_many_requests(router, cli) -> None:
    pages = {
        None: ([{"id": 1, "name": "compute-1", "labels": []}], "/v1/hosts?marker=1"),
        "1": ([{"id": 2, "name": "compute-2", "labels": []}], "/v1/hosts?marker=2"),
        "2": ([{"id": 3, "name": "compute-3", "labels": []}], None),
    }

    def paged(request: httpx.Request) -> httpx.Response:
        hosts, link = pages[request.url.params.get("marker")]
        links = [{"rel": "next", "href": link}] if link else []
        return warned(httpx.Response(200, json={"hosts": hosts, "links": links}))

    router.add("GET", "/v1/hosts", paged)

    result = cli("host-list", "--all")

    assert result.code == 0, result.err
    assert len(router.sent("GET", "/v1/hosts")) == 3
    assert result.err.splitlines() == [f"WARNING: {WARNING}"]
    assert "compute-3" in result.out


def test_the_cli_says_nothing_when_the_server_does_not_warn(router, cli) -> None:
    router.collection("/v1/hosts", "hosts", [{"id": 1, "name": "compute-1", "labels": []}])
    result = cli("host-list")
    assert result.code == 0
    assert "WARNING" not in result.err


def test_the_warning_also_comes_with_an_error(router, cli) -> None:
    router.add(
        "GET", "/v1/hosts/42", lambda request: warned(router.error(404, "Host 42 not found."))
    )
    result = cli("host-show", "42")
    assert result.code == 3
    assert result.err.splitlines() == [f"WARNING: {WARNING}", "ERROR: Host 42 not found."]


def test_library_users_get_it_through_logging_only(router, capsys) -> None:  # type: ignore[no-untyped-def]
    router.add("GET", "/healthz", lambda request: warned(httpx.Response(200, json={})))
    with Client(router.url, transport=httpx.MockTransport(router)) as client:
        assert client.health() == {}
    assert capsys.readouterr().out == ""
