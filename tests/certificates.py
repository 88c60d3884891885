"""Test certificates: a CA of its own per test, and the certificates it signs.

Made with ``cryptography`` (a dependency of the service), as PEM files in a
directory of the test's, so the server, the CLI and httpx read them as an
operator's files.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Issued:
    """A certificate and its key, as PEM files."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class CertificateAuthority:
    name: str
    directory: Path
    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey

    @property
    def cert(self) -> Path:
        return self.directory / f"{self.name}-ca.pem"

    def issue(
        self,
        common_name: str,
        *,
        server: bool = False,
        extra_subject: dict[x509.ObjectIdentifier, str] | None = None,
        valid_days: int = 1,
    ) -> Issued:
        """A leaf certificate: a server's (for localhost and 127.0.0.1) or a client's."""
        key = ec.generate_private_key(ec.SECP256R1())
        attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
        attributes += [x509.NameAttribute(oid, v) for oid, v in (extra_subject or {}).items()]
        now = datetime.now(UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attributes))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=valid_days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.private_key.public_key()),
                critical=False,
            )
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.DNSName(common_name),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    ]
                ),
                critical=False,
            )
        certificate = builder.sign(self.private_key, hashes.SHA256())
        stem = self.directory / f"{self.name}-{common_name}"
        return Issued(write_certificate(stem, certificate), write_key(stem, key))


def write_certificate(stem: Path, certificate: x509.Certificate) -> Path:
    path = stem.with_name(stem.name + ".crt")
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


def write_key(stem: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    path = stem.with_name(stem.name + ".key")
    path.touch(mode=0o600)  # readable by its owner only, as libpq and ssh want keys
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def make_ca(directory: Path, name: str = "test") -> CertificateAuthority:
    """A self-signed CA, its certificate written to ``directory/<name>-ca.pem``."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} CA")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    ca = CertificateAuthority(name, directory, certificate, key)
    ca.cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return ca
