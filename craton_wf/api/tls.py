"""The API over https, and mutual TLS: files checked at start, client certificates.

``craton-wf serve --tls-cert FILE --tls-key FILE`` serves https with uvicorn's
own TLS (``ssl_certfile``, ``ssl_keyfile``); ``--tls-client-ca FILE`` adds
``ssl_ca_certs`` and ``CERT_REQUIRED``: the handshake of a client without a
certificate signed by one of those CAs fails, before any request is read.

Files are checked by :func:`uvicorn_tls_options` before the service listens,
one by one, so that a bad one stops ``serve`` with a message naming the file
and what is wrong with it (missing, not PEM, an encrypted key, a key of
another certificate) rather than OpenSSL's ``[SSL] PEM lib``.

A client certificate reaches the application as the ASGI TLS extension
(``scope["extensions"]["tls"]``, https://asgi.readthedocs.io/en/latest/specs/tls.html),
which uvicorn does not fill in: :class:`TlsHttpProtocol`, uvicorn's own HTTP
protocol class, reads the verified peer certificate once per connection, when
the handshake is done, and wraps the connection's app so that every request
on it carries the extension. Python's ``ssl`` gives only the leaf certificate
(the chain it verified is there from Python 3.13), so ``client_cert_chain``
holds that one; ``server_cert`` and ``client_cert_error`` are None (a
certificate that fails verification never gets a connection at all).

The certificate names a user only when the operator says which field of its
subject does (``tls_client_user_field``), and only for a request that sends
no token (:func:`certificate_user_name`; ``api.deps`` and
``services.auth.authenticate_user`` do the rest).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from starlette.types import ASGIApp, Receive, Scope, Send

from craton_wf.errors import TlsSetupError
from craton_wf.settings import Settings

if TYPE_CHECKING:
    from uvicorn.protocols.http.h11_impl import H11Protocol as _HttpProtocol
else:  # the class uvicorn's "auto" picks: httptools when installed, else h11
    from uvicorn.protocols.http.auto import AutoHTTPProtocol as _HttpProtocol

log = logging.getLogger(__name__)

# The TLS extension's tls_version: the protocol's number on the wire.
_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}

#: The subject fields ``tls_client_user_field`` may name.
USER_FIELDS = {
    "CN": NameOID.COMMON_NAME,
    "UID": NameOID.USER_ID,
    "emailAddress": NameOID.EMAIL_ADDRESS,
}


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TlsSetupError(f"{what} {path}: {exc.strerror or exc}") from exc


def _certificates(path: Path, what: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(_read(path, what))
    except ValueError as exc:
        raise TlsSetupError(
            f"{what} {path}: no PEM certificate in it (-----BEGIN CERTIFICATE-----)"
        ) from exc


def _private_key(path: Path) -> Any:
    try:
        return serialization.load_pem_private_key(_read(path, "TLS key"), password=None)
    except TypeError as exc:  # cryptography: encrypted, and no password given
        raise TlsSetupError(
            f"TLS key {path}: the key is encrypted; serve needs it unencrypted "
            "(openssl pkey -in KEY -out PLAIN)"
        ) from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise TlsSetupError(f"TLS key {path}: not a PEM private key") from exc


def _public(key: Any) -> bytes:
    return bytes(
        key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _check_settings_go_together(settings: Settings) -> None:
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise TlsSetupError("a TLS certificate and its key go together: give both")
    if settings.tls_client_ca is not None and settings.tls_cert is None:
        raise TlsSetupError("a TLS client CA needs the service's own certificate and key")
    if settings.tls_client_user_field is not None and settings.tls_client_ca is None:
        raise TlsSetupError(
            "CRATON_WF_TLS_CLIENT_USER_FIELD needs a TLS client CA (--tls-client-ca): only "
            "a certificate the service verified may name a user"
        )


def check_tls_files(settings: Settings) -> None:
    """Raise :class:`TlsSetupError` naming the first TLS file that cannot be used, and
    why; log a warning for a certificate past its end (clients will refuse it)."""
    _check_settings_go_together(settings)
    if settings.tls_cert is None or settings.tls_key is None:
        return
    chain = _certificates(settings.tls_cert, "TLS certificate")
    key = _private_key(settings.tls_key)
    if _public(key.public_key()) != _public(chain[0].public_key()):
        raise TlsSetupError(
            f"TLS key {settings.tls_key} is not the key of the certificate {settings.tls_cert} "
            f"({chain[0].subject.rfc4514_string()})"
        )
    if chain[0].not_valid_after_utc < datetime.now(UTC):
        log.warning(
            "TLS certificate %s expired on %s: clients will refuse it",
            settings.tls_cert,
            chain[0].not_valid_after_utc.isoformat(),
        )
    if settings.tls_client_ca is not None:
        _certificates(settings.tls_client_ca, "TLS client CA")
    if settings.tls_task_ca is not None:
        _certificates(settings.tls_task_ca, "TLS task CA")
    # What uvicorn will do with them, now, while the error can still name the file.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    except ssl.SSLError as exc:
        raise TlsSetupError(f"TLS certificate {settings.tls_cert}: {exc.reason or exc}") from exc
    if settings.tls_client_ca is not None:
        try:
            context.load_verify_locations(settings.tls_client_ca)
        except ssl.SSLError as exc:
            raise TlsSetupError(
                f"TLS client CA {settings.tls_client_ca}: {exc.reason or exc}"
            ) from exc


def uvicorn_tls_options(settings: Settings) -> dict[str, Any]:
    """``uvicorn.run``'s TLS arguments for these settings (``{}`` for plain http),
    after :func:`check_tls_files`."""
    check_tls_files(settings)
    if not settings.serves_tls:
        return {}
    options: dict[str, Any] = {
        "ssl_certfile": str(settings.tls_cert),
        "ssl_keyfile": str(settings.tls_key),
    }
    if settings.tls_client_ca is not None:
        if settings.public_url is None:
            log.warning(
                "mutual TLS: tasks reach the API at CRATON_URL without a client certificate, "
                "so their calls are refused; set CRATON_WF_PUBLIC_URL to an endpoint of the "
                "API that does not ask for one if tasks call the API"
            )
        options |= {
            "ssl_ca_certs": str(settings.tls_client_ca),
            "ssl_cert_reqs": ssl.CERT_REQUIRED,
            "http": TlsHttpProtocol,
        }
    return options


def tls_extension(ssl_object: ssl.SSLObject) -> dict[str, Any]:
    """The ASGI TLS extension of one connection, from its finished handshake."""
    der = ssl_object.getpeercert(binary_form=True)
    name = x509.load_der_x509_certificate(der).subject.rfc4514_string() if der else None
    return {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
        "client_cert_name": name,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,
    }


def _with_tls(app: ASGIApp, tls: dict[str, Any]) -> ASGIApp:
    async def app_with_tls(scope: Scope, receive: Receive, send: Send) -> None:
        extensions = scope.get("extensions") or {}
        if "tls" not in extensions:  # a uvicorn that fills it in itself wins
            scope["extensions"] = {**extensions, "tls": tls}
        await app(scope, receive, send)

    return app_with_tls


class TlsHttpProtocol(_HttpProtocol):
    """uvicorn's HTTP protocol, whose requests carry the connection's TLS extension."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.app = _with_tls(self.app, tls_extension(ssl_object))  # type: ignore[arg-type]


def certificate_user_name(scope: Scope, field: str | None) -> str | None:
    """The user name a request's verified client certificate gives, when the operator
    named a subject field for it (``tls_client_user_field``); None otherwise.

    A certificate whose subject holds that field more than once names nobody:
    which of the values would be meant is not for the service to guess.
    """
    if field is None:
        return None
    tls = (scope.get("extensions") or {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or []
    if not chain:
        return None
    subject = x509.load_pem_x509_certificate(chain[0].encode("ascii")).subject
    values = subject.get_attributes_for_oid(USER_FIELDS[field])
    if len(values) != 1:
        return None
    value = values[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")
