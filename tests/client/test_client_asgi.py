"""An in-process ASGI app behind the sync client (``transport=httpx.ASGITransport(app)``)."""

from __future__ import annotations

import json

import httpx
import pytest

import cratonclient


async def app(scope, receive, send) -> None:
    """A tiny ASGI app: one paginated list, one echo, one NDJSON stream, one error."""
    assert scope["type"] == "http"
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    path, query = scope["path"], scope["query_string"].decode()
    content_type = b"application/json"
    status = 200
    if path == "/v1/regions" and "marker=1" in query:
        answer = {"regions": [{"id": 2, "name": "r2"}], "links": []}
    elif path == "/v1/regions":
        answer = {
            "regions": [{"id": 1, "name": "r1"}],
            "links": [{"rel": "next", "href": "/v1/regions?limit=1&marker=1"}],
        }
    elif path == "/v1/regions/1/variables":
        answer = {"variables": json.loads(body)}
    elif path == "/v1/jobs/1/logs":
        content_type = b"application/x-ndjson"
        answer = None
        body = b'{"id": 1, "line": "a"}\n{"id": 2, "line": "b"}\n'
    else:
        status, answer = 404, {"message": f"No {path}.", "status": 404, "code": "not_found"}
    payload = body if answer is None else json.dumps(answer).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type)],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def test_client_runs_an_asgi_app_in_process() -> None:
    with cratonclient.Client("http://test", transport=httpx.ASGITransport(app)) as client:
        assert [r.name for r in client.regions.list()] == ["r1", "r2"]
        assert client.regions.set_variables(1, {"ntp": "10.0.0.1"}) == {"ntp": "10.0.0.1"}
        assert [e.line for e in client.jobs.logs(1, follow=True)] == ["a", "b"]
        with pytest.raises(cratonclient.NotFound, match=r"No /v1/hosts/5\."):
            client.hosts.get(5)
