"""A task's source on disk: a git checkout or an unpacked upload, and its build context.

Sources come from users, so every step assumes hostility:

- the URL, ref and paths pass :func:`craton_wf.domain.sources.check_git_source`
  again right before the clone (the API checked them too, maybe under other
  settings). git then runs with no prompts (``GIT_TERMINAL_PROMPT=0``,
  askpass ``/bin/true``, ssh ``BatchMode``), no hooks, no submodules, no
  redirects, only the policy's transports (``GIT_ALLOW_PROTOCOL`` and
  ``protocol.allow=never``: ``ext::`` and friends are refused twice), under a
  deadline and a cap on the bytes it may write (fetched objects and the
  checked-out files each), watched while it runs.
  Every ref is fetched the same way — ``git init`` then ``git fetch --depth 1
  origin <ref>`` — which works for branches, tags, full refs and, on servers
  that allow it, commit ids; an abbreviated or unadvertised commit falls back
  to a full fetch.
- archives first pass the API's own check (:func:`craton_wf.domain.archives.check_archive`:
  streamed, bounded decompression, expansion ratio), then are checked member
  by member again *before* anything is written: only
  regular files and directories, no absolute paths or ``..``, a cap on the
  number of members and on the total unpacked size (read from the headers, so
  a compression bomb is refused before it is inflated); extraction then still
  goes through tarfile's ``data`` filter. A Python without extraction filters
  (3.11 before 3.11.4, e.g. Debian 12's 3.11.2) gets the same result written
  by hand: only those files and directories, no owner taken from the archive,
  no set-id or group/other write bit.
- the build context and Dockerfile must resolve (symlinks included) inside
  the source root.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import subprocess
import tarfile
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from craton_wf.domain.archives import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_MEMBERS,
    DEFAULT_MAX_RATIO,
    ArchiveLimits,
    check_archive,
    member_path,
)
from craton_wf.domain.sources import GitSourcePolicy, check_git_source, redact_url
from craton_wf.errors import CratonError, SourceError, truncate_message

DEFAULT_MAX_FILES = DEFAULT_MAX_MEMBERS
DEFAULT_GIT_MAX_BYTES = 200 * 1024 * 1024
_POLL_SECONDS = 0.2


class GitFailed(Exception):
    """A git command exited non-zero; made a ``SourceError`` by :func:`fetch_git`."""

    def __init__(self, status: int, stderr: str) -> None:
        super().__init__(f"git exited with status {status}")
        self.status = status
        self.stderr = stderr


_COMMIT_ID = re.compile(r"^[0-9a-fA-F]{7,40}$")
_GIT_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ASKPASS": "/bin/true",
    "SSH_ASKPASS": "/bin/true",
    "GIT_SSH_COMMAND": "ssh -o BatchMode=yes",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_PROTOCOL_FROM_USER": "0",
}


def git_config_args(protocols: Sequence[str]) -> list[str]:
    """``-c`` options that harden every git command run on a task's source."""
    options = ["protocol.allow=never"]
    options += [f"protocol.{name}.allow=always" for name in protocols]
    options += [
        "core.hooksPath=/dev/null",
        "submodule.recurse=false",
        "fetch.recurseSubmodules=false",
        # A redirect could lead a checked public URL to a private host.
        "http.followRedirects=false",
        "advice.detachedHead=false",
    ]
    return [arg for option in options for arg in ("-c", option)]


def git_env(protocols: Sequence[str]) -> dict[str, str]:
    """The environment of every git command: no prompts, only ``protocols``."""
    # The environment's allowlist overrides protocol.*.allow: keep both the same.
    return {**os.environ, **_GIT_ENV, "GIT_ALLOW_PROTOCOL": ":".join(protocols)}


def _without_secret(text: str, url: str) -> str:
    """``text`` with the URL's password (if any) masked, for git's own messages."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return text
    return text.replace(password, "***") if password else text


def checkout_sizes(dest: Path, stop_above: int) -> tuple[int, int]:
    """Bytes under ``dest/.git`` and in the rest of ``dest``; stops counting past ``stop_above``."""
    sizes = [0, 0]
    for top, _dirs, files in os.walk(dest):
        which = 0 if Path(top).relative_to(dest).parts[:1] == (".git",) else 1
        for name in files:
            with contextlib.suppress(OSError):
                sizes[which] += os.lstat(os.path.join(top, name)).st_size
        if max(sizes) > stop_above:
            break
    return sizes[0], sizes[1]


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # git's helpers too (remote-https, index-pack)
    process.communicate()


class _GitRunner:
    """Runs hardened git commands in one checkout, under one deadline and one size cap."""

    def __init__(self, dest: Path, timeout: int, protocols: Sequence[str], max_bytes: int) -> None:
        self.dest = dest
        self.deadline = time.monotonic() + timeout
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.config = git_config_args(protocols)
        self.env = git_env(protocols)

    def _check_size(self) -> None:
        objects, files = checkout_sizes(self.dest, self.max_bytes)
        if max(objects, files) > self.max_bytes:
            what = "its objects" if objects > self.max_bytes else "its files"
            raise SourceError(
                f"the repository is over the {self.max_bytes} byte limit ({what}; "
                "CRATON_WF_GIT_MAX_BYTES)"
            )

    def __call__(self, *args: str) -> str:
        if time.monotonic() >= self.deadline:
            raise SourceError(f"git took longer than {self.timeout}s")
        command = ["git", *self.config, *args]
        process = subprocess.Popen(
            command,
            cwd=self.dest,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        while True:
            try:
                stdout, stderr = process.communicate(timeout=_POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                try:
                    if time.monotonic() >= self.deadline:
                        raise SourceError(f"git took longer than {self.timeout}s") from None
                    self._check_size()
                except SourceError:
                    _kill(process)
                    raise
        self._check_size()
        if process.returncode:
            raise GitFailed(process.returncode, stderr.decode("utf-8", errors="replace"))
        return stdout.decode("utf-8", errors="replace")


def fetch_git(
    url: str,
    ref: str | None,
    dest: Path,
    *,
    timeout: int,
    policy: GitSourcePolicy | None = None,
    max_bytes: int = DEFAULT_GIT_MAX_BYTES,
) -> str:
    """Check ``url`` out at ``ref`` (default branch if None) into ``dest``; the commit id.

    ``policy`` says which URLs and transports are allowed (default: public
    ``https://`` only); the clone may write ``max_bytes`` of objects and as
    many of files.
    """
    policy = policy or GitSourcePolicy()
    url = check_git_source(url, policy, ref=ref)
    where = f"{redact_url(url)} at {ref or 'the default branch'}"
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise SourceError(f"could not clone {where}: {dest} is not empty")
    run = _GitRunner(dest, timeout, policy.protocols, max_bytes)
    try:
        run("init", "--quiet", "--template=")
        run("remote", "add", "origin", url)
        _fetch_ref(run, ref)
        commit = run("rev-parse", "--verify", "HEAD^{commit}").strip()
    except GitFailed as exc:
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
    except GitFailed:
        if not (ref and _COMMIT_ID.match(ref)):
            raise
        run("fetch", "--quiet", "--tags", "origin", "+refs/heads/*:refs/remotes/origin/*")
        run("checkout", "--quiet", "--detach", f"{ref}^{{commit}}")


def _git_message(exc: GitFailed) -> str:
    return truncate_message(exc.stderr.strip() or f"git exited with status {exc.status}")


def _members_to_write(archive: tarfile.TarFile, root: Path) -> list[tarfile.TarInfo]:
    """The members ``check_archive`` accepted, but the archive's own root entry, each
    resolved once more against the destination as it really is on disk."""
    members: list[tarfile.TarInfo] = []
    while (member := archive.next()) is not None:
        path = member_path(member)
        if path == ".":
            if member.isdir():
                continue
            raise SourceError(f"archive member {member.name!r} is not a file name")
        target = (root / path).resolve()
        if not target.is_relative_to(root) or target == root:
            raise SourceError(f"archive member {member.name!r} would be written outside the source")
        members.append(member)
    return members


def unpack_archive(
    data: bytes,
    dest: Path,
    *,
    max_files: int = DEFAULT_MAX_FILES,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_ratio: int = DEFAULT_MAX_RATIO,
) -> None:
    """Extract a tar (optionally gzip/bzip2/xz) of files and directories into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    try:  # the upload's own check again: the row may predate it, or the limits changed
        check_archive(data, ArchiveLimits(max_files, max_bytes, max_ratio))
    except CratonError as exc:
        raise SourceError(f"could not unpack the archive: {exc.message}") from exc
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
            members = _members_to_write(archive, root)
            if hasattr(tarfile, "data_filter"):
                archive.extractall(root, members=members, filter="data")
            else:
                _extract_as_data(archive, members, root)
    except SourceError:
        raise
    except CratonError as exc:
        raise SourceError(f"could not unpack the archive: {exc.message}") from exc
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise SourceError(f"could not unpack the archive: {truncate_message(str(exc))}") from exc


def _extract_as_data(archive: tarfile.TarFile, members: list[tarfile.TarInfo], root: Path) -> None:
    """What ``extractall(filter="data")`` writes, for a Python without filters: the
    directories and regular files ``check_archive`` let through, owned by this
    process, modes as the filter leaves them (no set-id, no group or other write;
    the owner may always read and write a file)."""
    for member in members:
        target = root / member_path(member)
        if member.isdir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        if not member.isreg():  # check_archive refused every other kind already
            raise SourceError(f"archive member {member.name!r} is not a file or directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        source = archive.extractfile(member)
        if source is None:
            raise SourceError(f"archive member {member.name!r} cannot be read")
        with source, target.open("wb") as out:
            while chunk := source.read(1024 * 1024):
                out.write(chunk)
        mode = member.mode & 0o755
        if not mode & 0o100:
            mode &= ~0o111
        target.chmod(mode | 0o600)


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
