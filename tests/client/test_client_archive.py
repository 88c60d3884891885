"""Packing a task directory and uploading it as multipart."""

from __future__ import annotations

import email.parser
import email.policy
import io
import json
import logging
import os
import tarfile
from pathlib import Path

import httpx
import pytest

from cratonclient._archive import pack_directory


@pytest.fixture
def task_dir(tmp_path: Path) -> Path:
    root = tmp_path / "hello"
    (root / "bin").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "Dockerfile").write_text("FROM busybox\nCOPY bin/run.sh /run.sh\n")
    script = root / "bin" / "run.sh"
    script.write_text("#!/bin/sh\necho hello\n")
    script.chmod(0o755)
    (root / ".git" / "objects").mkdir(parents=True)
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    return root


def members(archive: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        return {m.name: m for m in tar.getmembers()}


def read_member(archive: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        handle = tar.extractfile(name)
        assert handle is not None
        return handle.read()


def test_archive_holds_files_and_directories_in_order_without_git(task_dir: Path) -> None:
    archive = pack_directory(task_dir)

    found = members(archive)
    assert list(found) == ["Dockerfile", "bin", "bin/run.sh", "empty"]
    assert found["bin"].isdir() and found["empty"].isdir()
    assert found["bin/run.sh"].mode & 0o111, "the executable bit is kept"
    assert found["Dockerfile"].uid == 0 and found["Dockerfile"].uname == "root"
    assert read_member(archive, "bin/run.sh") == b"#!/bin/sh\necho hello\n"


def test_archive_is_deterministic(task_dir: Path) -> None:
    assert pack_directory(task_dir) == pack_directory(task_dir)


def test_symlinks_are_skipped_with_a_warning(
    task_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not upload\n")
    os.symlink(secret, task_dir / "secret-link")
    os.symlink(tmp_path, task_dir / "dir-link")

    with caplog.at_level(logging.WARNING, logger="cratonclient"):
        archive = pack_directory(task_dir)

    assert not {"secret-link", "dir-link"} & set(members(archive))
    assert all(not m.issym() for m in members(archive).values())
    assert b"do not upload" not in archive
    assert "secret-link" in caplog.text and "dir-link" in caplog.text


def test_packing_a_missing_directory_fails(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError):
        pack_directory(tmp_path / "nope")


def multipart_parts(request: httpx.Request) -> dict[str, tuple[str | None, bytes]]:
    """``{part name: (filename, content)}`` of a multipart/form-data request."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.content)
    parts = {}
    for part in message.iter_parts():
        parts[part.get_param("name", header="content-disposition")] = (
            part.get_filename(),
            part.get_payload(decode=True),
        )
    return parts


def test_create_from_directory_posts_spec_and_archive(router, client, task_dir: Path) -> None:
    router.add("POST", "/v1/tasks", {"id": 1, "name": "hello", "status": "BUILD PENDING"})

    task = client.tasks.create_from_directory(task_dir, name="hello", command=["/run.sh"])

    assert task.status == "BUILD PENDING"
    parts = multipart_parts(router.requests[0])
    spec_filename, spec = parts["spec"]
    assert spec_filename is None
    assert json.loads(spec) == {"location": str(task_dir), "name": "hello", "command": ["/run.sh"]}
    archive_filename, archive = parts["archive"]
    assert archive_filename.endswith(".tar.gz")
    assert "Dockerfile" in members(archive)


def test_rebuild_with_a_directory_uploads_it(router, client, task_dir: Path) -> None:
    router.add("POST", "/v1/tasks/1/builds", {"id": 8, "number": 2, "status": "BUILD PENDING"})

    assert client.tasks.build(1, directory=task_dir).number == 2

    assert set(multipart_parts(router.requests[0])) == {"archive"}


def test_rebuild_of_a_git_task_sends_the_ref(router, client) -> None:
    router.add("POST", "/v1/tasks/1/builds", {"id": 9, "status": "BUILD PENDING"})

    client.tasks.build(1, ref="v2")
    client.tasks.build(1)

    assert json.loads(router.requests[0].content) == {"ref": "v2"}
    assert router.requests[1].content == b""
