"""A scripted fake of the craton-wf API for the client's unit tests.

:class:`Router` is an ``httpx.MockTransport`` handler: tests register
answers per method and path pattern, and read back the requests the client
sent. ``Router.collection`` serves a list the way the API contract says
lists work (``limit``, ``marker``, ``name`` filter, ``next`` links).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from cratonclient import Client
from cratonclient.shell import _watch
from cratonclient.shell import main as shell_main

Answer = httpx.Response | dict | list | Callable[..., httpx.Response]

URL = "http://craton.test:7780"


def error(status: int, message: str, code: str = "error") -> httpx.Response:
    """An error answer shaped like the server's."""
    return httpx.Response(status, json={"message": message, "status": status, "code": code})


def ndjson(objects: list[dict]) -> httpx.Response:
    """A streamed answer: one JSON object per line."""
    body = "".join(json.dumps(o) + "\n" for o in objects)
    return httpx.Response(200, content=body, headers={"content-type": "application/x-ndjson"})


def sse(objects: list[dict], end: dict | None = None, event: str = "line") -> httpx.Response:
    """A follow stream as the server sends it: an event per object (its ``id`` as the
    event's), then ``end`` with ``end``'s data unless it is None (a cut stream)."""
    frames = ["retry: 2000\n\n", ": keep-alive\n\n"]
    for item in objects:
        ident = item.get("id", item.get("seq"))
        frames.append(f"id: {ident}\nevent: {event}\ndata: {json.dumps(item)}\n\n")
    if end is not None:
        frames.append(f"event: end\ndata: {json.dumps(end)}\n\n")
    body = "".join(frames)
    return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})


@dataclass
class Router:
    """Tests reach the helpers through the fixture: ``router.error``, ``router.ndjson``,
    ``router.sse``."""

    url = URL
    error = staticmethod(error)
    ndjson = staticmethod(ndjson)
    sse = staticmethod(sse)

    routes: list[tuple[str, re.Pattern[str], Answer]] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def add(self, method: str, pattern: str, answer: Answer) -> None:
        """Answer ``method pattern`` (a regex matched against the whole path). Later wins."""
        self.routes.insert(0, (method, re.compile(pattern), answer))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        for method, pattern, answer in self.routes:
            match = pattern.fullmatch(request.url.path)
            if method == request.method and match:
                if callable(answer):
                    return answer(request, **match.groupdict())
                if isinstance(answer, httpx.Response):
                    return answer
                status = 201 if method == "POST" else 200
                return httpx.Response(status, json=answer)
        return error(404, f"No route {request.method} {request.url.path}", "not_found")

    def collection(self, path: str, key: str, items: list[dict], default_limit: int = 100) -> None:
        """Serve ``items`` at ``path`` as a paginated, name-filterable list."""

        def answer(request: httpx.Request) -> httpx.Response:
            params = request.url.params
            selected = [i for i in items if "name" not in params or i.get("name") == params["name"]]
            if "marker" in params:
                ids = [str(i["id"]) for i in selected]
                selected = selected[ids.index(params["marker"]) + 1 :]
            limit = int(params.get("limit", default_limit))
            page = selected[:limit]
            links = [{"rel": "self", "href": str(request.url)}]
            if len(selected) > limit:
                query = {**dict(params), "limit": limit, "marker": page[-1]["id"]}
                links.append({"rel": "next", "href": f"{path}?{urlencode(query)}"})
            return httpx.Response(200, json={key: page, "links": links})

        self.add("GET", re.escape(path), answer)

    def sent(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and r.url.path == path]

    def client(self, **kwargs: Any) -> Client:
        kwargs.setdefault("username", "alice")
        kwargs.setdefault("token", "secret")
        return Client(URL, transport=httpx.MockTransport(self), **kwargs)


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def router() -> Router:
    return Router()


@pytest.fixture
def client(router: Router):
    with router.client() as c:
        yield c


@pytest.fixture
def cli(router: Router, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """Run ``craton`` with its arguments against the router; answer code, stdout, stderr."""
    monkeypatch.setattr(_watch, "POLL_INTERVAL", 0)

    def run(*argv: str) -> Result:
        capsys.readouterr()
        with router.client() as client:
            code = shell_main.main(list(argv), client=client)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run
