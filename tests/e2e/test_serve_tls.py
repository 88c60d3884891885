"""``craton-wf serve`` over https and mutual TLS, with the ``craton`` CLI as a client.

Each test makes its own CA (``tests.certificates``); the server is a live
``serve`` subprocess (``start_server(tls=...)``) and the client the real CLI,
given ``OS_CACERT``/``OS_CERT``/``OS_KEY`` as an operator would.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest

from tests.certificates import CertificateAuthority, Issued, make_ca
from tests.e2e.conftest import Server, ServeTls, free_port, start_server, stop

pytestmark = [pytest.mark.e2e]


@dataclass(frozen=True)
class Authorities:
    ours: CertificateAuthority
    other: CertificateAuthority
    server: Issued


@pytest.fixture
def authorities(tmp_path: Path) -> Authorities:
    ours = make_ca(tmp_path / "pki", "ours")
    return Authorities(
        ours, make_ca(tmp_path / "pki", "other"), ours.issue("localhost", server=True)
    )


def serve_mutual(
    database_url: str, tmp_path: Path, authorities: Authorities, **settings: str
) -> Iterator[Server]:
    """A server whose clients must present a certificate of our CA; the CLI presents root's."""
    root = authorities.ours.issue("root")
    tls = ServeTls(
        authorities.server.cert,
        authorities.server.key,
        authorities.ours.cert,
        client_ca=authorities.ours.cert,
        client=(root.cert, root.key),
    )
    running = start_server(
        database_url, tmp_path, embedded=True, tls=tls, executor="fake", **settings
    )
    yield running
    stop(running.processes)


def with_env(server: Server, **changes: str | None) -> Server:
    """The server's CLI with some settings changed (None: unset)."""
    env = {k: v for k, v in server.env.items() if changes.get(k, "") is not None}
    env |= {k: v for k, v in changes.items() if v is not None}
    return replace(server, env=env)


def refused(server: Server, *args: str) -> str:
    done = server.craton(*args, check=False)
    assert done.returncode == 3, done.stdout + done.stderr
    assert done.stderr.startswith("ERROR: "), done.stderr
    return done.stderr


# -- https --------------------------------------------------------------------


@pytest.fixture
def https_server(database_url: str, tmp_path: Path, authorities: Authorities) -> Iterator[Server]:
    tls = ServeTls(authorities.server.cert, authorities.server.key, authorities.ours.cert)
    running = start_server(database_url, tmp_path, embedded=True, tls=tls, executor="fake")
    yield running
    stop(running.processes)


def test_https_with_the_ca_works_and_links_are_https(https_server: Server) -> None:
    assert https_server.url.startswith("https://")
    https_server.craton("cloud-create", "--name", "tls-cloud")
    listed = https_server.json("cloud-list")
    assert [r["name"] for r in listed] == ["tls-cloud"]  # type: ignore[index, union-attr]
    answer = httpx.get(
        f"{https_server.url}/v1/clouds",
        headers={"X-Auth-Token": https_server.env["OS_PASSWORD"]},
        verify=ssl.create_default_context(cafile=https_server.env["OS_CACERT"]),
    )
    assert answer.json()["links"][0]["href"].startswith("https://127.0.0.1:")


def test_the_cli_without_the_ca_says_the_certificate_is_not_trusted(
    https_server: Server,
) -> None:
    stderr = refused(with_env(https_server, OS_CACERT=None), "host-list")
    assert "CERTIFICATE_VERIFY_FAILED" in stderr
    assert "--os-cacert (OS_CACERT)" in stderr


def test_the_cli_with_another_ca_is_refused_and_insecure_warns(
    https_server: Server, authorities: Authorities
) -> None:
    other = with_env(https_server, OS_CACERT=str(authorities.other.cert))
    assert "not trusted" in refused(other, "host-list")
    done = other.craton("--insecure", "host-list")
    assert "WARNING: --insecure" in done.stderr


def test_plain_http_to_the_https_port_is_told_to_say_https(https_server: Server) -> None:
    plain = with_env(https_server, CRATON_URL=https_server.url.replace("https:", "http:"))
    assert "https://" in refused(plain, "host-list")


def test_bad_ca_files_are_named_before_any_request(
    https_server: Server, tmp_path: Path, authorities: Authorities
) -> None:
    missing = https_server.craton(
        "--os-cacert", str(tmp_path / "nope.pem"), "host-list", check=False
    )
    assert missing.returncode == 2
    assert missing.stderr.strip().endswith("nope.pem: No such file or directory")
    not_pem = https_server.craton(
        "--os-cacert", str(authorities.server.key), "host-list", check=False
    )
    assert not_pem.returncode == 2
    assert "no PEM certificate in it" in not_pem.stderr


# -- mutual TLS ---------------------------------------------------------------


@pytest.fixture
def mutual_server(database_url: str, tmp_path: Path, authorities: Authorities) -> Iterator[Server]:
    """Mutual TLS, and a certificate's CN names its user; the CLI presents root's."""
    yield from serve_mutual(database_url, tmp_path, authorities, tls_client_user_field="CN")


def test_a_good_client_certificate_and_a_token_work(mutual_server: Server) -> None:
    mutual_server.craton("cloud-create", "--name", "mtls")
    assert mutual_server.json("cloud-list")[0]["name"] == "mtls"  # type: ignore[index]


def test_a_client_without_a_certificate_is_refused(mutual_server: Server) -> None:
    bare = with_env(mutual_server, OS_CERT=None, OS_KEY=None)
    assert "--os-cert and --os-key" in refused(bare, "host-list")
    with pytest.raises(httpx.TransportError):
        trusting = ssl.create_default_context(cafile=mutual_server.env["OS_CACERT"])
        httpx.get(f"{mutual_server.url}/healthz", verify=trusting)


def test_a_certificate_from_another_ca_is_refused(
    mutual_server: Server, authorities: Authorities
) -> None:
    stranger = authorities.other.issue("root")
    other = with_env(mutual_server, OS_CERT=str(stranger.cert), OS_KEY=str(stranger.key))
    assert "not accept this client certificate" in refused(other, "host-list")


def test_a_certificate_names_its_user_when_no_token_is_sent(
    mutual_server: Server, authorities: Authorities
) -> None:
    mutual_server.craton("user-create", "--name", "alice", "--role", "viewer")
    alice = authorities.ours.issue("alice")
    as_alice = with_env(
        mutual_server,
        OS_CERT=str(alice.cert),
        OS_KEY=str(alice.key),
        OS_USERNAME=None,
        OS_PASSWORD=None,
    )
    assert as_alice.json("host-list") == []
    refused(as_alice, "cloud-create", "--name", "c")  # a viewer's certificate: a viewer
    events = mutual_server.json("audit-list", "--user", "alice")
    assert events, "the refused call is in the audit trail as alice's"
    # A token, when sent, decides who the request is: root's token over alice's certificate.
    with_token = with_env(as_alice, OS_PASSWORD=mutual_server.env["OS_PASSWORD"])
    with_token.craton("cloud-create", "--name", "by-root")
    # A user name that is not the certificate's, or a certificate of no user, is refused.
    assert "another user" in refused(with_env(as_alice, OS_USERNAME="root"), "host-list")
    nobody = authorities.ours.issue("nobody")
    assert "no active user" in refused(
        with_env(as_alice, OS_CERT=str(nobody.cert), OS_KEY=str(nobody.key)), "host-list"
    )


@pytest.fixture
def mutual_workers_server(
    database_url: str, tmp_path: Path, authorities: Authorities
) -> Iterator[Server]:
    """Mutual TLS in two API worker processes, certificates naming no user."""
    yield from serve_mutual(database_url, tmp_path, authorities, workers="2")


def test_without_the_mapping_a_certificate_still_needs_a_token(
    mutual_workers_server: Server,
) -> None:
    for _ in range(4):  # either worker
        mutual_workers_server.craton("host-list")
    tokenless = with_env(mutual_workers_server, OS_USERNAME=None, OS_PASSWORD=None)
    assert "OS_PASSWORD" in refused(tokenless, "host-list")


# -- bad files stop serve at its start ----------------------------------------


def serve_with(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    port = free_port()
    environ = {
        "PATH": "/usr/bin:/bin",
        "CRATON_WF_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
        "CRATON_WF_DATA_DIR": str(tmp_path / "data"),
        "CRATON_WF_API_PORT": str(port),
        "CRATON_WF_EXECUTOR": "fake",
        **env,
    }
    done = subprocess.run(
        [sys.executable, "-m", "craton_wf.cli", "serve", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    with socket.socket() as probe:  # it never listened
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    return done


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (("missing.crt", "server.key"), "TLS certificate {dir}/missing.crt: No such file"),
        (("server.key", "server.key"), "TLS certificate {dir}/server.key: no PEM certificate"),
        (("server.crt", "server.crt"), "TLS key {dir}/server.crt: not a PEM private key"),
        (
            ("server.crt", "client.key"),
            "TLS key {dir}/client.key is not the key of the certificate",
        ),
    ],
)
def test_a_bad_file_stops_serve_at_its_start(
    tmp_path: Path, files: tuple[str, str], message: str
) -> None:
    ca = make_ca(tmp_path, "start")
    server, client = ca.issue("localhost", server=True), ca.issue("someone")
    (tmp_path / "server.crt").write_bytes(server.cert.read_bytes())
    (tmp_path / "server.key").write_bytes(server.key.read_bytes())
    (tmp_path / "client.key").write_bytes(client.key.read_bytes())
    cert, key = (str(tmp_path / name) for name in files)
    done = serve_with(tmp_path, "--tls-cert", cert, "--tls-key", key)
    assert done.returncode == 1
    assert f"ERROR: {message.format(dir=tmp_path)}" in done.stderr, done.stderr


def test_a_bad_client_ca_or_a_lone_mapping_stops_serve(tmp_path: Path) -> None:
    ca = make_ca(tmp_path, "start")
    server = ca.issue("localhost", server=True)
    tls = ["--tls-cert", str(server.cert), "--tls-key", str(server.key)]
    done = serve_with(tmp_path, *tls, "--tls-client-ca", str(server.key))
    assert done.returncode == 1
    assert f"ERROR: TLS client CA {server.key}: no PEM certificate in it" in done.stderr
    done = serve_with(tmp_path, *tls, CRATON_WF_TLS_CLIENT_USER_FIELD="CN")
    assert done.returncode == 1
    assert "CRATON_WF_TLS_CLIENT_USER_FIELD needs a TLS client CA" in done.stderr
    done = serve_with(tmp_path, "--tls-cert", str(server.cert))
    assert done.returncode == 1
    assert "a TLS certificate and its key go together" in done.stderr
    assert done.stderr.count("ERROR:") == 1
