"""TLS without a server: which user a certificate names, the task's URL and CA,
and the settings and files ``serve`` checks before it listens."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
from cryptography.x509.oid import NameOID

from craton_wf.api.tls import certificate_user_name, check_tls_files, uvicorn_tls_options
from craton_wf.engine.task_env import api_url, task_ca_pem
from craton_wf.errors import TlsSetupError
from craton_wf.settings import Settings, load_settings
from tests.certificates import make_ca


def scope_with(cert: Path | None) -> dict[str, Any]:
    chain = [cert.read_text()] if cert is not None else []
    return {"type": "http", "extensions": {"tls": {"client_cert_chain": chain}}}


def test_a_certificate_names_a_user_only_by_the_field_the_operator_chose(tmp_path: Path) -> None:
    ca = make_ca(tmp_path)
    alice = ca.issue(
        "alice",
        extra_subject={NameOID.USER_ID: "a1", NameOID.EMAIL_ADDRESS: "alice@example.com"},
    )
    scope = scope_with(alice.cert)
    assert certificate_user_name(scope, None) is None  # mapping off: nobody, whatever it says
    assert certificate_user_name(scope, "CN") == "alice"
    assert certificate_user_name(scope, "UID") == "a1"
    assert certificate_user_name(scope, "emailAddress") == "alice@example.com"
    assert certificate_user_name(scope_with(None), "CN") is None  # no certificate
    assert certificate_user_name({"type": "http"}, "CN") is None  # plain http


def test_a_subject_with_the_field_twice_names_nobody(tmp_path: Path) -> None:
    two = make_ca(tmp_path).issue("alice", extra_subject={NameOID.COMMON_NAME: "root"})
    assert certificate_user_name(scope_with(two.cert), "CN") is None


def test_tasks_get_an_https_url_and_the_ca_text_when_the_api_serves_https(
    settings: Settings, tmp_path: Path
) -> None:
    ca = make_ca(tmp_path)
    served = settings.model_copy(
        update={
            "tls_cert": tmp_path / "s.crt",
            "tls_key": tmp_path / "s.key",
            "tls_task_ca": ca.cert,
        }
    )
    assert api_url(served) == "https://host.docker.internal:7780"
    assert task_ca_pem(served) == ca.cert.read_text()
    assert task_ca_pem(settings) is None
    assert api_url(settings) == "http://host.docker.internal:7780"
    assert not settings.serves_tls and served.serves_tls


def test_an_empty_user_field_means_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRATON_WF_TLS_CLIENT_USER_FIELD", "")
    assert load_settings().tls_client_user_field is None
    monkeypatch.setenv("CRATON_WF_TLS_CLIENT_USER_FIELD", "OU")
    with pytest.raises(ValueError, match="tls_client_user_field"):
        load_settings()


def test_plain_http_needs_no_tls_option(settings: Settings) -> None:
    assert uvicorn_tls_options(settings) == {}


def test_mutual_tls_asks_uvicorn_for_required_client_certificates(
    settings: Settings, tmp_path: Path
) -> None:
    ca = make_ca(tmp_path)
    server = ca.issue("localhost", server=True)
    tls = settings.model_copy(
        update={"tls_cert": server.cert, "tls_key": server.key, "tls_client_ca": ca.cert}
    )
    options = uvicorn_tls_options(tls)
    assert options["ssl_cert_reqs"] == ssl.CERT_REQUIRED
    assert options["ssl_ca_certs"] == str(ca.cert)
    assert options["http"].__name__ == "TlsHttpProtocol"


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"tls_cert": "CERT"}, "a TLS certificate and its key go together"),
        ({"tls_client_ca": "CA"}, "a TLS client CA needs the service's own certificate"),
        (
            {"tls_cert": "CERT", "tls_key": "KEY", "tls_client_user_field": "CN"},
            "CRATON_WF_TLS_CLIENT_USER_FIELD needs a TLS client CA",
        ),
        (
            {"tls_cert": "CERT", "tls_key": "KEY", "tls_task_ca": "MISSING"},
            "TLS task CA {dir}/missing.pem: No such file or directory",
        ),
        (
            {"tls_cert": "CERT", "tls_key": "KEY", "tls_client_ca": "KEY"},
            "TLS client CA {dir}/test-s.key: no PEM certificate in it",
        ),
    ],
)
def test_serve_names_what_is_wrong_before_it_listens(
    settings: Settings, tmp_path: Path, update: dict[str, str], message: str
) -> None:
    server = make_ca(tmp_path).issue("s", server=True)
    files = {
        "CERT": server.cert,
        "KEY": server.key,
        "CA": server.cert,
        "MISSING": tmp_path / "missing.pem",
    }
    bad = settings.model_copy(update={k: files.get(v, v) for k, v in update.items()})
    with pytest.raises(TlsSetupError, match="^" + message.format(dir=tmp_path).replace("(", r"\(")):
        check_tls_files(bad)


def test_the_api_document_declares_certificates_only_when_they_name_users(
    settings: Settings, sessions: Any, tmp_path: Path
) -> None:
    from craton_wf.api.app import create_app

    plain = create_app(settings, sessions).openapi()
    assert "ClientCertificate" not in plain["components"].get("securitySchemes", {})
    mapped = settings.model_copy(
        update={
            "tls_cert": tmp_path / "c",
            "tls_key": tmp_path / "k",
            "tls_client_ca": tmp_path / "ca",
            "tls_client_user_field": "CN",
        }
    )
    document = create_app(mapped, sessions).openapi()
    assert document["components"]["securitySchemes"]["ClientCertificate"]["type"] == "mutualTLS"
    security = document["paths"]["/v1/hosts"]["get"]["security"]
    assert {"ClientCertificate": []} in security
