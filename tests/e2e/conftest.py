"""A live ``craton-wf serve`` (API + embedded runner) and the ``craton`` CLI as subprocesses."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    env: dict[str, str]
    processes: list[subprocess.Popen[bytes]]
    log: Path

    def craton(
        self, *args: str, check: bool = True, timeout: float = 300, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "cratonclient.shell.main", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"craton {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def json(self, *args: str) -> object:
        return json.loads(self.craton("--format", "json", *args).stdout)

    def approve(self, *tasks: str) -> None:
        """``craton task-approve`` as a second admin: a build's author cannot approve it."""
        if "approver" not in self.env.get("CRATON_TEST_APPROVER", ""):
            self.craton("user-create", "--name", "approver", "--role", "admin")
            issued = self.json("token-create", "--user", "approver", "--name", "e2e")
            self.env["CRATON_TEST_APPROVER"] = f"approver:{issued['token']}"  # type: ignore[index]
        token = self.env["CRATON_TEST_APPROVER"].split(":", 1)[1]
        saved = self.env
        self.env = {**saved, "OS_USERNAME": "approver", "OS_PASSWORD": token}
        try:
            for task in tasks:
                self.craton("task-approve", task)
        finally:
            self.env = saved


@dataclass(frozen=True)
class ServeTls:
    """``serve`` over https: its certificate and key, the CA clients check it by, and
    for mutual TLS the client CA and the certificate the tests' clients present."""

    cert: Path
    key: Path
    ca: Path
    client_ca: Path | None = None
    client: tuple[Path, Path] | None = None  # certificate and key; None: present none

    def serve_args(self) -> list[str]:
        args = ["--tls-cert", str(self.cert), "--tls-key", str(self.key)]
        return args + (["--tls-client-ca", str(self.client_ca)] if self.client_ca else [])

    def client_env(self) -> dict[str, str]:
        """The CLI's settings: ``OS_CACERT``, and ``OS_CERT``/``OS_KEY`` when it has one."""
        env = {"OS_CACERT": str(self.ca)}
        if self.client is not None:
            env |= {"OS_CERT": str(self.client[0]), "OS_KEY": str(self.client[1])}
        return env

    def ssl_context(self) -> ssl.SSLContext:
        """httpx's ``verify`` for the tests' own requests."""
        context = ssl.create_default_context(cafile=self.ca)
        if self.client is not None:
            context.load_cert_chain(*self.client)
        return context


def start_server(
    database_url: str,
    tmp_path: Path,
    embedded: bool,
    *,
    tls: ServeTls | None = None,
    **settings: str,
) -> Server:
    """``craton-wf serve`` with its embedded runner, or without it plus a ``craton-wf runner``.

    ``tls``: serve https with these files (``serve --tls-cert …``), the CLI
    given the CA (and client certificate). ``settings`` are more of the
    server's settings, by name (``lease_seconds="60"``)."""
    port = free_port()
    env = {
        **os.environ,
        "CRATON_WF_DATABASE_URL": database_url,
        "CRATON_WF_DATA_DIR": str(tmp_path / "data"),
        "CRATON_WF_API_PORT": str(port),
        "CRATON_WF_RUNNER_POLL_SECONDS": "0.1",
        "CRATON_WF_STOP_GRACE_SECONDS": "2",
        "CRATON_WF_IMAGE_PREFIX": "craton-test",
        "CRATON_WF_GIT_ALLOW_LOCAL_SOURCES": "true",  # the tests' repositories are file://
        **{f"CRATON_WF_{name.upper()}": value for name, value in settings.items()},
    }
    cli = [sys.executable, "-m", "craton_wf.cli"]
    credentials = json.loads(
        subprocess.run(
            [*cli, "bootstrap", "--format", "json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    log = tmp_path / "serve.log"
    processes = []
    with log.open("wb") as out:
        serve = [*cli, "serve"] if embedded else [*cli, "serve", "--no-runner"]
        serve += tls.serve_args() if tls else []
        processes.append(subprocess.Popen(serve, env=env, stdout=out, stderr=subprocess.STDOUT))
        if not embedded:
            processes.append(
                subprocess.Popen(
                    [*cli, "runner", "--name", "e2e"], env=env, stdout=out, stderr=subprocess.STDOUT
                )
            )
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    wait_ready(url, processes, log, verify=tls.ssl_context() if tls else True)
    client_env = {
        **env,
        **(tls.client_env() if tls else {}),
        "CRATON_URL": url,
        "OS_PROJECT_ID": credentials["project_id"],
        "OS_USERNAME": credentials["username"],
        "OS_PASSWORD": credentials["token"],
    }
    return Server(url, client_env, processes, log)


def wait_ready(
    url: str,
    processes: list[subprocess.Popen[bytes]],
    log: Path,
    verify: ssl.SSLContext | bool = True,
) -> None:
    """Until ``url``'s /readyz answers 200; stops the processes when one exits or 30 s pass."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1, verify=verify).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if any(p.poll() is not None for p in processes):
            stop(processes)
            raise AssertionError(f"a server process exited:\n{log.read_text()}")
        time.sleep(0.2)
    stop(processes)
    raise AssertionError(f"serve did not become ready:\n{log.read_text()}")


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    running = start_server(database_url, tmp_path, embedded=True)
    yield running
    stop(running.processes)


@pytest.fixture
def split_server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    running = start_server(database_url, tmp_path, embedded=False)
    yield running
    stop(running.processes)
