"""A task's source on disk: a git checkout or an unpacked upload, and its build context.

Sources come from users, so every step assumes hostility:

- git runs with no prompts, no hooks, no submodules, only the transports in
  :data:`GIT_ALLOWED_PROTOCOLS` (``ext::`` and friends are refused twice: by
  the URL check and by ``protocol.allow=never``), and under a deadline.
  Every ref is fetched the same way — ``git init`` then ``git fetch --depth 1
  origin <ref>`` — which works for branches, tags, full refs and, on servers
  that allow it, commit ids; an abbreviated or unadvertised commit falls back
  to a full fetch.
- archives are checked member by member *before* anything is written: only
  regular files and directories, no absolute paths or ``..``, a cap on the
  number of members and on the total unpacked size (read from the headers, so
  a compression bomb is refused before it is inflated); extraction then still
  goes through tarfile's ``data`` filter.
- the build context and Dockerfile must resolve (symlinks included) inside
  the source root.
"""

from __future__ import annotations

import io
import re
import tarfile
import time
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit, urlunsplit

import git
import git.exc

from craton_wf.errors import SourceError

GIT_ALLOWED_PROTOCOLS = ("https", "http", "git", "ssh", "file")
MAX_MESSAGE_CHARS = 2000
DEFAULT_MAX_FILES = 10_000
DEFAULT_MAX_BYTES = 512 * 1024 * 1024

_COMMIT_ID = re.compile(r"^[0-9a-fA-F]{7,40}$")
_GIT_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ASKPASS": "/bin/true",
    "SSH_ASKPASS": "/bin/true",
    "GIT_SSH_COMMAND": "ssh -o BatchMode=yes",
    "GIT_CONFIG_NOSYSTEM": "1",
    # The environment's allowlist overrides protocol.*.allow: keep both the same.
    "GIT_ALLOW_PROTOCOL": ":".join(GIT_ALLOWED_PROTOCOLS),
}


def _truncate(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def git_config_args() -> list[str]:
    """``-c`` options that harden every git command run on a task's source."""
    options = ["protocol.allow=never"]
    options += [f"protocol.{name}.allow=always" for name in GIT_ALLOWED_PROTOCOLS]
    options += [
        "core.hooksPath=/dev/null",
        "submodule.recurse=false",
        "fetch.recurseSubmodules=false",
        "advice.detachedHead=false",
    ]
    return [arg for option in options for arg in ("-c", option)]


def redact_url(url: str) -> str:
    """The URL without a password or token in its user part, for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None and not (parts.username and parts.scheme.startswith("http")):
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


def _without_secret(text: str, url: str) -> str:
    """``text`` with the URL's password (if any) masked, for git's own messages."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return text
    return text.replace(password, "***") if password else text


def check_git_url(url: str) -> None:
    """Refuse URLs that git would read as an option or hand to a helper program."""
    if not url or url != url.strip():
        raise SourceError(f"invalid git URL {url!r}")
    if url.startswith("-"):
        raise SourceError(f"refusing git URL {redact_url(url)!r}: it starts with '-'")
    if "::" in url:
        raise SourceError(
            f"refusing git URL {redact_url(url)!r}: '<transport>::' remote helpers are not allowed"
        )


def _check_ref(ref: str | None) -> None:
    if ref is not None and (not ref or ref.startswith("-") or any(c.isspace() for c in ref)):
        raise SourceError(f"invalid git ref {ref!r}")


class _GitRunner:
    """Runs hardened git commands in one checkout, all under one deadline."""

    def __init__(self, dest: Path, timeout: int) -> None:
        self.dest = dest
        self.deadline = time.monotonic() + timeout
        self.timeout = timeout
        self.git = git.Git(str(dest))

    def __call__(self, *args: str) -> str:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise SourceError(f"git took longer than {self.timeout}s")
        output = self.git.execute(
            [git.Git.GIT_PYTHON_GIT_EXECUTABLE or "git", *git_config_args(), *args],
            env=_GIT_ENV,
            kill_after_timeout=remaining,
        )
        return str(output)


def fetch_git(url: str, ref: str | None, dest: Path, *, timeout: int) -> str:
    """Check ``url`` out at ``ref`` (default branch if None) into ``dest``; the commit id."""
    check_git_url(url)
    _check_ref(ref)
    where = f"{redact_url(url)} at {ref or 'the default branch'}"
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise SourceError(f"could not clone {where}: {dest} is not empty")
    run = _GitRunner(dest, timeout)
    try:
        run("init", "--quiet", "--template=")
        run("remote", "add", "origin", url)
        _fetch_ref(run, ref)
        commit = run("rev-parse", "--verify", "HEAD^{commit}").strip()
    except git.exc.GitCommandError as exc:
        message = _without_secret(_git_message(exc), url)
        raise SourceError(f"could not clone {where}: {message}") from exc
    except SourceError as exc:
        raise SourceError(f"could not clone {where}: {exc.message}") from exc
    if ref and _COMMIT_ID.match(ref) and not commit.startswith(ref.lower()):
        raise SourceError(f"could not clone {where}: {ref} resolved to another commit {commit}")
    return commit


def _fetch_ref(run: _GitRunner, ref: str | None) -> None:
    """Shallow-fetch ``ref`` and check it out; full fetch for commits the server won't give."""
    try:
        run("fetch", "--quiet", "--depth", "1", "--no-tags", "origin", ref or "HEAD")
        run("checkout", "--quiet", "--detach", "FETCH_HEAD")
    except git.exc.GitCommandError:
        if not (ref and _COMMIT_ID.match(ref)):
            raise
        run("fetch", "--quiet", "--tags", "origin", "+refs/heads/*:refs/remotes/origin/*")
        run("checkout", "--quiet", "--detach", f"{ref}^{{commit}}")


def _git_message(exc: git.exc.GitCommandError) -> str:
    stderr = exc.stderr if isinstance(exc.stderr, str) else str(exc.stderr or "")
    stderr = stderr.strip().removeprefix("stderr:").strip().strip("'").strip()
    return _truncate(stderr or f"git exited with status {exc.status}")


def _member_kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return "a symbolic link"
    if member.islnk():
        return "a hard link"
    if member.ischr() or member.isblk():
        return "a device"
    if member.isfifo():
        return "a fifo"
    return "not a regular file or directory"


def _checked_member_path(member: tarfile.TarInfo, root: Path) -> PurePosixPath | None:
    """The member's relative path once safe; None for the archive's own root entry."""
    name = member.name
    path = PurePosixPath(name)
    if not name or path.is_absolute() or name.startswith(("/", "\\")):
        raise SourceError(f"archive member {name!r}: absolute paths are not allowed")
    if ".." in path.parts or "\\" in name:
        raise SourceError(f"archive member {name!r}: '..' and backslashes are not allowed")
    if not (member.isreg() or member.isdir()):
        raise SourceError(f"archive member {name!r} is {_member_kind(member)}: not allowed")
    if path == PurePosixPath("."):
        if member.isdir():
            return None
        raise SourceError(f"archive member {name!r} is not a file name")
    target = (root / path).resolve()
    if not target.is_relative_to(root) or target == root:
        raise SourceError(f"archive member {name!r} would be written outside the source")
    return path


def _checked_members(
    archive: tarfile.TarFile, root: Path, max_files: int, max_bytes: int
) -> list[tarfile.TarInfo]:
    """Every member, checked while the headers are read (so a bomb stops early)."""
    members: list[tarfile.TarInfo] = []
    total = 0
    while (member := archive.next()) is not None:
        if len(members) >= max_files:
            raise SourceError(f"the archive has more than {max_files} members")
        if _checked_member_path(member, root) is None:
            continue
        total += member.size if member.isreg() else 0
        if total > max_bytes:
            raise SourceError(
                f"the archive unpacks to more than {max_bytes} bytes (at member {member.name!r})"
            )
        members.append(member)
    return members


def unpack_archive(
    data: bytes,
    dest: Path,
    *,
    max_files: int = DEFAULT_MAX_FILES,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> None:
    """Extract a tar (optionally gzip/bzip2/xz) of files and directories into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
            members = _checked_members(archive, root, max_files, max_bytes)
            archive.extractall(root, members=members, filter="data")
    except SourceError:
        raise
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise SourceError(f"could not unpack the archive: {_truncate(str(exc))}") from exc


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def resolve_context(
    root: Path, subdir: str | None, dockerfile: str = "Dockerfile"
) -> tuple[Path, str]:
    """The build context directory and the Dockerfile's path relative to it.

    Both must stay inside ``root`` once symlinks are resolved.
    """
    real_root = root.resolve()
    subdir = (subdir or "").strip("/") or "."
    shown = dockerfile if subdir == "." else f"{subdir}/{dockerfile}"
    context = (real_root / subdir).resolve()
    if not _inside(context, real_root):
        raise SourceError(f"the subdirectory {subdir!r} is outside the task's source")
    if not context.is_dir():
        raise SourceError(f"no directory {subdir!r} in the task's source")
    dockerfile_path = (context / dockerfile).resolve()
    if not dockerfile_path.is_relative_to(context):
        raise SourceError(f"the Dockerfile {shown!r} is outside the build context")
    if not dockerfile_path.is_file():
        raise SourceError(f"no Dockerfile found at {shown}")
    return context, dockerfile_path.relative_to(context).as_posix()
