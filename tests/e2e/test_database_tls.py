"""PostgreSQL over TLS, set through the database URL only (``sslmode=verify-full``,
``sslrootcert``, ``sslcert``, ``sslkey``): migrations, the API and the embedded
runner all connect that way.

A PostgreSQL server of the test's own (Debian's binaries, run as the
``postgres`` user on a free port) requires TLS and authenticates by client
certificate (``hostssl … cert``: the certificate's CN is the role); the test
makes the CA, the server's and the client's certificates.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.certificates import CertificateAuthority, Issued, make_ca
from tests.e2e.conftest import free_port, start_server, stop

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found or shutil.which("runuser") is None or os.geteuid() != 0:
        pytest.skip("needs Debian's PostgreSQL binaries and root to run them as postgres")
    return Path(found[-1]).parent


def _as_postgres(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", "postgres", "--", *args], capture_output=True, text=True, timeout=120
    )


class TlsPostgres:
    """A throwaway PostgreSQL that speaks only TLS and trusts only ``ca``'s certificates."""

    def __init__(self, root: Path, ca: CertificateAuthority) -> None:
        self.bin = _postgres_bin()
        self.ca = ca
        self.port = free_port()
        self.data = root / "data"
        server = ca.issue("localhost", server=True)
        shutil.chown(root, "postgres", "postgres")
        for name, source in (("server.crt", server.cert), ("server.key", server.key)):
            shutil.copy(source, root / name)
            shutil.chown(root / name, "postgres", "postgres")
            (root / name).chmod(0o600)
        shutil.copy(ca.cert, root / "ca.crt")
        (root / "ca.crt").chmod(0o644)
        self.root = root

    def start(self) -> None:
        done = _as_postgres(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust"
        )
        assert done.returncode == 0, done.stderr
        conf = self.data / "postgresql.conf"
        conf.write_text(
            conf.read_text()
            + f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
            + f"unix_socket_directories = '{self.root}'\nssl = on\n"
            + f"ssl_cert_file = '{self.root}/server.crt'\nssl_key_file = '{self.root}/server.key'\n"
            + f"ssl_ca_file = '{self.root}/ca.crt'\n"
        )
        # Over TCP only TLS with a client certificate; the socket stays for setup.
        (self.data / "pg_hba.conf").write_text(
            "local all postgres trust\nhostssl all all 127.0.0.1/32 cert\n"
        )
        done = _as_postgres(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "log"),
            "-w",
            "start",
        )
        assert done.returncode == 0, done.stderr + (self.root / "log").read_text()
        for sql in ("create role craton login", "create database craton owner craton"):
            done = _as_postgres(
                str(self.bin / "psql"), "-h", str(self.root), "-p", str(self.port), "-c", sql
            )
            assert done.returncode == 0, done.stderr

    def stop(self) -> None:
        _as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop")

    def url(self, client: Issued | None, ca: Path | None = None) -> str:
        params = f"sslmode=verify-full&sslrootcert={ca or self.ca.cert}"
        if client is not None:
            params += f"&sslcert={client.cert}&sslkey={client.key}"
        return f"postgresql+psycopg://craton@localhost:{self.port}/craton?{params}"


@pytest.fixture
def tls_postgres(tmp_path: Path) -> Iterator[TlsPostgres]:
    # Not under tmp_path: pytest's directories are root's alone, and the server
    # runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="craton-pg-tls-"))
    server = TlsPostgres(root, make_ca(tmp_path / "pki", "db"))
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def migrate(url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CRATON_WF_DATABASE_URL": url, "CRATON_WF_DATA_DIR": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-m", "craton_wf.cli", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_migrations_api_and_runner_reach_postgres_over_verified_tls(
    tls_postgres: TlsPostgres, tmp_path: Path
) -> None:
    client = tls_postgres.ca.issue("craton")  # the role's name, as "cert" authentication wants
    url = tls_postgres.url(client)
    done = migrate(url, tmp_path)
    assert done.returncode == 0, done.stderr
    server = start_server(url, tmp_path, embedded=True, executor="fake")
    try:
        server.craton("cloud-create", "--name", "over-tls")
        assert server.json("cloud-list")[0]["name"] == "over-tls"  # type: ignore[index]
        runners = server.json("runner-list")
        assert len(runners) == 1  # type: ignore[arg-type]  # the runner's heartbeat got there too
    finally:
        stop(server.processes)


def test_no_client_certificate_or_another_ca_is_refused(
    tls_postgres: TlsPostgres, tmp_path: Path
) -> None:
    done = migrate(tls_postgres.url(None), tmp_path)
    assert done.returncode != 0
    assert "certificate" in done.stderr
    other = make_ca(tmp_path / "other", "other")
    done = migrate(tls_postgres.url(tls_postgres.ca.issue("craton"), ca=other.cert), tmp_path)
    assert done.returncode != 0
    assert "certificate verify failed" in done.stderr
