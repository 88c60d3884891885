"""The HTTP side of the fake cluster: JSON answers, and chunked streams for watches and logs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.kubefake.protocol import ApiError, ConnectionDropped


@dataclass
class Stream:
    """A streamed answer: watch events or log output, sent as they come."""

    chunks: Iterator[bytes]
    content_type: str


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - the http.server protocol
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return

    def _dispatch(self, method: str) -> None:
        cluster: Any = self.server.cluster  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            result = cluster.serve(
                method, url.path, query, body, self.headers.get("Content-Type", "")
            )
        except ApiError as exc:
            result = (exc.code, exc.status())
        except (ValueError, KeyError, TypeError) as exc:
            result = (400, ApiError(400, "BadRequest", f"bad request: {exc}").status())
        try:
            if isinstance(result, Stream):
                self._send_stream(result)
            else:
                self._send_json(*result)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _send_json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_stream(self, stream: Stream) -> None:
        self.send_response(200)
        self.send_header("Content-Type", stream.content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for chunk in stream.chunks:
                if chunk:
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except ConnectionDropped:
            self.close_connection = True  # no last chunk: the client sees the answer cut
        finally:
            close = getattr(stream.chunks, "close", None)
            if close is not None:
                close()
