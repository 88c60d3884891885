"""Every hostile input a caller can send about a task's source, through the real app.

Each is refused with a 4xx and a JSON message naming the problem, and nothing
is written: no task, no stored archive, no queued build.
"""

from __future__ import annotations

import copy
import gzip
import io
import json
import tarfile
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.exc import DataError

from craton_wf.api.errors import install_error_handlers
from craton_wf.db.engine import transaction
from craton_wf.db.models import Build, Task, TaskSource
from craton_wf.settings import Settings
from tests.factories import make_inventory, make_ready_task

MIB = 1024 * 1024


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared settings with small caps, so that the tests stay fast."""
    return settings.model_copy(
        update={
            "upload_max_bytes": MIB,
            "upload_max_members": 50,
            "upload_max_unpacked_bytes": 2 * MIB,
            "request_max_bytes": 64 * 1024,
        }
    )


@pytest.fixture(autouse=True)
def host_names(fake_dns: dict[str, list[str]]) -> None:
    fake_dns["internal.example"] = ["10.1.2.3"]
    fake_dns["metadata.example"] = ["93.184.215.14", "169.254.169.254"]
    fake_dns["gone.example"] = []


def stored_rows(sessions: Any) -> tuple[int, int, int]:
    """(tasks, archives, builds) in the database."""
    with transaction(sessions) as session:
        return tuple(  # type: ignore[return-value]
            session.execute(select(func.count()).select_from(model)).scalar_one()
            for model in (Task, TaskSource, Build)
        )


def assert_refused(answer: Any, status: int, *words: str) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"message", "status", "code"} and body["status"] == status
    for word in words:
        assert word in body["message"], body["message"]


# --- git sources ----------------------------------------------------------------------

GIT_SOURCES = [
    # (location, extra fields, words the message must contain)
    ("ext::sh -c touch% /tmp/pwned", {}, ["remote helpers"]),
    ("fd::3", {}, ["remote helpers"]),
    ("https::example.com/repo.git", {}, ["remote helpers"]),
    ("--upload-pack=touch /tmp/pwned", {}, ["starts with '-'"]),
    ("-uhttps://example.com/r.git", {}, ["starts with '-'"]),
    ("https://example.com/-r.git", {}, ["start with '-'"]),
    ("https://example.com/r.git", {"ref": "--output=/tmp/pwned"}, ["invalid git ref"]),
    ("https://example.com/r.git", {"ref": "main/-x"}, ["invalid git ref"]),
    ("https://example.com/r.git", {"subdir": "-x"}, ["subdir", "'-'"]),
    ("https://example.com/r.git", {"subdir": "a/-b"}, ["subdir", "'-'"]),
    ("https://example.com/$(id).git", {}, ["'$'"]),
    ("https://example.com/`id`.git", {}, ["backticks"]),
    ("file:///etc/repo.git", {}, ["file: URLs are not allowed"]),
    ("file:/etc/repo.git", {}, ["file: URLs are not allowed"]),
    ("/srv/repos/task.git", {}, ["local paths are not allowed"]),
    ("../task", {}, ["local paths are not allowed"]),
    ("https://user:s3cret@example.com/r.git", {}, ["credentials"]),
    ("https://ghp_token@example.com/r.git", {}, ["credentials"]),
    ("https://127.0.0.1/r.git", {}, ["loopback"]),
    ("https://127.1/r.git", {}, ["loopback"]),
    ("https://[::1]/r.git", {}, ["loopback"]),
    ("https://localhost/r.git", {}, ["loopback"]),
    ("https://10.0.0.7/r.git", {}, ["private"]),
    ("https://[::ffff:192.168.1.1]/r.git", {}, ["private"]),
    ("https://169.254.169.254/r.git", {}, ["link-local"]),
    ("https://0.0.0.0/r.git", {}, ["unspecified"]),
    ("https://224.0.0.1/r.git", {}, ["multicast"]),
    ("https://100.64.0.1/r.git", {}, ["not a public address"]),
    ("https://internal.example/r.git", {}, ["resolves to 10.1.2.3", "private"]),
    ("https://metadata.example/r.git", {}, ["resolves to 169.254.169.254", "link-local"]),
    ("https://gone.example/r.git", {}, ["does not resolve"]),
    ("http://example.com/r.git", {}, ["plain http"]),
    ("git://example.com/r.git", {}, ["'git' scheme"]),
    ("ssh://git@example.com/r.git", {}, ["ssh to 'example.com' is not allowed"]),
    ("git@example.com:org/r.git", {}, ["ssh to 'example.com' is not allowed"]),
    ("ssh://-oProxyCommand=touch%20x/r.git", {}, ["'-'"]),
]


@pytest.mark.parametrize(("location", "extra", "words"), GIT_SOURCES)
def test_a_hostile_git_source_is_refused_and_nothing_is_stored(
    api: Any, sessions: Any, location: str, extra: dict[str, Any], words: list[str]
) -> None:
    answer = api.post(
        "/v1/tasks", json={"name": "t", "location": location, "command": "run", **extra}
    )

    assert_refused(answer, 400, *words)
    assert answer.json()["code"] == "unsafe_source"
    assert "s3cret" not in answer.text and "ghp_token" not in answer.text
    assert api.get("/v1/tasks").json()["tasks"] == []
    assert stored_rows(sessions) == (0, 0, 0)


def test_the_settings_open_what_they_name(api: Any, settings: Settings) -> None:
    settings.git_ssh_allowed_hosts = ["git.corp.example"]
    settings.git_allow_http = True
    settings.git_allow_private_hosts = True
    for index, location in enumerate(
        [
            "ssh://git@git.corp.example/ops/t.git",
            "git@git.corp.example:ops/t.git",
            "http://example.com/t.git",
            "https://internal.example/t.git",
            "https://10.0.0.7/t.git",
        ]
    ):
        made = api.post(
            "/v1/tasks", json={"name": f"t{index}", "location": location, "command": "run"}
        )
        assert made.status_code == 201, made.text
    refused = api.post(
        "/v1/tasks", json={"name": "f", "location": "file:///srv/t.git", "command": "run"}
    )
    assert_refused(refused, 400, "file: URLs are not allowed")


def test_a_hostile_update_or_rebuild_changes_nothing(api: Any, sessions: Any) -> None:
    task = api.post(
        "/v1/tasks", json={"name": "t", "location": "https://example.com/t.git", "command": "run"}
    ).json()

    for change, words in [
        ({"location": "ext::sh -c id"}, ["remote helpers"]),
        ({"location": "https://10.0.0.7/t.git"}, ["private"]),
        ({"ref": "--output=x"}, ["invalid git ref"]),
        ({"subdir": "../elsewhere"}, ["inside the source"]),
        ({"dockerfile": "/etc/Dockerfile"}, ["inside the source"]),
    ]:
        assert_refused(api.put(f"/v1/tasks/{task['id']}", json=change), 400, *words)
    assert_refused(
        api.post(f"/v1/tasks/{task['id']}/builds", json={"ref": "-x"}), 400, "invalid git ref"
    )

    shown = api.get(f"/v1/tasks/{task['id']}").json()
    assert (shown["location"], shown["ref"], shown["subdir"]) == (
        "https://example.com/t.git",
        None,
        None,
    )
    assert stored_rows(sessions) == (1, 0, 1)


# --- uploaded archives ----------------------------------------------------------------


def member(name: str, data: bytes = b"x\n", kind: bytes = tarfile.REGTYPE, link: str = "") -> Any:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, (data if kind == tarfile.REGTYPE else None)


def tar_gz(*members: Any, **pax: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
        for shared, data in members:
            info = copy.copy(shared)
            info.pax_headers = dict(pax)
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


DOCKERFILE = member("Dockerfile", b"FROM craton/busybox:latest\n")

ARCHIVES = [
    # (id, archive, spec fields, status, words)
    ("traversal", lambda: tar_gz(DOCKERFILE, member("../escaped")), {}, 400, ["'..'"]),
    ("nested-traversal", lambda: tar_gz(DOCKERFILE, member("a/../../x")), {}, 400, ["'..'"]),
    ("absolute", lambda: tar_gz(DOCKERFILE, member("/etc/cron.d/x")), {}, 400, ["absolute"]),
    (
        "symlink",
        lambda: tar_gz(DOCKERFILE, member("link", kind=tarfile.SYMTYPE, link="/etc/passwd")),
        {},
        400,
        ["symbolic link"],
    ),
    (
        "hardlink",
        lambda: tar_gz(DOCKERFILE, member("hard", kind=tarfile.LNKTYPE, link="Dockerfile")),
        {},
        400,
        ["hard link"],
    ),
    (
        "device",
        lambda: tar_gz(DOCKERFILE, member("null", kind=tarfile.CHRTYPE)),
        {},
        400,
        ["device"],
    ),
    ("fifo", lambda: tar_gz(DOCKERFILE, member("pipe", kind=tarfile.FIFOTYPE)), {}, 400, ["fifo"]),
    (
        "too-many-members",
        lambda: tar_gz(DOCKERFILE, *(member(f"f{i}") for i in range(60))),
        {},
        413,
        ["more than 50 members"],
    ),
    (
        "too-big-unpacked",
        lambda: tar_gz(DOCKERFILE, member("zeros", bytes(3 * MIB))),
        {},
        413,
        ["more than 2097152 bytes"],
    ),
    (
        "bomb",  # 1.5 MiB of zeros in a few KiB: under the size cap, over the ratio
        lambda: tar_gz(DOCKERFILE, member("zeros", bytes(3 * MIB // 2))),
        {},
        413,
        ["expands more than 100 times", "bomb"],
    ),
    (
        "pax-header-bomb",
        lambda: tar_gz(DOCKERFILE, comment="x" * (4 * MIB)),
        {},
        413,
        ["headers inflate", "bomb"],
    ),
    ("not-a-tar", lambda: gzip.compress(b"just text\n" * 100), {}, 400, ["tar archive"]),
    ("no-dockerfile", lambda: tar_gz(member("run.sh")), {}, 400, ["no Dockerfile at Dockerfile"]),
    ("subdir-outside", lambda: tar_gz(DOCKERFILE), {"subdir": "../x"}, 400, ["inside the source"]),
    (
        "dockerfile-outside",
        lambda: tar_gz(DOCKERFILE),
        {"subdir": "task", "dockerfile": "../Dockerfile"},
        400,
        ["inside the source"],
    ),
    ("dockerfile-absolute", lambda: tar_gz(DOCKERFILE), {"dockerfile": "/Dockerfile"}, 400, []),
]


@pytest.mark.parametrize(
    ("make", "fields", "status", "words"),
    [case[1:] for case in ARCHIVES],
    ids=[case[0] for case in ARCHIVES],
)
def test_a_hostile_archive_is_refused_at_upload_and_nothing_is_stored(
    api: Any, sessions: Any, make: Any, fields: dict[str, Any], status: int, words: list[str]
) -> None:
    spec = json.dumps({"name": "up", "command": "sh /run.sh", **fields})

    answer = api.post(
        "/v1/tasks",
        files={"spec": (None, spec), "archive": ("src.tgz", make(), "application/gzip")},
    )

    assert_refused(answer, status, *words)
    assert api.get("/v1/tasks").json()["tasks"] == []
    assert stored_rows(sessions) == (0, 0, 0)


def test_a_hostile_archive_is_refused_on_rebuild_too(api: Any, sessions: Any) -> None:
    spec = json.dumps({"name": "up", "command": "sh /run.sh"})
    good = ("src.tgz", tar_gz(DOCKERFILE), "application/gzip")
    task = api.post("/v1/tasks", files={"spec": (None, spec), "archive": good}).json()
    bad = ("src.tgz", tar_gz(DOCKERFILE, member("l", kind=tarfile.SYMTYPE, link="/")), "x")

    answer = api.post(
        f"/v1/tasks/{task['id']}/builds", files={"spec": (None, "{}"), "archive": bad}
    )

    assert_refused(answer, 400, "symbolic link")
    assert stored_rows(sessions) == (1, 1, 1)


def test_a_plain_archive_with_a_subdirectory_is_accepted(api: Any) -> None:
    spec = json.dumps({"name": "up", "command": "sh /run.sh", "subdir": "task"})
    archive = tar_gz(member("task", kind=tarfile.DIRTYPE), member("task/Dockerfile"))

    made = api.post("/v1/tasks", files={"spec": (None, spec), "archive": ("a.tgz", archive, "x")})

    assert made.status_code == 201, made.text


# --- bodies and pages ------------------------------------------------------------------


def test_an_oversized_json_body_is_a_413_before_any_route_reads_it(api: Any, sessions: Any) -> None:
    body = {"name": "t", "location": "https://example.com/t.git", "command": "x" * (70 * 1024)}

    assert_refused(api.post("/v1/tasks", json=body), 413, "over the 65536 byte limit")
    assert_refused(api.post("/v1/hosts", json={"name": "h", "x": "y" * (70 * 1024)}), 413, "limit")
    assert_refused(api.put("/v1/tasks/1", json={"command": "x" * (70 * 1024)}), 413, "65536")
    assert stored_rows(sessions) == (0, 0, 0)


def test_a_task_spec_nested_too_deep_is_a_400_not_a_crash(api: Any, sessions: Any) -> None:
    deep = '{"name": "t", "command": "x", "labels": ' + "[" * 5000 + "]" * 5000 + "}"
    archive = tar_gz(member("Dockerfile"))

    assert_refused(
        api.post("/v1/tasks", content=deep, headers={"content-type": "application/json"}),
        400,
        "not JSON",
    )
    upload = api.post("/v1/tasks", files={"spec": (None, deep), "archive": ("a.tgz", archive, "x")})
    assert_refused(upload, 400, "'spec' part is not JSON")
    assert stored_rows(sessions) == (0, 0, 0)


def test_a_streamed_body_without_a_length_is_counted(api: Any, sessions: Any) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "t", "location": "https://example.com/t.git", "command": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    answer = api.put("/v1/tasks/1", content=chunks(), headers={"content-type": "application/json"})

    assert "content-length" not in {k.lower() for k in answer.request.headers}
    assert_refused(answer, 413, "over the 65536 byte limit")
    assert stored_rows(sessions) == (0, 0, 0)


def test_an_upload_over_its_own_cap_is_a_413(api: Any, sessions: Any) -> None:
    spec = json.dumps({"name": "up", "command": "run"})
    huge = ("src.tgz", bytes(3 * MIB), "application/gzip")

    assert_refused(api.post("/v1/tasks", files={"spec": (None, spec), "archive": huge}), 413)
    assert stored_rows(sessions) == (0, 0, 0)


def test_a_huge_page_limit_is_refused(api: Any) -> None:
    assert_refused(api.get("/v1/tasks?limit=100000"), 400, "limit must be at most 1000")
    assert_refused(api.get("/v1/hosts?limit=100000"), 400, "limit must be at most 1000")


def test_an_id_past_the_databases_integer_range_is_not_found(api):
    for path in ("/v1/hosts/", "/v1/jobs/", "/v1/tasks/"):
        for huge in (2**31, 2**40, 2**70, -(2**40)):
            answer = api.get(f"{path}{huge}")
            assert answer.status_code == 404, (path, huge, answer.text)
            assert str(huge) in answer.json()["message"]


def test_a_number_past_the_databases_range_in_a_body_is_refused_by_name(api, sessions, root):
    with transaction(sessions) as session:
        hosts = make_inventory(session, root.project_id, 1)
        make_ready_task(session, root.project_id, "t")
    for field in ("max_failures", "timeout"):
        for huge in (2**31, 2**70):
            answer = api.post("/v1/jobs", json={"task": "t", "hosts": [hosts[0].id], field: huge})
            assert answer.status_code == 422, answer.text
            assert field in answer.json()["message"]
    assert api.get("/v1/jobs").json()["jobs"] == []  # nothing half-made


def test_a_value_the_database_refuses_is_the_requests_fault_named() -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/data")
    def data() -> None:
        raise DataError("SELECT 1", {}, _Orig("integer out of range"))

    @app.get("/overflow")
    def overflow() -> None:
        raise OverflowError("Python int too large to convert to SQLite INTEGER")

    client = TestClient(app, raise_server_exceptions=False)
    for path, said in (("/data", "integer out of range"), ("/overflow", "too large")):
        answer = client.get(path)
        assert answer.status_code == 400, answer.text
        assert answer.json()["message"].startswith("a value does not fit the database")
        assert said in answer.json()["message"]


class _Orig(Exception):
    pass
