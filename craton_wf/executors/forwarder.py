"""The runner's forwarder: the API's port on the gateways of the project networks.

In the embedded default the API listens on 127.0.0.1 only, which a task
container cannot reach: its own loopback is its own. Rather than have the API
listen on every address of the host, the runner (which creates the project
networks and so knows their gateways) listens on each gateway at the API's
port and relays every connection, byte for byte, to the API's own address.
A task's ``CRATON_URL`` names ``host.docker.internal``, which the executor
maps to that gateway. Nothing else of the host is offered on the bridge; with
``CRATON_WF_TASK_NETWORK_FIREWALL`` it is also the only port of the host a
task may reach (:mod:`craton_wf.executors.firewall`).

When the API listens on every address (``0.0.0.0``, ``::``) it answers on the
gateways itself and no forwarder is started. Another runner process of the
same host may already hold a gateway's port: that runner relays to the same
API, so an address in use is left to it. If that runner stops, the next
runner to start a networked task of that project takes the address over
(every start tries it); tasks already running lose the API until then.
Relaying uses two threads per connection; tasks open few connections (a
handful of API calls each).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import threading

log = logging.getLogger(__name__)

WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})
CHUNK = 64 * 1024


def forward_target(api_host: str) -> str | None:
    """Where a forwarder relays to; None when the API answers on every address itself."""
    if api_host in WILDCARD_HOSTS:
        return None
    return api_host


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy one direction until it ends, then pass the end on (half-close)."""
    try:
        while chunk := source.recv(CHUNK):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def _relay(client: socket.socket, target: tuple[str, int]) -> None:
    try:
        upstream = socket.create_connection(target, timeout=10)
    except OSError as exc:
        log.warning("could not relay a task's connection to the API at %s:%s: %s", *target, exc)
        client.close()
        return
    upstream.settimeout(None)
    back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
    back.start()
    _pump(client, upstream)
    back.join()
    client.close()
    upstream.close()


class _Listener:
    def __init__(self, server: socket.socket, target: tuple[str, int]) -> None:
        self.server = server
        self.target = target
        self.thread = threading.Thread(
            target=self._accept, name=f"api-forwarder-{server.getsockname()[0]}", daemon=True
        )
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return  # closed
            threading.Thread(target=_relay, args=(client, self.target), daemon=True).start()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.server.shutdown(socket.SHUT_RDWR)
        self.server.close()
        self.thread.join(timeout=5)


class ApiForwarder:
    """Listens on gateway addresses at ``port`` and relays to ``target_host:target_port``."""

    def __init__(self, target_host: str, target_port: int, port: int | None = None) -> None:
        self.target = (target_host, target_port)
        self.port = target_port if port is None else port
        self._listeners: dict[str, _Listener] = {}
        self._lock = threading.Lock()

    def listen_on(self, address: str) -> bool:
        """Relay from ``address``; False when another process holds that address's port."""
        with self._lock:
            if address in self._listeners:
                return True
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            server = socket.socket(family, socket.SOCK_STREAM)
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                server.bind((address, self.port))
            except OSError as exc:
                server.close()
                if exc.errno == errno.EADDRINUSE:
                    log.info("%s:%s is held by another process; leaving it", address, self.port)
                    return False
                raise
            server.listen(64)
            self._listeners[address] = _Listener(server, self.target)
            return True

    def addresses(self) -> list[str]:
        with self._lock:
            return sorted(self._listeners)

    def close(self) -> None:
        with self._lock:
            listeners, self._listeners = list(self._listeners.values()), {}
        for listener in listeners:
            listener.close()
