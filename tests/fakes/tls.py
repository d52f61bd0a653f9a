"""Throw-away TLS material for loopback fakes: a private CA plus a server certificate.

Real clients (requests, httpx) are pointed at a fake with ``verify=<ca_path>``. The chain is a
proper CA + leaf (CA:TRUE on the CA, SAN ``127.0.0.1``/``localhost``/``::1`` and serverAuth on the
leaf, key identifiers on both), so it also passes OpenSSL's strict X.509 checks (Python 3.13 turns
``VERIFY_X509_STRICT`` on by default).

Keys are EC P-256, so generation takes milliseconds. The ``cryptography`` package is used when it
is importable (it is a locked dependency through google-auth); otherwise the ``openssl`` command
line does the same job.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class TLSFiles:
    """Paths of the generated PEM files."""

    ca_path: Path  # give this to clients: verify=ca_path
    cert_path: Path  # server certificate (leaf)
    key_path: Path  # server private key

    def server_context(self) -> ssl.SSLContext:
        """An SSLContext for a server presenting the leaf certificate."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert_path, self.key_path)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        """An SSLContext for a client that trusts only the private CA."""
        return ssl.create_default_context(cafile=str(self.ca_path))


def make_tls_files(
    directory: Path | str,
    hosts: tuple[str, ...] = DEFAULT_HOSTS,
    *,
    days: int = 30,
    backend: str = "auto",
) -> TLSFiles:
    """Write ``ca.pem``, ``server.pem`` and ``server.key`` into ``directory``.

    ``backend`` is ``"auto"`` (cryptography if importable, else openssl), ``"cryptography"``
    or ``"openssl"``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = TLSFiles(
        ca_path=directory / "ca.pem",
        cert_path=directory / "server.pem",
        key_path=directory / "server.key",
    )
    if backend == "auto":
        backend = "cryptography" if _have_cryptography() else "openssl"
    if backend == "cryptography":
        _make_with_cryptography(files, hosts, days)
    elif backend == "openssl":
        _make_with_openssl(files, directory, hosts, days)
    else:
        raise ValueError(f"unknown TLS backend {backend!r}")
    files.key_path.chmod(0o600)
    return files


def _have_cryptography() -> bool:
    try:
        import cryptography.x509  # noqa: F401
    except ImportError:
        return False
    return True


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _make_with_cryptography(files: TLSFiles, hosts: tuple[str, ...], days: int) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.timezone.utc)
    not_before = now - dt.timedelta(days=1)
    not_after = now + dt.timedelta(days=days)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Jiritsu test fake CA")])
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
                digital_signature=False,
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
    sans: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address(h)) if _is_ip(h) else x509.DNSName(h) for h in hosts
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
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
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    files.ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _openssl(*args: str, cwd: Path) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        raise RuntimeError("neither the cryptography package nor the openssl command is available")
    proc = subprocess.run(
        [exe, *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {proc.stderr.strip()}")


def _make_with_openssl(files: TLSFiles, directory: Path, hosts: tuple[str, ...], days: int) -> None:
    ca_key = directory / "ca.key"
    csr = directory / "server.csr"
    ext = directory / "server.ext"
    san = ",".join(f"IP:{h}" if _is_ip(h) else f"DNS:{h}" for h in hosts)
    ec_args = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        "req",
        "-x509",
        *ec_args,
        "-keyout",
        str(ca_key),
        "-out",
        str(files.ca_path),
        "-days",
        str(days),
        "-subj",
        "/CN=Jiritsu test fake CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE,pathlen:0",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-addext",
        "subjectKeyIdentifier=hash",
        cwd=directory,
    )
    _openssl(
        "req",
        *ec_args,
        "-keyout",
        str(files.key_path),
        "-out",
        str(csr),
        "-subj",
        f"/CN={hosts[0]}",
        cwd=directory,
    )
    ext.write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        f"subjectAltName={san}\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid:always\n"
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(files.ca_path),
        "-CAkey",
        str(ca_key),
        "-set_serial",
        str(int.from_bytes(os.urandom(8), "big")),
        "-out",
        str(files.cert_path),
        "-days",
        str(days),
        "-sha256",
        "-extfile",
        str(ext),
        cwd=directory,
    )
    for leftover in (ca_key, csr, ext):
        leftover.unlink(missing_ok=True)
