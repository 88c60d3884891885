"""A host's address: an IPv4 or IPv6 address, as the standard library reads it.

The inventory serves a host's address back to tools that act on it (the
Ansible export's ``ansible_host``, a task's payload), so it takes addresses
only: not host names, and never text that a shell or a template would read as
more than an address. The standard library takes any text after an IPv6
address's ``%`` as its zone (``fe80::1%$(id)``), so a zone must be an
interface's name or number. Rows stored before the check may hold anything;
the export leaves an invalid one out rather than serve it.
"""

from __future__ import annotations

import ipaddress
import re

_ZONE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def is_ip_address(text: str) -> bool:
    """True for ``10.0.0.3``, ``2001:db8::1``, ``fe80::1%eth0``; False for anything else."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    zone = getattr(address, "scope_id", None)
    return zone is None or bool(_ZONE.fullmatch(zone))
