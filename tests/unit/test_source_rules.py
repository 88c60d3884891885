"""The source rules themselves: the git URL check, the archive check, the hardened clone."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from craton_wf.builders.source import fetch_git, git_config_args, git_env
from craton_wf.db.engine import transaction
from craton_wf.db.models import Build, BuildLog, Task
from craton_wf.domain.archives import ArchiveLimits, check_archive, check_uploaded_source
from craton_wf.domain.sources import (
    GitSourcePolicy,
    check_git_ref,
    check_git_source,
    check_git_url,
    redact_url,
)
from craton_wf.engine import builds as build_service
from craton_wf.engine import source_rules
from craton_wf.errors import InvalidInput, PayloadTooLarge, SourceError, UnsafeSource
from craton_wf.runner.build_execution import BuildExecution
from craton_wf.services import tasks as task_service
from craton_wf.services.inputs import TaskCreate

NAMES = {"public.example": ["93.184.215.14"], "private.example": ["192.168.0.9"]}


def resolve(host: str) -> list[str]:
    if host not in NAMES:
        raise OSError(f"{host} does not resolve")
    return NAMES[host]


DEFAULT = GitSourcePolicy(resolve=resolve)
OPEN = GitSourcePolicy(
    ssh_hosts=frozenset({"git.corp.example"}),
    allow_http=True,
    allow_private_hosts=True,
    allow_local=True,
    resolve=resolve,
)


# --- git URLs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://public.example/org/repo.git",
        "https://public.example:8443/org/repo",
        "https://93.184.215.14/repo.git",
        "  https://public.example/repo.git  ",
    ],
)
def test_public_https_is_accepted(url: str) -> None:
    assert check_git_url(url, DEFAULT) == url.strip()


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("", "location is required"),
        ("ext::sh -c id", "remote helpers"),
        ("-c core.sshCommand=x", "starts with '-'"),
        ("https://public.example/a/-b", "start with '-'"),
        ("https://public.example/$HOME", "'$'"),
        ("https://public.example/a b", "whitespace"),
        ("https://public.example\\@evil/x", "backslashes"),
        ("file:///srv/repo", "file: URLs are not allowed"),
        ("/srv/repo", "local paths"),
        ("https://u:p@public.example/r", "credentials"),
        ("https://token@public.example/r", "credentials"),
        ("http://public.example/r", "plain http"),
        ("ftp://public.example/r", "'ftp' scheme"),
        ("https://private.example/r", "resolves to 192.168.0.9, a private address"),
        ("https://unknown.example/r", "does not resolve"),
        ("https://0x7f.1/r", "loopback"),
        ("https://[fe80::1]/r", "link-local"),
        ("https://[2002:a00:1::]/r", "private"),  # 6to4 of 10.0.0.1
        ("https://ev%69l.example/r", "not a valid host name"),
        ("ssh://git@git.corp.example/r", "no ssh host is allowed"),
        ("git.corp.example:r.git", "no ssh host is allowed"),
    ],
)
def test_refused_urls_name_their_problem(url: str, words: str) -> None:
    with pytest.raises(UnsafeSource) as caught:
        check_git_url(url, DEFAULT)

    assert words in caught.value.message
    assert caught.value.status == 400 and caught.value.code == "unsafe_source"


def test_the_settings_open_ssh_http_private_and_local_sources() -> None:
    for url in [
        "ssh://git@git.corp.example/ops/r.git",
        "git@git.corp.example:ops/r.git",
        "GIT.CORP.EXAMPLE:ops/r.git",
        "http://public.example/r",
        "https://private.example/r",
        "https://127.0.0.1/r",
        "file:///srv/repo",
    ]:
        assert check_git_url(url, OPEN) == url
    for url, words in [
        (
            "ssh://git@github.com/r",
            "ssh to 'github.com' is not allowed (allowed: git.corp.example)",
        ),
        ("ssh://git:pw@git.corp.example/r", "credentials"),
        ("ssh://-oProxyCommand=x/r", "'-'"),
        ("-oProxyCommand=x@git.corp.example:r", "starts with '-'"),
        ("file://other-host/srv/repo", "names no host"),
        ("https://user@private.example/r", "credentials"),
    ]:
        with pytest.raises(UnsafeSource) as caught:
            check_git_url(url, OPEN)
        assert words in caught.value.message


def test_without_a_resolver_names_are_not_looked_up_but_literals_are_checked() -> None:
    offline = GitSourcePolicy()

    assert check_git_url("https://unknown.example/r", offline)
    for url in ["https://10.1.1.1/r", "https://localhost/r", "https://[::1]/r"]:
        with pytest.raises(UnsafeSource):
            check_git_url(url, offline)


@pytest.mark.parametrize("ref", ["main", "v1.2.3", "refs/tags/v1", "release/2024", "0a1b2c3d"])
def test_ordinary_refs_are_accepted(ref: str) -> None:
    assert check_git_ref(ref) == ref


@pytest.mark.parametrize(
    "ref", ["", "-x", "--upload-pack=x", "a/-b", "a..b", "HEAD~1", "a b", "$(id)", "x.lock", "a//b"]
)
def test_dangerous_refs_are_refused(ref: str) -> None:
    with pytest.raises(UnsafeSource, match="invalid git ref"):
        check_git_ref(ref)


def test_the_whole_source_is_checked_in_one_call() -> None:
    url = "https://public.example/r.git"
    assert check_git_source(url, DEFAULT, ref="main", subdir="tasks/a", dockerfile="Dockerfile")
    for fields, words in [
        ({"subdir": "-x"}, "subdir"),
        ({"subdir": "../x"}, "inside the source"),
        ({"dockerfile": "a/-b"}, "dockerfile"),
        ({"ref": "-x"}, "invalid git ref"),
    ]:
        with pytest.raises(UnsafeSource, match=words):
            check_git_source(url, DEFAULT, **fields)


def test_redacted_urls_keep_no_secret() -> None:
    assert redact_url("https://user:s3cret@h.example/r") == "https://***@h.example/r"
    assert redact_url("https://ghp_tok@h.example:8443/r") == "https://***@h.example:8443/r"
    assert redact_url("ssh://git:pw@h.example/r") == "ssh://git:***@h.example/r"
    assert redact_url("ssh://git@h.example/r") == "ssh://git@h.example/r"


def test_the_settings_become_one_policy(settings: Any, fake_dns: dict[str, list[str]]) -> None:
    fake_dns["inside.example"] = ["10.0.0.1"]
    settings = settings.model_copy(update={"git_ssh_allowed_hosts": [" Git.Corp.Example "]})
    policy = source_rules.git_source_policy(settings)

    assert policy.ssh_hosts == frozenset({"git.corp.example"})
    assert policy.protocols == ("https", "ssh")
    with pytest.raises(UnsafeSource, match="resolves to 10.0.0.1"):
        check_git_url("https://inside.example/r", policy)


# --- archives ---------------------------------------------------------------------


def tar(*members: tuple[str, bytes], mode: str = "w:gz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_an_archive_is_listed_in_every_compression(mode: str) -> None:
    data = tar(("./Dockerfile", b"FROM x\n"), ("./a/.hidden", b"x"), mode=mode)

    listing = check_archive(data)

    assert listing.files == {"Dockerfile", "a/.hidden"} and listing.total_bytes == 8


def test_the_archive_limits_are_each_enforced() -> None:
    many = tar(*((f"f{i}", b"x") for i in range(11)))
    big = tar(("a", b"x" * 600), ("b", b"x" * 600), mode="w")
    zeros = tar(("zeros", bytes(2 * 1024 * 1024)))

    with pytest.raises(PayloadTooLarge, match="more than 10 members"):
        check_archive(many, ArchiveLimits(max_members=10))
    with pytest.raises(PayloadTooLarge, match=r"more than 1000 bytes \(at member 'b'\)"):
        check_archive(big, ArchiveLimits(max_bytes=1000))
    with pytest.raises(PayloadTooLarge, match="expands more than 100 times"):
        check_archive(zeros)
    assert check_archive(zeros, ArchiveLimits(max_ratio=10_000)).total_bytes == 2 * 1024 * 1024


def test_a_member_declared_huge_is_refused_from_its_header_alone() -> None:
    info = tarfile.TarInfo("bomb")
    info.size = 10 * 1024**3

    with pytest.raises(PayloadTooLarge, match="unpacks to more than"):
        check_archive(info.tobuf(format=tarfile.PAX_FORMAT))


@pytest.mark.parametrize(("subdir", "dockerfile"), [("../x", "Dockerfile"), ("t", "../Dockerfile")])
def test_the_dockerfile_must_be_inside_the_context(subdir: str, dockerfile: str) -> None:
    with pytest.raises(UnsafeSource, match="outside"):
        check_uploaded_source(tar(("t/Dockerfile", b"FROM x\n")), subdir, dockerfile)


def test_a_directory_named_dockerfile_is_not_a_dockerfile() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("Dockerfile")
        info.type = tarfile.DIRTYPE
        archive.addfile(info)

    with pytest.raises(InvalidInput, match="no Dockerfile at Dockerfile"):
        check_uploaded_source(buffer.getvalue(), None, "Dockerfile")


# --- the clone --------------------------------------------------------------------


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    repo = tmp_path / "origin"
    repo.mkdir()
    git("init", "--quiet", "--initial-branch=main", cwd=repo)
    (repo / "Dockerfile").write_text("FROM craton/busybox:latest\n")
    git("add", "Dockerfile", cwd=repo)
    git("commit", "--quiet", "-m", "first", cwd=repo)
    return repo


LOCAL = GitSourcePolicy(allow_local=True)


def test_file_urls_need_the_local_setting(origin: Path, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="file: URLs are not allowed"):
        fetch_git(f"file://{origin}", None, tmp_path / "refused", timeout=30)
    assert not (tmp_path / "refused").exists()

    assert fetch_git(f"file://{origin}", "main", tmp_path / "src", timeout=30, policy=LOCAL)
    assert (tmp_path / "src" / "Dockerfile").is_file()


def test_a_clone_over_the_size_cap_is_refused(origin: Path, tmp_path: Path) -> None:
    (origin / "noise.bin").write_bytes(os.urandom(300_000))
    git("add", "noise.bin", cwd=origin)
    git("commit", "--quiet", "-m", "noise", cwd=origin)

    with pytest.raises(SourceError, match="over the 100000 byte limit") as caught:
        fetch_git(
            f"file://{origin}", None, tmp_path / "src", timeout=30, policy=LOCAL, max_bytes=100_000
        )
    assert "could not clone" in caught.value.message


def test_a_checkout_that_inflates_past_the_cap_is_refused(origin: Path, tmp_path: Path) -> None:
    """A few KiB of objects that check out as megabytes of files."""
    (origin / "zeros").write_bytes(bytes(3_000_000))
    git("add", "zeros", cwd=origin)
    git("commit", "--quiet", "-m", "zeros", cwd=origin)

    with pytest.raises(SourceError, match="its files"):
        fetch_git(
            f"file://{origin}",
            None,
            tmp_path / "src",
            timeout=30,
            policy=LOCAL,
            max_bytes=1_000_000,
        )


def test_git_runs_without_prompts_hooks_submodules_or_redirects() -> None:
    env = git_env(("https", "ssh"))
    options = git_config_args(("https", "ssh"))

    assert env["GIT_TERMINAL_PROMPT"] == "0" and env["GIT_ASKPASS"] == "/bin/true"
    assert "BatchMode=yes" in env["GIT_SSH_COMMAND"]
    assert env["GIT_ALLOW_PROTOCOL"] == "https:ssh"
    for option in [
        "protocol.allow=never",
        "protocol.https.allow=always",
        "core.hooksPath=/dev/null",
        "submodule.recurse=false",
        "http.followRedirects=false",
    ]:
        assert option in options
    assert "protocol.file.allow=always" not in options


def test_the_build_log_never_shows_credentials(settings: Any, sessions: Any, root: Any) -> None:
    """An old row holding a token in its URL: the runner refuses it without printing it."""
    with transaction(sessions) as session:
        task = task_service.create_task(
            session,
            root.project_id,
            None,
            TaskCreate(name="old", location="https://example.com/r.git", command="run"),
            None,
            1024,
        )
        task.location = "https://deploy:s3cret-token@example.com/r.git"
        build_id = task.current_build_id
    with transaction(sessions) as session:
        claim = build_service.claim_next_build(session, "test-runner", 30)
    assert claim is not None

    BuildExecution(settings, sessions, builder=None, owner="test-runner", build=claim).run()  # type: ignore[arg-type]

    with transaction(sessions) as session:
        build = session.get(Build, build_id)
        lines = [
            row.line
            for row in session.execute(select(BuildLog).where(BuildLog.build_id == build_id))
            .scalars()
            .all()
        ]
        assert session.get(Task, task.id).status == "BUILD FAILED"
    assert build is not None and build.status == "BUILD FAILED"
    assert "credentials in the URL are not allowed" in build.error
    assert lines and not any("s3cret" in line for line in lines)
    assert "s3cret" not in build.error
    assert any("https://***@example.com/r.git" in line for line in lines)
