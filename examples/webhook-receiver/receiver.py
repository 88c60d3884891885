"""A webhook receiver for craton-wf, standard library only: checks, keeps, prints.

    WEBHOOK_SECRET=... python3 receiver.py --port 8088

For each POST it checks, in this order, and answers:

- 401 when ``X-Craton-Signature`` is not ``sha256=`` + the hex HMAC-SHA256 of
  ``<X-Craton-Timestamp>.<body>`` under the secret (a forged or altered
  delivery, or one signed with another secret);
- 401 when the timestamp is more than five minutes from this machine's clock
  (a delivery recorded and replayed later);
- 200 without acting again when the event id (``X-Craton-Delivery``, the same on
  every retry and redelivery) was already accepted: deliveries are at least
  once, and this is how a receiver makes them exactly once;
- 200 after acting (here: printing the event) otherwise.

Behind a public https proxy this is what an endpoint of ``craton webhook-create``
needs; a real one keeps the accepted ids in its own database, not in memory.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import sys
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE_SECONDS = 300


def check_delivery(
    secret: str, headers: Mapping[str, str], body: bytes, now: float, seen: set[str]
) -> tuple[int, str]:
    """The status to answer and why; adds an accepted event id to ``seen``."""
    timestamp = headers.get("X-Craton-Timestamp", "")
    expected = (
        "sha256="
        + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    )
    if not hmac.compare_digest(expected, headers.get("X-Craton-Signature", "")):
        return 401, "bad signature"
    try:
        age = abs(now - int(timestamp))
    except ValueError:
        return 401, "bad timestamp"
    if age > TOLERANCE_SECONDS:
        return 401, "timestamp outside the window (a replay?)"
    event_id = headers.get("X-Craton-Delivery", "")
    if event_id in seen:
        return 200, "already accepted"
    seen.add(event_id)
    return 200, "accepted"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8088)
    args = parser.parse_args()
    secret = os.environ.get("WEBHOOK_SECRET", "")
    if not secret:
        print("ERROR: set WEBHOOK_SECRET to the webhook's secret", file=sys.stderr)
        return 1
    seen: set[str] = set()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with lock:
                status, why = check_delivery(secret, self.headers, body, time.time(), seen)
            if why == "accepted":
                event = json.loads(body)
                print(event["type"], event["id"], json.dumps(event["data"]), flush=True)
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(why.encode())

    ThreadingHTTPServer((args.host, args.port), Handler).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
