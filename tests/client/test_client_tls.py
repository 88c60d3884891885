"""The client's TLS options: files checked before any connection, ``verify`` and
``cert`` as httpx wants them, and what the CLI says when a handshake fails."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from cratonclient import BadTLSFile, Client
from cratonclient._tls import ssl_context
from cratonclient.shell.main import main, tls_hint
from tests.certificates import make_ca


@pytest.fixture
def pki(tmp_path: Path):  # type: ignore[no-untyped-def]
    ca = make_ca(tmp_path)
    return ca, ca.issue("alice"), ca.issue("bob")


def test_verify_and_cert_make_one_ssl_context(pki) -> None:  # type: ignore[no-untyped-def]
    ca, alice, _ = pki
    context = ssl_context(str(ca.cert), (str(alice.cert), str(alice.key)))
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert ssl_context(True, None) is True  # httpx's own default, untouched
    unchecked = ssl_context(False, (str(alice.cert), str(alice.key)))
    assert isinstance(unchecked, ssl.SSLContext) and unchecked.verify_mode == ssl.CERT_NONE
    combined = alice.cert.with_name("combined.pem")
    combined.write_text(alice.cert.read_text() + alice.key.read_text())
    assert isinstance(ssl_context(True, str(combined)), ssl.SSLContext)
    Client("https://craton.test", verify=str(ca.cert), cert=str(combined)).close()


def test_bad_files_are_named_before_any_connection(pki, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ca, alice, bob = pki
    cases = [
        ((str(tmp_path / "nope.pem"), None), f"CA certificate file {tmp_path}/nope.pem: No such"),
        ((str(alice.key), None), f"CA certificate file {alice.key}: no PEM certificate in it"),
        (
            (True, (str(alice.cert), str(bob.key))),
            f"client key {bob.key} is not the key of the certificate {alice.cert}",
        ),
        (
            (True, str(alice.cert)),
            f"client certificate file {alice.cert}: no PEM certificate and key",
        ),
        ((True, (str(alice.cert), str(tmp_path / "k"))), f"client key file {tmp_path}/k: No such"),
    ]
    for (verify, cert), message in cases:
        with pytest.raises(BadTLSFile) as caught:
            ssl_context(verify, cert)
        assert caught.value.message.startswith(message), caught.value.message


def test_an_encrypted_key_is_refused_without_a_prompt(pki, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives import serialization

    _, alice, _ = pki
    key = serialization.load_pem_private_key(alice.key.read_bytes(), password=None)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pw"),
        )
    )
    with pytest.raises(BadTLSFile, match="is encrypted"):
        ssl_context(True, (str(alice.cert), str(encrypted)))


def test_the_cli_says_error_and_exits_2_for_a_file_it_cannot_use(
    pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    ca, alice, _ = pki
    environ = {"CRATON_URL": "https://craton.test"}
    assert main(["--os-cacert", str(tmp_path / "x.pem"), "host-list"], environ=environ) == 2
    assert (
        capsys.readouterr().err
        == f"ERROR: CA certificate file {tmp_path}/x.pem: No such file or directory\n"
    )
    assert main(["--os-key", str(alice.key), "host-list"], environ=environ) == 2
    assert "--os-key (OS_KEY) needs --os-cert (OS_CERT)" in capsys.readouterr().err
    bad_env = {**environ, "OS_CERT": str(alice.cert), "OS_KEY": str(alice.cert)}
    assert main(["host-list"], environ=bad_env) == 2
    assert capsys.readouterr().err.startswith(f"ERROR: client certificate {alice.cert} or key")


@pytest.mark.parametrize(
    ("message", "https", "client_cert", "hint"),
    [
        ("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed", True, False, "--os-cacert"),
        ("[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert", True, False, "--os-cert and"),
        ("[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca", True, True, "not signed by a CA"),
        ("Server disconnected without sending a response.", True, False, "may require a client"),
        ("Server disconnected without sending a response.", True, True, "may not accept this"),
        ("Server disconnected without sending a response.", False, False, "must say https://"),
        ("[SSL: WRONG_VERSION_NUMBER] wrong version number", True, False, "does not speak https"),
        ("[Errno 111] Connection refused", True, False, None),
    ],
)
def test_a_failed_handshake_comes_with_what_to_do(
    message: str, https: bool, client_cert: bool, hint: str | None
) -> None:
    found = tls_hint(message, https=https, client_cert=client_cert)
    assert (found is None) if hint is None else (hint in (found or ""))
