"""Checks on an uploaded source archive, made before it is stored (and again before unpacking).

Refusing here means a hostile or broken archive is a 4xx at upload time and
no task, source or build is stored: members that are not regular files or
directories (symlinks, hard links, devices, fifos, sparse files), absolute
paths, ``..`` or backslashes → 400; more members, more unpacked bytes or a
higher expansion ratio than the limits allow → 413; not a tar → 400; no
Dockerfile where the task says, or one outside the build context → 400.

The archive is read as a stream, one member header at a time
(``tarfile`` mode ``r|``), never with ``getmembers()``; it is decompressed
here, through a reader that refuses to inflate more than the members
accepted so far account for (plus a small allowance for headers), so a
compression bomb — in member data or in a giant pax header — stops after a
bounded read. The runner's builder runs the same check before it unpacks.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import posixpath
import tarfile
import zlib
from dataclasses import dataclass

from craton_wf.errors import InvalidInput, PayloadTooLarge, UnsafeSource

DEFAULT_MAX_MEMBERS = 10_000
DEFAULT_MAX_BYTES = 200 * 1024 * 1024
DEFAULT_MAX_RATIO = 100
# Small archives of text compress well: the ratio only counts beyond this size.
RATIO_FLOOR_BYTES = 1024 * 1024
# Stream bytes a member may take beyond its data: its header block(s) and a pax header.
_HEADER_ALLOWANCE = 2048
_READ_SLACK = 1024 * 1024
_MAX_READ = 1024 * 1024


@dataclass(frozen=True)
class ArchiveLimits:
    max_members: int = DEFAULT_MAX_MEMBERS
    max_bytes: int = DEFAULT_MAX_BYTES
    max_ratio: int = DEFAULT_MAX_RATIO


@dataclass(frozen=True)
class ArchiveListing:
    """What a checked archive holds: normalized relative paths."""

    files: frozenset[str]
    directories: frozenset[str]
    total_bytes: int


class _Overread(Exception):
    """The decompressed stream is longer than its accepted members account for."""


class _BoundedReader:
    """A file-like ``read`` over the decompressed archive that stops past ``allowance``."""

    def __init__(self, inner: io.BufferedIOBase, allowance: int) -> None:
        self.inner = inner
        self.allowance = allowance
        self.consumed = 0

    def read(self, size: int = -1) -> bytes:
        size = _MAX_READ if size is None or size < 0 else min(size, _MAX_READ)
        chunk = self.inner.read(size)
        self.consumed += len(chunk)
        if self.consumed > self.allowance:
            raise _Overread
        return chunk


def _decompressed(data: bytes) -> io.BufferedIOBase:
    raw = io.BytesIO(data)
    if data.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if data.startswith(b"BZh"):
        return bz2.BZ2File(raw)
    if data.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(raw)
    return raw


def member_kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return "a symbolic link"
    if member.islnk():
        return "a hard link"
    if member.ischr() or member.isblk():
        return "a device"
    if member.isfifo():
        return "a fifo"
    if member.issparse():
        return "a sparse file"
    return "not a regular file or directory"


def member_path(member: tarfile.TarInfo) -> str:
    """The member's normalized relative path ('.' for the root); UnsafeSource if it could escape."""
    name = member.name
    if not name or name.startswith(("/", "\\")) or posixpath.isabs(name):
        raise UnsafeSource(f"archive member {name!r}: absolute paths are not allowed")
    if ".." in name.split("/") or "\\" in name:
        raise UnsafeSource(f"archive member {name!r}: '..' and backslashes are not allowed")
    if member.issparse() or not (member.isreg() or member.isdir()):
        raise UnsafeSource(f"archive member {name!r} is {member_kind(member)}: not allowed")
    return posixpath.normpath(name)


def _block(size: int) -> int:
    return -(-size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE


def check_archive(data: bytes, limits: ArchiveLimits | None = None) -> ArchiveListing:
    """Every member checked, header by header, before anything is written or stored."""
    limits = limits or ArchiveLimits()
    ratio_cap = max(limits.max_ratio * len(data), RATIO_FLOOR_BYTES)
    reader = _BoundedReader(_decompressed(data), _READ_SLACK)
    files: set[str] = set()
    directories: set[str] = set()
    count = total = 0
    try:
        with tarfile.open(fileobj=reader, mode="r|") as archive:  # type: ignore[call-overload]
            for member in archive:
                count += 1
                if count > limits.max_members:
                    raise PayloadTooLarge(f"the archive has more than {limits.max_members} members")
                path = member_path(member)
                if member.isreg():
                    total += member.size
                    files.add(path)
                elif path != ".":
                    directories.add(path)
                if total > limits.max_bytes:
                    raise PayloadTooLarge(
                        f"the archive unpacks to more than {limits.max_bytes} bytes "
                        f"(at member {member.name!r})"
                    )
                if total > ratio_cap:
                    raise PayloadTooLarge(
                        f"the archive expands more than {limits.max_ratio} times its "
                        f"{len(data)} bytes (at member {member.name!r}): refused as a bomb"
                    )
                reader.allowance += _block(member.size) + _HEADER_ALLOWANCE
    except _Overread as exc:
        raise PayloadTooLarge(
            "the archive's headers inflate to more than its members account for: refused as a bomb"
        ) from exc
    except (tarfile.TarError, EOFError, OSError, ValueError, zlib.error, lzma.LZMAError) as exc:
        raise InvalidInput(f"the uploaded source is not a readable tar archive: {exc}") from exc
    return ArchiveListing(frozenset(files), frozenset(directories), total)


def check_uploaded_source(
    data: bytes, subdir: str | None, dockerfile: str, limits: ArchiveLimits | None = None
) -> ArchiveListing:
    """The archive is safe and holds the task's Dockerfile, inside its build context."""
    context = posixpath.normpath(subdir or ".")
    wanted = posixpath.normpath(posixpath.join(context, dockerfile or "Dockerfile"))
    if context.startswith("../") or context in ("..", "/") or posixpath.isabs(context):
        raise UnsafeSource(f"the subdirectory {subdir!r} is outside the task's source")
    if posixpath.isabs(wanted) or not (context == "." or wanted.startswith(context + "/")):
        raise UnsafeSource(f"the Dockerfile {dockerfile!r} is outside the build context")
    if wanted == ".." or wanted.startswith("../"):
        raise UnsafeSource(f"the Dockerfile {dockerfile!r} is outside the task's source")
    listing = check_archive(data, limits)
    if wanted not in listing.files:
        raise InvalidInput(f"the uploaded source has no Dockerfile at {wanted}")
    return listing
