"""Checks on an uploaded source archive made before it is stored.

Only the member list is read (in memory); the runner's builder unpacks with
its own, stricter checks. Refusing here means a directory without a
Dockerfile, or a file that is not a tar archive, is a 400 at upload time and
no task is created.
"""

from __future__ import annotations

import io
import posixpath
import tarfile

from craton_wf.errors import InvalidInput


def archive_members(data: bytes) -> set[str]:
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
            return {
                posixpath.normpath(member.name.lstrip("./") or ".")
                for member in archive.getmembers()
            }
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise InvalidInput(f"the uploaded source is not a readable tar archive: {exc}") from exc


def check_dockerfile_present(data: bytes, subdir: str | None, dockerfile: str) -> None:
    wanted = posixpath.normpath(posixpath.join(subdir or ".", dockerfile))
    if wanted not in archive_members(data):
        raise InvalidInput(f"the uploaded source has no Dockerfile at {wanted}")
