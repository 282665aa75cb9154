"""A throwaway certificate authority for the fake provider servers.

replicate-python only turns ``https:`` output URLs into ``FileOutput`` objects, so the fake
Replicate serves over HTTPS. This module makes, once per process, a CA and a server
certificate for ``127.0.0.1``, ``localhost`` and ``::1`` in a temporary folder (removed
when the process exits), and exposes:

* :func:`ca_bundle_path`: a PEM bundle (the test CA, then the usual public roots) to put
  in ``SSL_CERT_FILE``; httpx, httpx2 and the ``ssl`` module honour it;
* :func:`ca_path`: the test CA alone (faster to load; trusts nothing else);
* :func:`client_ssl_context`: an :class:`ssl.SSLContext` trusting the test CA, to pass as
  ``verify=`` to an httpx client;
* :func:`server_ssl_context`: what the fake servers wrap their sockets with.

Certificates are made with ``trustme`` when it is installed, otherwise directly with
``cryptography`` (what ``trustme`` uses underneath).
"""

from __future__ import annotations

import atexit
import datetime
import ipaddress
import shutil
import ssl
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "IDENTITIES",
    "LocalCA",
    "ca_bundle_path",
    "ca_path",
    "client_ssl_context",
    "local_ca",
    "server_ssl_context",
]

#: The names the server certificate is valid for.
IDENTITIES = ("127.0.0.1", "localhost", "::1")

_lock = threading.Lock()
_cached: LocalCA | None = None


@dataclass(frozen=True)
class LocalCA:
    """Paths of the process's test CA and server certificate (PEM files).

    Attributes:
        directory: The temporary folder holding the files.
        ca_path: The CA certificate alone.
        bundle_path: The CA certificate followed by the public roots (for ``SSL_CERT_FILE``).
        cert_path: The server certificate chain.
        key_path: The server's private key.
    """

    directory: Path
    ca_path: Path
    bundle_path: Path
    cert_path: Path
    key_path: Path


def _write_with_trustme(directory: Path) -> bool:
    """Write the CA and the server certificate with trustme; False if it is not installed."""
    try:
        import trustme  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return False
    ca = trustme.CA(organization_name="tutopanda fake providers")
    leaf = ca.issue_cert(*IDENTITIES)
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    leaf.cert_chain_pems[0].write_to_path(str(directory / "server.pem"))
    for extra in leaf.cert_chain_pems[1:]:
        extra.write_to_path(str(directory / "server.pem"), append=True)
    leaf.private_key_pem.write_to_path(str(directory / "server.key"))
    return True


def _write_with_cryptography(directory: Path) -> None:
    """Write the CA and the server certificate with ``cryptography`` (ECDSA P-256)."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "the fake provider servers need 'trustme' (or 'cryptography') to make their "
            "test TLS certificates; install it"
        ) from exc

    now = datetime.datetime.now(datetime.UTC)
    not_before = now - datetime.timedelta(days=1)
    not_after = now + datetime.timedelta(days=3650)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tutopanda fake providers"),
            x509.NameAttribute(NameOID.COMMON_NAME, "tutopanda fake provider test CA"),
        ]
    )
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
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
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for identity in IDENTITIES:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(identity)))
        except ValueError:
            names.append(x509.DNSName(identity))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca_cert.public_bytes(pem))
    (directory / "server.pem").write_bytes(cert.public_bytes(pem))
    (directory / "server.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def _public_roots() -> bytes:
    """The usual public root certificates (certifi's bundle), or nothing if unavailable."""
    try:
        import certifi
    except ImportError:  # pragma: no cover - certifi comes with httpx
        return b""
    return Path(certifi.where()).read_bytes()


def local_ca() -> LocalCA:
    """The process's test CA and server certificate, made on first use.

    Returns:
        The paths of the PEM files, in a temporary folder removed when the process exits.
    """
    global _cached
    with _lock:
        if _cached is not None and _cached.bundle_path.exists():
            return _cached
        directory = Path(tempfile.mkdtemp(prefix="tutopanda-fake-tls-"))
        atexit.register(shutil.rmtree, directory, True)
        if not _write_with_trustme(directory):
            _write_with_cryptography(directory)
        bundle = directory / "bundle.pem"
        ca_pem = (directory / "ca.pem").read_bytes()
        bundle.write_bytes(ca_pem.rstrip(b"\n") + b"\n" + _public_roots())
        _cached = LocalCA(
            directory=directory,
            ca_path=directory / "ca.pem",
            bundle_path=bundle,
            cert_path=directory / "server.pem",
            key_path=directory / "server.key",
        )
        return _cached


def ca_bundle_path() -> Path:
    """The CA bundle to trust the fakes: the test CA plus the public roots.

    Set it as ``SSL_CERT_FILE`` (httpx, httpx2 and so both official clients honour it), or
    pass it to :func:`ssl.create_default_context` as ``cafile``.
    """
    return local_ca().bundle_path


def ca_path() -> Path:
    """The test CA certificate alone (loads faster than the bundle; trusts only the fakes)."""
    return local_ca().ca_path


def client_ssl_context() -> ssl.SSLContext:
    """An SSL context that trusts the test CA only: ``verify=`` for an httpx client."""
    return ssl.create_default_context(cafile=str(ca_path()))


def server_ssl_context() -> ssl.SSLContext:
    """The server-side SSL context presenting the fake's certificate."""
    ca = local_ca()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(ca.cert_path), str(ca.key_path))
    return context
