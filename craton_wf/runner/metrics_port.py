"""A standalone runner's own ``/metrics``: what this process observed, on a port of its own.

The fleet's figures (jobs and runs by state, heartbeats…) come from the
database and are served by the API; a runner serves only what it alone saw
(container starts, run and build durations, log lines stored, lease
takeovers, sweeps; :mod:`craton_wf.process_metrics`), plus its process's CPU
and memory. Prometheus scrapes each runner for these and sums them over the
fleet. ``craton-wf serve`` has no such port: its embedded runner's figures are
in the API's ``/metrics``.

A small threaded WSGI server from the standard library, on a daemon thread,
answering ``GET /metrics`` (any path, as prometheus-client's own server); with
``metrics_token`` set, only to that bearer token.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from craton_wf.process_metrics import bearer_matches, process_metrics

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """Scrapes every few seconds are not worth a line each."""


def _requiring(token: str, app: Wsgi) -> Wsgi:
    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if bearer_matches(token, environ.get("HTTP_AUTHORIZATION")):
            return app(environ, start_response)
        start_response(
            "401 Unauthorized",
            [("Content-Type", "application/json"), ("WWW-Authenticate", "Bearer")],
        )
        return [
            b'{"message": "/metrics needs the metrics token as a bearer token", '
            b'"status": 401, "code": "authentication_failed"}'
        ]

    return guarded


def serve_metrics(host: str, port: int, token: str | None = None) -> WSGIServer:
    """Serve this process's metrics on ``host:port`` until :meth:`shutdown`; raises
    ``OSError`` when the address cannot be bound."""
    app: Wsgi = make_wsgi_app(process_metrics().registry)
    if token:
        app = _requiring(token, app)

    class Server(ThreadingWSGIServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    server = make_server(host, port, app, Server, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="runner-metrics", daemon=True).start()
    return server
