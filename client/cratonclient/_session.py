"""The HTTP session: auth headers, error mapping, pagination, follow streams.

Every request of the library goes through :class:`Session`, so this is the one
place where httpx errors become :mod:`cratonclient.exceptions`: a transport
failure becomes ``ConnectionFailed``, an error status goes through
``exceptions.from_response``.

Pagination follows the server's ``next`` links instead of computing markers:
the link carries the page size, sort keys and filters the server actually
applied, so the client cannot drift from it. A link may be a path with query
(``/v1/hosts?limit=2&marker=7``) or an absolute URL; both are requested as
they are.

Over https, ``verify`` and ``cert`` say which CAs the server's certificate
is checked by and which certificate the client presents (:mod:`._tls`).

An async transport (``httpx.ASGITransport(app)``, for in-process tests) is
run through :class:`cratonclient._asgi.SyncTransport`.

A server warns about its configuration (e.g. approval turned off) with an
``X-Craton-Warning`` header on every answer; each distinct warning is logged
once per session on the ``cratonclient`` logger, which the CLI prints as a
``WARNING:`` line.

Follow streams (``follow=true``, Server-Sent Events: :mod:`._sse`) are read
with no read timeout: a build or a job may stay silent for minutes (the
server's keep-alive comments aside), and the stream ends with its ``end``
event when the build or job is finished.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from . import exceptions
from ._asgi import SyncTransport
from ._sse import StreamEvent, parse_ndjson, parse_sse
from ._tls import Cert, Verify, ssl_context
from ._version import __version__

DEFAULT_TIMEOUT = 30.0

#: What a follow stream asks for: events, else NDJSON (an older server), else a page.
FOLLOW_ACCEPT = "text/event-stream, application/x-ndjson;q=0.9, application/json;q=0.8"

#: The header of the server's warnings about its own configuration.
WARNING_HEADER = "X-Craton-Warning"

log = logging.getLogger("cratonclient")

Params = Mapping[str, Any]


def clean_params(params: Params | None) -> dict[str, Any]:
    """Query parameters as httpx wants them: no ``None``, booleans spelled ``true``/``false``.

    Lists stay lists (httpx repeats the key: ``label=a&label=b``).
    """
    cleaned: dict[str, Any] = {}
    for key, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, list | tuple):
            value = [("true" if v else "false") if isinstance(v, bool) else v for v in value]
        cleaned[key] = value
    return cleaned


def marker_of(link: str | None) -> str | None:
    """The ``marker`` query parameter of a ``next`` link."""
    if not link:
        return None
    values = parse_qs(urlsplit(link).query).get("marker")
    return values[0] if values else None


def next_link(body: Mapping[str, Any]) -> str | None:
    """The ``href`` of the ``rel=next`` link of a list answer, if any."""
    for link in body.get("links") or []:
        if isinstance(link, dict) and link.get("rel") == "next" and link.get("href"):
            return str(link["href"])
    return None


class Session:
    """An httpx client bound to one craton server and one set of credentials."""

    def __init__(
        self,
        url: str,
        *,
        project_id: str | None = None,
        username: str | None = None,
        token: str | None = None,
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        verify: Verify = True,
        cert: Cert | None = None,
    ) -> None:
        self.url = _server_root(url)
        if isinstance(transport, httpx.AsyncBaseTransport) and not isinstance(
            transport, httpx.BaseTransport
        ):
            transport = SyncTransport(transport)
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._http = httpx.Client(
            base_url=self.url,
            headers=auth_headers(project_id, username, token),
            transport=transport,
            timeout=self.timeout,
            verify=ssl_context(verify, cert),
            event_hooks={"response": [self._log_server_warnings]},
        )
        self._warned: set[str] = set()

    def close(self) -> None:
        self._http.close()

    def _log_server_warnings(self, response: httpx.Response) -> None:
        """Each ``X-Craton-Warning`` of an answer, logged the first time this session sees it."""
        for warning in response.headers.get_list(WARNING_HEADER):
            if warning not in self._warned:
                self._warned.add(warning)
                log.warning("%s", warning)

    # -- plain requests -------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a request; answer the response or raise the mapped exception."""
        if "params" in kwargs:
            # An empty ``params`` would make httpx drop the query of a ``next`` link.
            kwargs["params"] = clean_params(kwargs["params"]) or None
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._connection_failed(exc) from exc
        if response.is_error:
            raise exceptions.from_response(response)
        return response

    def get_json(self, path: str, params: Params | None = None) -> Any:
        return _json_of(self.request("GET", path, params=params))

    def post_json(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        if body is not None:
            kwargs["json"] = body
        return _json_of(self.request("POST", path, **kwargs))

    def put_json(self, path: str, body: Any) -> Any:
        return _json_of(self.request("PUT", path, json=body))

    def delete(self, path: str, body: Any = None) -> None:
        kwargs = {} if body is None else {"json": body}
        self.request("DELETE", path, **kwargs)

    # -- lists ----------------------------------------------------------------

    def get_page(
        self, path: str, key: str, params: Params | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of a list: its items and the ``next`` link (``None`` on the last page)."""
        body = self.get_json(path, params)
        if not isinstance(body, dict) or not isinstance(body.get(key), list):
            raise exceptions.ClientError(f"Unexpected answer from {path}: no {key!r} list")
        return body[key], next_link(body)

    def iter_items(
        self, path: str, key: str, params: Params | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every item of a list, following ``next`` links until there is none."""
        items, link = self.get_page(path, key, params)
        yield from items
        seen = set()
        while link and items:
            if link in seen:  # a server bug must not become an endless loop
                raise exceptions.ClientError(f"The server sent the same next link twice: {link}")
            seen.add(link)
            items, link = self.get_page(link, key)
            yield from items

    # -- streams --------------------------------------------------------------

    def stream_events(
        self,
        path: str,
        params: Params | None = None,
        *,
        last_event_id: int | None = None,
        key: str = "logs",
    ) -> Iterator[StreamEvent]:
        """The events of a follow stream as they arrive (:mod:`._sse`), from after
        ``last_event_id`` when given.

        Server-Sent Events are asked for; an NDJSON answer (an older server) is
        read into the same events, and a plain JSON one (a server that does not
        stream) gives a ``line`` event per object of its ``key`` list. An
        ``error`` event (the object stopped being the caller's) is raised as the
        error its status means.
        """
        timeout = httpx.Timeout(self.timeout.connect, read=None, write=None, pool=None)
        headers = {"Accept": FOLLOW_ACCEPT}
        if last_event_id:
            headers["Last-Event-ID"] = str(last_event_id)
        try:
            with self._http.stream(
                "GET", path, params=clean_params(params) or None, headers=headers, timeout=timeout
            ) as response:
                if response.is_error:
                    response.read()
                    raise exceptions.from_response(response)
                content_type = response.headers.get("content-type", "")
                if "application/json" in content_type:
                    response.read()
                    for item in (_json_of(response) or {}).get(key, []):
                        yield StreamEvent("line", item, item.get("id"))
                    return
                parse = parse_sse if "text/event-stream" in content_type else parse_ndjson
                for event in parse(response.iter_lines()):
                    if event.event == "error":
                        error = httpx.Response(int(event.data.get("status", 500)), json=event.data)
                        raise exceptions.from_response(error)
                    yield event
        except httpx.TransportError as exc:
            raise self._connection_failed(exc) from exc

    def _connection_failed(self, exc: httpx.TransportError) -> exceptions.ConnectionFailed:
        reason = str(exc) or type(exc).__name__
        message = f"Cannot reach the craton server at {self.url}: {reason}"
        return exceptions.ConnectionFailed(message)


def auth_headers(project_id: str | None, username: str | None, token: str | None) -> dict[str, str]:
    """Craton's headers; a token without a user name is sent as a bearer token."""
    headers = {"User-Agent": f"craton-client/{__version__}", "Accept": "application/json"}
    if project_id:
        headers["X-Auth-Project"] = str(project_id)
    if username:
        headers["X-Auth-User"] = username
        if token:
            headers["X-Auth-Token"] = token
    elif token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _server_root(url: str) -> str:
    """The server's root URL; a trailing ``/v1`` is accepted and dropped."""
    url = url.rstrip("/")
    if url.endswith("/v1"):
        url = url[: -len("/v1")]
    return url


def _json_of(response: httpx.Response) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError as exc:
        body = exceptions.truncate(response.text)
        message = f"The server answered something that is not JSON: {body}"
        raise exceptions.ClientError(message) from exc
