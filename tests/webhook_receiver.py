"""A webhook receiver for tests: an HTTP server on 127.0.0.1 that checks every
delivery's signature as a real receiver would, answers 500 to the first attempts
of each event, and keeps each event id it accepted once."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from craton_wf.domain.webhooks import signature_matches

SECRET = "a-webhook-secret-of-the-test"


@dataclass
class Receiver:
    """An HTTP endpoint that checks each delivery's signature, fails the first
    ``failures`` attempts of each event with 500, and keeps the events it accepted."""

    secret: str
    failures: int = 2
    url: str = ""
    attempts: list[dict[str, Any]] = field(default_factory=list)
    accepted: dict[str, dict[str, Any]] = field(default_factory=dict)
    duplicates: int = 0
    bad_signatures: int = 0

    def answer(self, headers: Any, body: bytes) -> int:
        event_id = headers.get("X-Craton-Delivery")
        valid = signature_matches(
            self.secret,
            headers.get("X-Craton-Timestamp", ""),
            body,
            headers.get("X-Craton-Signature"),
        )
        self.attempts.append(
            {"id": event_id, "valid": valid, "event": headers.get("X-Craton-Event")}
        )
        if not valid:
            self.bad_signatures += 1
            return 401
        seen = sum(1 for a in self.attempts if a["id"] == event_id)
        if seen <= self.failures:
            return 500
        if event_id in self.accepted:
            self.duplicates += 1  # already processed: acknowledged, not processed again
        else:
            self.accepted[event_id] = json.loads(body)
        return 200


@contextmanager
def serve_receiver(failures: int = 2) -> Iterator[Receiver]:
    """A :class:`Receiver` listening on loopback (a port of its own) while in the block."""
    found = Receiver(SECRET, failures)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with lock:
                status = found.answer(self.headers, body)
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    found.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()
