"""What the settings let a task's source be: the git policy and the upload archive limits.

The API (at task create, update and rebuild) and the runner's builder (right
before a clone or an unpack) build their rules here from the same settings,
so both check with the same ones; here, below both the API's use cases and
the runner, as :mod:`craton_wf.engine.task_env` builds a task's resource
policy. The git policy carries the one piece of
I/O of the URL check, the host name lookup (:func:`resolve_host_addresses`),
which the pure check in :mod:`craton_wf.domain.sources` cannot do itself.
"""

from __future__ import annotations

import socket

from craton_wf.domain.archives import ArchiveLimits
from craton_wf.domain.sources import GitSourcePolicy
from craton_wf.settings import Settings


def resolve_host_addresses(host: str) -> list[str]:
    """Every address ``host`` resolves to; ``OSError`` when it does not resolve."""
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return sorted({str(info[4][0]) for info in infos})


def git_source_policy(settings: Settings) -> GitSourcePolicy:
    return GitSourcePolicy(
        ssh_hosts=frozenset(host.strip().lower() for host in settings.git_ssh_allowed_hosts),
        allow_http=settings.git_allow_http,
        allow_private_hosts=settings.git_allow_private_hosts,
        allow_local=settings.git_allow_local_sources,
        # looked up at each call, so tests can stand in for DNS
        resolve=lambda host: resolve_host_addresses(host),
    )


def archive_limits(settings: Settings) -> ArchiveLimits:
    return ArchiveLimits(
        max_members=settings.upload_max_members,
        max_bytes=settings.upload_max_unpacked_bytes,
        max_ratio=settings.upload_max_ratio,
    )
