"""Hostile sources are refused: archives, git URLs and build contexts."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from craton_wf.builders.source import (
    fetch_git,
    git_config_args,
    git_env,
    resolve_context,
    unpack_archive,
)
from craton_wf.errors import SourceError


def make_tar(*members: tuple[tarfile.TarInfo, bytes | None], compression: str = "") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=f"w:{compression}") as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def file_member(name: str, data: bytes = b"content\n", mode: int = 0o644) -> tuple:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    return info, data


def dir_member(name: str) -> tuple:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return info, None


def special_member(name: str, kind: bytes, linkname: str = "") -> tuple:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    path = tmp_path / "box" / "src"
    path.mkdir(parents=True)
    return path


def everything_under(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


# --- archives -------------------------------------------------------------------


def test_a_plain_archive_unpacks(dest: Path) -> None:
    data = make_tar(
        dir_member("./"),
        file_member("./Dockerfile", b"FROM craton/busybox:latest\n"),
        dir_member("./scripts"),
        file_member("./scripts/run.sh", b"echo hi\n", mode=0o755),
        compression="gz",
    )

    unpack_archive(data, dest)

    assert everything_under(dest) == {"Dockerfile", "scripts", "scripts/run.sh"}
    assert (dest / "Dockerfile").read_bytes() == b"FROM craton/busybox:latest\n"
    assert os.access(dest / "scripts" / "run.sh", os.X_OK)


def test_setuid_bits_are_dropped(dest: Path) -> None:
    unpack_archive(make_tar(file_member("tool", b"x", mode=0o4755)), dest)

    mode = (dest / "tool").stat().st_mode
    assert not mode & stat.S_ISUID
    assert mode & stat.S_IXUSR


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (file_member("../escaped"), "'..'"),
        (file_member("ok/../../escaped"), "'..'"),
        (file_member("/tmp/craton-test-absolute"), "absolute"),
        (special_member("link", tarfile.SYMTYPE, "/etc/passwd"), "symbolic link"),
        (special_member("inside-link", tarfile.SYMTYPE, "Dockerfile"), "symbolic link"),
        (special_member("hard", tarfile.LNKTYPE, "Dockerfile"), "hard link"),
        (special_member("null", tarfile.CHRTYPE), "device"),
        (special_member("disk", tarfile.BLKTYPE), "device"),
        (special_member("pipe", tarfile.FIFOTYPE), "fifo"),
    ],
    ids=[
        "traversal",
        "nested-traversal",
        "absolute",
        "symlink-out",
        "symlink-in",
        "hardlink",
        "char-device",
        "block-device",
        "fifo",
    ],
)
def test_hostile_members_are_refused_and_nothing_is_written(
    dest: Path, member: tuple, message: str
) -> None:
    # a good member first: refusal must come before anything is extracted
    data = make_tar(file_member("Dockerfile"), member)

    with pytest.raises(SourceError, match=message) as caught:
        unpack_archive(data, dest)

    assert member[0].name in caught.value.message
    assert everything_under(dest) == set()
    assert everything_under(dest.parent.parent) == {"box", "box/src"}
    assert not Path("/tmp/craton-test-absolute").exists()


def test_too_many_members_are_refused(dest: Path) -> None:
    data = make_tar(*(file_member(f"f{i}") for i in range(11)))

    with pytest.raises(SourceError, match="more than 10 members"):
        unpack_archive(data, dest, max_files=10)

    assert everything_under(dest) == set()
    unpack_archive(data, dest, max_files=11)
    assert len(everything_under(dest)) == 11


def test_too_many_bytes_are_refused(dest: Path) -> None:
    data = make_tar(file_member("a", b"x" * 600), file_member("b", b"x" * 600))

    with pytest.raises(SourceError, match="more than 1000 bytes") as caught:
        unpack_archive(data, dest, max_bytes=1000)

    assert "'b'" in caught.value.message
    assert everything_under(dest) == set()


def test_a_declared_huge_member_is_refused_from_its_header(dest: Path) -> None:
    """A bomb is refused before its data is read: here the data is not even there."""
    info = tarfile.TarInfo("bomb")
    info.size = 600 * 1024 * 1024
    header = info.tobuf(format=tarfile.PAX_FORMAT)

    with pytest.raises(SourceError, match="more than"):
        unpack_archive(header, dest)

    assert everything_under(dest) == set()


@pytest.mark.parametrize("data", [b"", b"this is not a tar archive" * 40])
def test_garbage_is_refused(dest: Path, data: bytes) -> None:
    with pytest.raises(SourceError, match="could not unpack"):
        unpack_archive(data, dest)


# --- git URLs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "--upload-pack=touch /tmp/craton-pwned",
        "-uhttps://example.invalid/repo.git",
        "ext::sh -c touch% /tmp/craton-pwned",
        "fd::3",
        "https::example.invalid/repo.git",
        "",
    ],
)
def test_dangerous_git_urls_are_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(SourceError):
        fetch_git(url, None, tmp_path / "src", timeout=10)

    assert not Path("/tmp/craton-pwned").exists()
    assert not (tmp_path / "src").exists()


@pytest.mark.parametrize("ref", ["--output=/tmp/craton-pwned", "main branch", ""])
def test_dangerous_refs_are_refused(tmp_path: Path, ref: str) -> None:
    with pytest.raises(SourceError, match="invalid git ref"):
        fetch_git("https://example.invalid/repo.git", ref, tmp_path / "src", timeout=10)


def test_disallowed_transport_is_refused_by_the_check(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="'gopher' scheme is not allowed"):
        fetch_git("gopher://example.invalid/repo", None, tmp_path / "src", timeout=10)


def test_git_itself_refuses_a_transport_the_policy_does_not_name(tmp_path: Path) -> None:
    """The second lock: even a URL that got past the check cannot use another transport."""
    origin = tmp_path / "origin"
    subprocess.run(["git", "init", "--quiet", str(origin)], check=True)
    done = subprocess.run(
        ["git", *git_config_args(("https",)), "ls-remote", f"file://{origin}"],
        env=git_env(("https",)),
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode != 0 and "transport 'file' not allowed" in done.stderr


def test_credentials_do_not_appear_in_errors(tmp_path: Path) -> None:
    url = f"file://user:s3cret-token@localhost{tmp_path}/missing.git"

    with pytest.raises(SourceError) as caught:
        fetch_git(url, None, tmp_path / "src", timeout=10)

    assert "s3cret-token" not in caught.value.message


# --- build context ----------------------------------------------------------------


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    (root / "tasks" / "audit").mkdir(parents=True)
    (root / "Dockerfile").write_text("FROM craton/busybox:latest\n")
    (root / "tasks" / "audit" / "Dockerfile").write_text("FROM craton/busybox:latest\n")
    (root / "tasks" / "audit" / "Dockerfile.prod").write_text("FROM craton/busybox:latest\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "Dockerfile").write_text("FROM scratch\n")
    return root


@pytest.mark.parametrize("subdir", [None, "", ".", "/"])
def test_context_defaults_to_the_root(source: Path, subdir: str | None) -> None:
    assert resolve_context(source, subdir) == (source.resolve(), "Dockerfile")


def test_context_in_a_subdirectory_with_another_dockerfile(source: Path) -> None:
    context, dockerfile = resolve_context(source, "tasks/audit", "Dockerfile.prod")

    assert context == source.resolve() / "tasks" / "audit"
    assert dockerfile == "Dockerfile.prod"


@pytest.mark.parametrize("subdir", ["..", "../outside", "tasks/../../outside", "/../outside"])
def test_subdirectory_cannot_escape_with_dots(source: Path, subdir: str) -> None:
    with pytest.raises(SourceError, match="outside"):
        resolve_context(source, subdir)


def test_subdirectory_cannot_escape_through_a_symlink(source: Path) -> None:
    (source / "sneaky").symlink_to(source.parent / "outside")

    with pytest.raises(SourceError, match="outside"):
        resolve_context(source, "sneaky")


def test_dockerfile_cannot_escape_through_a_symlink_or_dots(source: Path) -> None:
    (source / "tasks" / "Dockerfile").symlink_to(source.parent / "outside" / "Dockerfile")

    with pytest.raises(SourceError, match="outside"):
        resolve_context(source, "tasks")
    with pytest.raises(SourceError, match="outside"):
        resolve_context(source, "tasks/audit", "../../../outside/Dockerfile")


def test_missing_dockerfile_is_named(source: Path) -> None:
    with pytest.raises(SourceError, match="no Dockerfile found at tasks/Dockerfile.dev"):
        resolve_context(source, "tasks", "Dockerfile.dev")
    with pytest.raises(SourceError, match="no directory"):
        resolve_context(source, "nope")
