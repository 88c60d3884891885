"""TLS of the client: the CAs a server's certificate is checked by, and a client certificate.

:class:`~cratonclient._session.Session` takes ``verify`` and ``cert`` as
requests and older httpx spelled them: ``verify`` is ``True`` (httpx's
default trust: certifi's CAs, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``),
``False`` (no check at all), a PEM CA file or a directory of them, or an
``ssl.SSLContext``; ``cert`` is a PEM file holding a certificate and its key,
or a ``(certificate, key)`` pair. httpx now wants one ``SSLContext`` instead
(it warns about file names), so it is made here, where a file that cannot be
used raises :class:`~cratonclient.exceptions.BadTLSFile` naming the file and
what is wrong with it, before any connection is tried.
"""

from __future__ import annotations

import os
import ssl

import httpx

from .exceptions import BadTLSFile

#: What ``verify`` may be.
Verify = bool | str | ssl.SSLContext
#: What ``cert`` may be: one PEM file with certificate and key, or the two files.
Cert = str | tuple[str, str]


def ssl_context(verify: Verify = True, cert: Cert | None = None) -> ssl.SSLContext | bool:
    """What httpx's ``verify`` takes for these settings."""
    if cert is None and not isinstance(verify, str):
        return verify
    if isinstance(verify, ssl.SSLContext):
        context = verify
    elif verify is False:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif verify is True:
        context = httpx.create_ssl_context()
    else:
        context = _trusting(verify)
    if cert is not None:
        certificate, key = (cert, None) if isinstance(cert, str) else cert
        _load_client_certificate(context, certificate, key)
    return context


def _readable(path: str, what: str) -> None:
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise BadTLSFile(f"{what} {path}: {exc.strerror or exc}") from exc


def _trusting(ca: str) -> ssl.SSLContext:
    if os.path.isdir(ca):
        return ssl.create_default_context(capath=ca)
    _readable(ca, "CA certificate file")
    try:
        return ssl.create_default_context(cafile=ca)
    except ssl.SSLError as exc:
        raise BadTLSFile(
            f"CA certificate file {ca}: no PEM certificate in it ({exc.reason or exc})"
        ) from exc


def _no_password() -> str:
    # Without a callback OpenSSL would prompt on the terminal for the key's password.
    raise BadTLSFile("is encrypted; give an unencrypted key")


def _load_client_certificate(context: ssl.SSLContext, certificate: str, key: str | None) -> None:
    _readable(certificate, "client certificate file")
    if key is not None:
        _readable(key, "client key file")
    try:
        context.load_cert_chain(certificate, key, password=_no_password)
    except BadTLSFile as exc:
        raise BadTLSFile(f"client key {key or certificate} {exc.message}") from exc
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            message = f"client key {key} is not the key of the certificate {certificate}"
        elif key is None:
            message = (
                f"client certificate file {certificate}: no PEM certificate and key in it "
                "(give the key apart if it is in another file)"
            )
        else:
            message = (
                f"client certificate {certificate} or key {key}: not a PEM certificate and key"
            )
        raise BadTLSFile(message) from exc
