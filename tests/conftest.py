"""Shared fixtures: a migrated database per test (SQLite, or PostgreSQL when
``CRATON_WF_TEST_DATABASE_URL`` names one), the API app, and credentials.

SQLite tests copy a template database migrated once per session; PostgreSQL
tests share one migrated database and truncate every table between tests.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from craton_wf.db.engine import make_engine, make_session_factory, transaction
from craton_wf.db.migrate import upgrade
from craton_wf.db.models import Base
from craton_wf.services.auth import bootstrap
from craton_wf.settings import Settings

POSTGRES_URL = os.environ.get("CRATON_WF_TEST_DATABASE_URL", "")

# Tests make git commits; a fresh machine may have no git identity configured.
for _variable, _value in (
    ("GIT_AUTHOR_NAME", "craton-wf tests"),
    ("GIT_AUTHOR_EMAIL", "tests@craton-wf.invalid"),
    ("GIT_COMMITTER_NAME", "craton-wf tests"),
    ("GIT_COMMITTER_EMAIL", "tests@craton-wf.invalid"),
):
    os.environ.setdefault(_variable, _value)


def pytest_report_header(config: pytest.Config) -> str:
    return f"craton-wf database: {'postgresql' if POSTGRES_URL else 'sqlite'}"


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """The local Docker engine; the tests that need it are skipped when none answers."""
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.skip(f"no Docker engine answers (DOCKER_HOST or /var/run/docker.sock): {exc}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def database_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database: a SQLite file to copy, or a PostgreSQL URL."""
    if POSTGRES_URL:
        admin_url = make_url(POSTGRES_URL)
        name = f"craton_test_{uuid.uuid4().hex[:8]}"
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = admin_url.set(database=name).render_as_string(hide_password=False)
        upgrade(Settings(database_url=url))
        admin.dispose()
        yield url
        # A fresh engine: a test may have restarted the server meanwhile.
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    else:
        path = tmp_path_factory.mktemp("db") / "template.db"
        upgrade(Settings(database_url=f"sqlite:///{path}"))
        yield str(path)


def _truncate_all(url: str) -> None:
    engine = create_engine(url, pool_pre_ping=True)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def database_url(database_template: str, tmp_path: Path) -> str:
    if POSTGRES_URL:
        _truncate_all(database_template)
        return database_template
    path = tmp_path / "craton-wf.db"
    shutil.copy(database_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        executor="fake",
        runner_poll_seconds=0.05,
        heartbeat_seconds=0.5,
        lease_seconds=10,
        stop_grace_seconds=2,
    )


@pytest.fixture
def sessions(settings: Settings):  # type: ignore[no-untyped-def]
    engine = make_engine(settings)
    yield make_session_factory(engine)
    engine.dispose()


@dataclass(frozen=True)
class Credentials:
    project_id: str
    user: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {
            "X-Auth-Project": self.project_id,
            "X-Auth-User": self.user,
            "X-Auth-Token": self.token,
        }


@pytest.fixture
def root(sessions) -> Credentials:  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        done = bootstrap(session, "default", "root")
        return Credentials(done.project.id, done.user.name, done.token.token)


# Where every git host name of the tests resolves (example.com's address, a public
# one), so that no test asks the network; tests of the host checks add their own.
PUBLIC_ADDRESS = "93.184.215.14"


@pytest.fixture(autouse=True)
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """The names git URLs resolve to in-process: set ``fake_dns[name]``; ``[]`` fails to resolve."""
    from craton_wf.engine import source_rules

    names: dict[str, list[str]] = {"localhost": ["127.0.0.1"]}

    def resolve(host: str) -> list[str]:
        addresses = names.get(host, [PUBLIC_ADDRESS])
        if not addresses:
            raise OSError(f"{host}: name does not resolve")
        return addresses

    monkeypatch.setattr(source_rules, "resolve_host_addresses", resolve)
    return names


def have_docker() -> bool:
    return shutil.which("docker") is not None and os.path.exists("/var/run/docker.sock")


@pytest.fixture
def api(settings, sessions, root):  # type: ignore[no-untyped-def]
    """A TestClient of the real app, authenticated as the bootstrap root user."""
    from fastapi.testclient import TestClient

    from craton_wf.api.app import create_app

    with TestClient(create_app(settings, sessions), headers=root.headers) as client:
        yield client


def _base_image(image: str, which: str) -> str:
    """``image``, one of the locally made bases (scripts/make-base-images.sh --only
    ``which``), built if missing; the test is skipped without a Docker engine."""
    import subprocess

    if not have_docker():
        pytest.skip("no Docker engine")
    if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode:
        root = Path(__file__).resolve().parent.parent
        subprocess.run([str(root / "scripts/make-base-images.sh"), "--only", which], check=True)
    return image


@pytest.fixture(scope="session")
def busybox_image() -> str:
    """The busybox base: what most tests' tasks are built from (seconds to make)."""
    return _base_image("craton/busybox:latest", "busybox")


@pytest.fixture(scope="session")
def python_image() -> str:
    """The Debian base with bash and python3 (a minute to make)."""
    return _base_image("craton/python:3", "python")
