"""Which git sources the platform accepts: one check used at the API and right before a clone.

A task's ``location`` is handed to ``git`` on the runner, so it is checked
as hostile input by :func:`check_git_source`, both when a task is created
or changed (the service) and again by the builder just before it clones (the
settings may have changed since, and old rows were checked by older rules).

Accepted, by default, are only ``https://`` URLs to public hosts, and ssh
(``ssh://user@host/path`` or scp-like ``user@host:path``) to the hosts an
operator allowlisted. Refused, with a message naming the problem:

- remote helpers (``ext::…``, any ``<transport>::…``), ``file:`` URLs and
  local paths (``file://`` only when local sources are allowed, for tests),
  plain ``http://`` unless allowed, any other scheme;
- a ``-`` at the start of the URL, its host, user or any path segment, of
  the ref or of any component of the subdirectory or Dockerfile (git or ssh
  would read it as an option), and ``$``, backticks, whitespace or control
  characters anywhere;
- credentials in the URL (any user part of an https URL, a password in an
  ssh URL): they would be stored and shown with the task;
- hosts that are loopback, private, link-local, unspecified, multicast or
  otherwise not public addresses — a literal IP, or every address a name
  resolves to — unless private hosts are allowed. A name that does not
  resolve is refused too. An allowlisted ssh host is trusted as named.

This module stays pure: the name lookup is the policy's ``resolve``
callable, supplied by the service layer from the settings. Without one
(tests and tools calling the services directly) names are not looked up;
literal addresses and ``localhost`` are still refused. A lookup at check time
cannot stop a name that re-resolves differently for git a moment later; the
builder checks again right before cloning and git follows no redirects.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from craton_wf.errors import UnsafeSource

Resolver = Callable[[str], Sequence[str]]
"""A host name → its addresses; raises ``OSError`` when it does not resolve."""

MAX_URL_CHARS = 2048
_SSH_SCHEMES = ("ssh", "git+ssh", "ssh+git")
_HELPER = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*::")
_SCP_LIKE = re.compile(
    r"^(?:(?P<user>[^@/:\[\]]+)@)?(?P<host>\[[^\]/]+\]|[^@/:\[\]]+):(?P<path>.*)$"
)
_FORBIDDEN_CHARS = re.compile(r"[$`\\\s\x00-\x1f\x7f]")
_REF_FORBIDDEN = re.compile(r"[~^:?*\[\\]|\.\.|@\{|//")
_HOST_NAME = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9._-]*[A-Za-z0-9_])?\.?$")
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$", re.IGNORECASE)


@dataclass(frozen=True)
class GitSourcePolicy:
    """What the settings allow beyond public ``https://`` URLs."""

    ssh_hosts: frozenset[str] = frozenset()
    allow_http: bool = False
    allow_private_hosts: bool = False
    allow_local: bool = False
    resolve: Resolver | None = None

    @property
    def protocols(self) -> tuple[str, ...]:
        """The transports git may use (``GIT_ALLOW_PROTOCOL``), in the same spirit."""
        allowed = ["https"]
        if self.allow_http:
            allowed.append("http")
        if self.ssh_hosts:
            allowed.append("ssh")
        if self.allow_local:
            allowed.append("file")
        return tuple(allowed)


def redact_url(url: str) -> str:
    """The URL without a password or an https user (often a token), for logs and messages."""
    try:
        parts = urlsplit(url)
        password, username = parts.password, parts.username
    except ValueError:
        return url
    if password is None and not (username and parts.scheme.startswith("http")):
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    user = "***" if parts.scheme.startswith("http") or not username else f"{username}:***"
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


def check_git_source(
    url: str,
    policy: GitSourcePolicy,
    *,
    ref: str | None = None,
    subdir: str | None = None,
    dockerfile: str | None = None,
) -> str:
    """The URL, stripped, once it, the ref and the paths are safe for git; else UnsafeSource."""
    check_git_ref(ref)
    check_source_path(subdir, "subdir")
    check_source_path(dockerfile, "dockerfile")
    return check_git_url(url, policy)


def check_git_ref(ref: str | None) -> str | None:
    """A branch, tag, full ref or commit id git cannot read as an option or an expression."""
    if ref is None:
        return None
    if (
        not ref
        or len(ref) > 255
        or _FORBIDDEN_CHARS.search(ref)
        or _REF_FORBIDDEN.search(ref)
        or any(part.startswith("-") or not part for part in ref.split("/"))
        or ref.endswith((".", ".lock"))
    ):
        raise UnsafeSource(
            f"invalid git ref {ref!r}: a branch, tag or commit id is expected (no part may "
            "start with '-'; no whitespace, '$', backticks, '..', '@{' or any of ~^:?*[\\)"
        )
    return ref


def check_source_path(path: str | None, what: str) -> str | None:
    """A relative path inside the source (a subdirectory or the Dockerfile), or None."""
    if path in (None, ""):
        return None
    assert path is not None
    parts = path.replace("\\", "/").split("/")
    if path.startswith("/") or ".." in parts:
        raise UnsafeSource(f"{what} must be a relative path inside the source: {path!r}")
    if _FORBIDDEN_CHARS.search(path.replace("\\", "/")) or any(p.startswith("-") for p in parts):
        raise UnsafeSource(
            f"{what} {path!r} is refused: no component may start with '-', and no '$', "
            "backticks, whitespace or control characters"
        )
    return path


def check_git_url(url: str, policy: GitSourcePolicy) -> str:
    """The URL, stripped, if git may fetch it under ``policy``."""
    url = (url or "").strip()
    if not url:
        raise UnsafeSource("location is required: a git URL or, from the CLI, a local directory")
    shown = redact_url(url)
    if len(url) > MAX_URL_CHARS:
        raise UnsafeSource(f"the git URL is longer than {MAX_URL_CHARS} characters")
    if url.startswith("-"):
        raise UnsafeSource(f"refusing git URL {shown!r}: it starts with '-'")
    if _HELPER.match(url) or url.startswith("::"):
        raise UnsafeSource(
            f"refusing git URL {shown!r}: '<transport>::' remote helpers are not allowed"
        )
    if _FORBIDDEN_CHARS.search(url):
        raise UnsafeSource(
            f"refusing git URL {shown!r}: '$', backticks, backslashes, whitespace and "
            "control characters are not allowed"
        )
    if "://" in url:
        _check_url_form(url, shown, policy)
    elif (scp := _SCP_LIKE.match(url)) and not url.lower().startswith("file:"):
        _check_ssh(scp["user"], scp["host"].strip("[]"), scp["path"], shown, policy)
    elif url.lower().startswith("file:"):
        raise UnsafeSource(f"refusing git URL {shown!r}: file: URLs are not allowed")
    else:
        raise UnsafeSource(
            f"refusing git URL {shown!r}: local paths are not allowed; use an https:// URL "
            "(or upload the directory)"
        )
    return url


def _check_url_form(url: str, shown: str, policy: GitSourcePolicy) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise UnsafeSource(f"refusing git URL {shown!r}: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme == "file":
        if not policy.allow_local:
            raise UnsafeSource(f"refusing git URL {shown!r}: file: URLs are not allowed")
        if parts.username is not None or parts.hostname not in (None, "", "localhost"):
            raise UnsafeSource(f"refusing git URL {shown!r}: a file URL names no host or user")
        _check_path(parts.path, shown)
        return
    if scheme in _SSH_SCHEMES:
        if parts.password is not None:
            raise UnsafeSource(
                f"refusing git URL {shown!r}: credentials in the URL are not allowed "
                "(ssh authenticates with the runner's keys)"
            )
        _check_ssh(parts.username, parts.hostname or "", parts.path, shown, policy)
        return
    if scheme not in ("https", "http"):
        raise UnsafeSource(
            f"refusing git URL {shown!r}: the {scheme or 'empty'!r} scheme is not allowed; "
            "use https:// (or ssh to an allowed host)"
        )
    if scheme == "http" and not policy.allow_http:
        raise UnsafeSource(f"refusing git URL {shown!r}: plain http is not allowed; use https://")
    if parts.username is not None or parts.password is not None:
        raise UnsafeSource(
            f"refusing git URL {shown!r}: credentials in the URL are not allowed "
            "(they would be stored and shown with the task)"
        )
    host = parts.hostname or ""
    _check_host_syntax(host, shown)
    _check_path(parts.path, shown)
    _check_address(host, shown, policy)


def _check_ssh(user: str | None, host: str, path: str, shown: str, policy: GitSourcePolicy) -> None:
    if user is not None and (not user or user.startswith("-")):
        raise UnsafeSource(f"refusing git URL {shown!r}: the user must not start with '-'")
    _check_host_syntax(host, shown)
    _check_path(path, shown)
    allowed = {name.lower() for name in policy.ssh_hosts}
    if host.lower() not in allowed:
        hint = f"allowed: {', '.join(sorted(allowed))}" if allowed else "no ssh host is allowed"
        raise UnsafeSource(f"refusing git URL {shown!r}: ssh to {host!r} is not allowed ({hint})")


def _check_host_syntax(host: str, shown: str) -> None:
    if not host:
        raise UnsafeSource(f"refusing git URL {shown!r}: it names no host")
    if host.startswith("-"):
        raise UnsafeSource(f"refusing git URL {shown!r}: the host must not start with '-'")
    if _literal_address(host) is None and not _HOST_NAME.match(host):
        raise UnsafeSource(f"refusing git URL {shown!r}: {host!r} is not a valid host name")


def _check_path(path: str, shown: str) -> None:
    if any(segment.startswith("-") for segment in path.split("/")):
        raise UnsafeSource(f"refusing git URL {shown!r}: no path segment may start with '-'")


def _literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address ``host`` spells, including forms curl accepts like ``127.1``, ``0x7f.0.0.1``."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if _NUMERIC_HOST.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def unsafe_address_kind(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why git must not fetch from ``address`` ('a loopback address', …), or None if public."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo or (None, None))[1]
        if embedded is not None:
            return unsafe_address_kind(embedded)
    for attribute, kind in (
        ("is_loopback", "a loopback"),
        ("is_unspecified", "an unspecified"),
        ("is_link_local", "a link-local"),
        ("is_multicast", "a multicast"),
        ("is_private", "a private"),
    ):
        if getattr(address, attribute):
            return f"{kind} address"
    if not address.is_global:
        return "not a public address"
    return None


def _check_address(host: str, shown: str, policy: GitSourcePolicy) -> None:
    if policy.allow_private_hosts:
        return
    hint = "(set CRATON_WF_GIT_ALLOW_PRIVATE_HOSTS=true to allow private hosts)"
    literal = _literal_address(host)
    if literal is not None:
        kind = unsafe_address_kind(literal)
        if kind:
            raise UnsafeSource(f"refusing git URL {shown!r}: {host} is {kind} {hint}")
        return
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        raise UnsafeSource(f"refusing git URL {shown!r}: {host} is a loopback address {hint}")
    if policy.resolve is None:
        return
    try:
        addresses = list(policy.resolve(name))
    except (OSError, UnicodeError) as exc:
        raise UnsafeSource(f"refusing git URL {shown!r}: {host!r} does not resolve") from exc
    if not addresses:
        raise UnsafeSource(f"refusing git URL {shown!r}: {host!r} does not resolve")
    for text in addresses:
        address = _literal_address(text)
        kind = unsafe_address_kind(address) if address is not None else "not an address"
        if kind:
            raise UnsafeSource(
                f"refusing git URL {shown!r}: {host} resolves to {text}, {kind} {hint}"
            )
