"""What a task container that asked for the network sees of the platform.

A task reaches the API at ``CRATON_URL``. Unless the operator names a URL
(``CRATON_WF_PUBLIC_URL``), that is ``http://host.docker.internal:<api port>``
(``https://`` when the API serves https):
the Docker executor maps the name to the gateway of the task's project
network, where the API answers (directly when it listens on every address,
else through the runner's forwarder). The name, not an address, goes into the
environment because the environment is made before the container's network
is known, and one name fits every project's bridge.

A task without the network has no interface but loopback, so it cannot reach
the API at all, whatever ``CRATON_URL`` says.
"""

from __future__ import annotations

from urllib.parse import urlsplit

API_HOSTNAME = "host.docker.internal"
LINK_LOCAL = "169.254.0.0/16"  # cloud metadata services live here


def task_api_url(public_url: str | None, api_port: int, *, https: bool = False) -> str:
    """The ``CRATON_URL`` of a task container; https when the API serves it (the
    forwarder relays bytes, so the task's TLS session is with the API itself)."""
    return (public_url or f"{'https' if https else 'http'}://{API_HOSTNAME}:{api_port}").rstrip("/")


def url_port(url: str) -> int:
    """The TCP port a URL names, its scheme's default when it names none."""
    parts = urlsplit(url)
    if parts.port is not None:
        return parts.port
    return 443 if parts.scheme == "https" else 80
