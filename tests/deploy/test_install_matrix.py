"""The install matrix: what a user gets from ``pip install`` in a fresh virtual environment.

A new virtual environment (from Debian's /usr/bin/python3 when there is one,
as on a fresh machine) gets the bare ``pip install ./ ./client`` — no extra —
and must then run: ``craton-wf bootstrap``, ``craton-wf serve`` on SQLite with
the fake executor, and a job through the ``craton`` CLI to SUCCEEDED (its task
built with the Docker engine from a local directory, approved by a second
admin). The bare install holds no Kubernetes client, PostgreSQL driver or
GitPython, and the server needs no rich. Then ``./[postgres]`` is added and
the same runs on PostgreSQL (scripts/start-postgres.sh).

The installs use pip's cache and ``-c constraints.txt``. They need neither
the test database nor a second pass: this module runs once (``sqlite_only``,
and scripts/test leaves tests/deploy out of the PostgreSQL pass). The venv's
size and install times are printed (``-s``) and recorded as properties.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.e2e.conftest import free_port, stop

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "constraints.txt", "craton_wf", "migrations", "client")
NOT_IN_A_BARE_INSTALL = ("kubernetes", "psycopg", "git")

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.sqlite_only]


@dataclass
class Venv:
    path: Path
    sources: Path

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    def pip_install(self, *requirements: str) -> float:
        """Seconds ``pip install -c constraints.txt <requirements>`` took, run in the sources."""
        started = time.monotonic()
        done = subprocess.run(
            [str(self.bin / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
             "-c", "constraints.txt", *requirements],
            cwd=self.sources,
            env=clean_environment(self),
            capture_output=True,
            text=True,
            timeout=900,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return time.monotonic() - started

    def python(self, code: str) -> str:
        done = subprocess.run(
            [str(self.bin / "python"), "-c", code],
            env=clean_environment(self),
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

    def size_mb(self) -> float:
        total = sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())
        return total / 1e6


def clean_environment(venv: Venv) -> dict[str, str]:
    """A user's shell with the venv first on PATH: nothing of the test's own Python leaks in."""
    keep = ("HOME", "LANG", "DOCKER_HOST", "TMPDIR", "PIP_INDEX_URL", "PIP_CACHE_DIR")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env["PATH"] = f"{venv.bin}:/usr/local/bin:/usr/bin:/bin"
    env["VIRTUAL_ENV"] = str(venv.path)
    return env


def base_python() -> str:
    if Path("/usr/bin/python3").exists():
        return "/usr/bin/python3"
    return getattr(sys, "_base_executable", sys.executable)


@pytest.fixture(scope="module")
def bare_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Venv]:
    """A fresh venv with ``pip install ./ ./client``, from a copy of the sources (so the
    build leaves nothing in the checkout)."""
    workdir = tmp_path_factory.mktemp("install")
    sources = workdir / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "*.py[cod]")
    for name in SOURCES:
        origin = ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, sources / name, ignore=ignore)
        else:
            sources.mkdir(exist_ok=True)
            shutil.copy2(origin, sources / name)
    venv = Venv(workdir / "venv", sources)
    started = time.monotonic()
    subprocess.run([base_python(), "-m", "venv", str(venv.path)], check=True, timeout=300)
    created = time.monotonic() - started
    installed = venv.pip_install("./", "./client")
    print(
        f"\ninstall matrix: venv from {base_python()} in {created:.1f}s, "
        f"pip install ./ ./client in {installed:.1f}s, {venv.size_mb():.0f} MB"
    )
    yield venv


@dataclass
class Lab:
    """A ``craton-wf serve`` of the bare venv and the ``craton`` CLI of the same venv."""

    venv: Venv
    env: dict[str, str]
    serve: subprocess.Popen[bytes]
    log: Path

    def craton(self, *args: str, as_user: tuple[str, str] | None = None) -> str:
        env = dict(self.env)
        if as_user:
            env["OS_USERNAME"], env["OS_PASSWORD"] = as_user
        done = subprocess.run(
            [str(self.venv.bin / "craton"), *args], env=env, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, f"craton {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout


def start_lab(venv: Venv, database_url: str, workdir: Path) -> Lab:
    port = free_port()
    env = {
        **clean_environment(venv),
        "CRATON_WF_DATABASE_URL": database_url,
        "CRATON_WF_DATA_DIR": str(workdir / "data"),
        "CRATON_WF_API_PORT": str(port),
        "CRATON_WF_EXECUTOR": "fake",
        "CRATON_WF_IMAGE_PREFIX": "craton-test-install",
        "CRATON_WF_RUNNER_POLL_SECONDS": "0.1",
    }
    bootstrap = subprocess.run(
        [str(venv.bin / "craton-wf"), "bootstrap", "--format", "json"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bootstrap.returncode == 0, bootstrap.stderr
    credentials = json.loads(bootstrap.stdout)
    log = workdir / "serve.log"
    with log.open("wb") as out:
        serve = subprocess.Popen(
            [str(venv.bin / "craton-wf"), "serve"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if serve.poll() is not None or time.monotonic() > deadline:
            stop([serve])
            raise AssertionError(f"craton-wf serve did not become ready:\n{log.read_text()}")
        time.sleep(0.2)
    env.update(
        CRATON_URL=url,
        OS_PROJECT_ID=credentials["project_id"],
        OS_USERNAME=credentials["username"],
        OS_PASSWORD=credentials["token"],
    )
    return Lab(venv, env, serve, log)


def run_a_job(lab: Lab, workdir: Path, busybox_image: str) -> None:
    """Inventory, a task built from a local directory, a second admin's approval, a job."""
    task = workdir / "hello"
    task.mkdir()
    (task / "Dockerfile").write_text(f"FROM {busybox_image}\nCOPY hello.sh /craton/hello.sh\n")
    (task / "hello.sh").write_text('echo "hello from $(hostname)"\n')
    lab.craton("cloud-create", "--name", "lab")
    lab.craton("region-create", "--name", "dc1", "--cloud", "lab")
    lab.craton("host-create", "--name", "compute-1", "--ip-address", "10.0.0.11", "--region", "dc1")
    lab.craton("task-create", "--name", "hello", "--location", str(task),
               "--command", "sh /craton/hello.sh", "--wait")  # fmt: skip
    lab.craton("user-create", "--name", "approver", "--role", "admin")
    issued = json.loads(lab.craton("--format", "json", "token-create", "--user", "approver"))
    lab.craton("task-approve", "hello", as_user=("approver", issued["token"]))
    lab.craton("job-create", "--task", "hello", "--host", "compute-1", "--wait")
    jobs = json.loads(lab.craton("--format", "json", "job-list"))
    assert [job["status"] for job in jobs] == ["SUCCEEDED"], jobs


def test_the_bare_install_holds_no_optional_dependency(bare_venv: Venv, record_property) -> None:  # type: ignore[no-untyped-def]
    found = json.loads(
        bare_venv.python(
            "import importlib.util, json; "
            f"print(json.dumps({{m: importlib.util.find_spec(m) is not None "
            f"for m in {NOT_IN_A_BARE_INSTALL!r}}}))"
        )
    )
    assert found == dict.fromkeys(NOT_IN_A_BARE_INSTALL, False)
    # rich comes with the CLI (craton-client's tables), never with the server.
    needed = json.loads(bare_venv.python(SERVER_CLOSURE))
    assert "rich" not in needed and "craton-client" not in needed, needed
    record_property("venv_mb", round(bare_venv.size_mb()))


SERVER_CLOSURE = """
import json, re
from importlib.metadata import distribution, PackageNotFoundError
seen, todo = set(), ["craton-wf"]
while todo:
    name = todo.pop()
    if name in seen:
        continue
    seen.add(name)
    try:
        requires = distribution(name).requires or []
    except PackageNotFoundError:
        continue
    for requirement in requires:
        if "extra ==" in requirement:
            continue
        todo.append(re.split(r"[ ;<>=!~\\[(]", requirement, maxsplit=1)[0].lower())
print(json.dumps(sorted(seen)))
"""


def test_the_bare_install_serves_on_sqlite_and_runs_a_job(
    bare_venv: Venv, tmp_path: Path, busybox_image: str
) -> None:
    lab = start_lab(bare_venv, f"sqlite:///{tmp_path / 'craton-wf.db'}", tmp_path)
    try:
        run_a_job(lab, tmp_path, busybox_image)
    finally:
        stop([lab.serve])


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A new database on the local PostgreSQL (scripts/start-postgres.sh), dropped after."""
    started = subprocess.run(
        [str(ROOT / "scripts" / "start-postgres.sh")], capture_output=True, text=True, check=False
    )
    if started.returncode != 0:
        pytest.skip(f"no local PostgreSQL: {started.stderr[-500:]}")
    admin_url = make_url(started.stdout.strip().splitlines()[-1])
    name = f"craton_install_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield admin_url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_with_the_postgres_extra_it_serves_on_postgresql_and_runs_a_job(
    bare_venv: Venv, tmp_path: Path, busybox_image: str, postgres_database: str
) -> None:
    took = bare_venv.pip_install("./[postgres]")
    print(
        f"\ninstall matrix: pip install ./[postgres] in {took:.1f}s, {bare_venv.size_mb():.0f} MB"
    )
    assert bare_venv.python("import psycopg; print('ok')").strip() == "ok"
    lab = start_lab(bare_venv, postgres_database, tmp_path)
    try:
        run_a_job(lab, tmp_path, busybox_image)
    finally:
        stop([lab.serve])
