"""Packing a task's directory into the ``.tar.gz`` the server builds from.

What goes in: regular files and directories, nothing else. ``.git`` (a
directory, or the file a worktree has) is left out: the server builds what is
on disk, not history. Symbolic links are skipped, not followed: a link may
point outside the directory (a secret, a whole home directory), and a link
kept as a link would dangle on the server. Each skipped link is logged as a
warning on the ``cratonclient`` logger; sockets, FIFOs and devices are skipped
silently.

The archive is deterministic for a given tree: entries are sorted by path,
owners are normalised to root, and the gzip header carries no timestamp, so
packing the same directory twice gives the same bytes. File modes (the
executable bit of a task's script) and modification times are kept.
"""

from __future__ import annotations

import gzip
import io
import logging
import os
import stat
import tarfile
from pathlib import Path

log = logging.getLogger("cratonclient")

SKIPPED_NAMES = frozenset({".git"})


def pack_directory(path: str | os.PathLike[str]) -> bytes:
    """The directory at ``path`` as an in-memory ``.tar.gz``; see the module docstring."""
    root = Path(path)
    if not root.is_dir():
        raise NotADirectoryError(f"Not a directory: {root}")
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for entry, arcname in _walk(root, ""):
            _add(tar, entry, arcname)
    return buffer.getvalue()


def _walk(directory: Path, prefix: str):
    """``(path, archive name)`` of every entry to pack, depth first, sorted by name."""
    with os.scandir(directory) as scan:
        entries = sorted(scan, key=lambda e: e.name)
    for entry in entries:
        if entry.name in SKIPPED_NAMES:
            continue
        arcname = f"{prefix}{entry.name}"
        if entry.is_symlink():
            log.warning("Skipping symbolic link %s (links are not uploaded)", entry.path)
            continue
        if entry.is_dir(follow_symlinks=False):
            yield Path(entry.path), arcname
            yield from _walk(Path(entry.path), arcname + "/")
        elif entry.is_file(follow_symlinks=False):
            yield Path(entry.path), arcname


def _add(tar: tarfile.TarFile, path: Path, arcname: str) -> None:
    info = os.lstat(path)
    member = tarfile.TarInfo(arcname)
    member.mode = stat.S_IMODE(info.st_mode)
    member.mtime = int(info.st_mtime)
    member.uid = member.gid = 0
    member.uname = member.gname = "root"
    if stat.S_ISDIR(info.st_mode):
        member.type = tarfile.DIRTYPE
        tar.addfile(member)
        return
    member.type = tarfile.REGTYPE
    member.size = info.st_size
    with open(path, "rb") as handle:
        tar.addfile(member, handle)
