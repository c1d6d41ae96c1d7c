"""What an RDP host serves: its certificate chain and key, made by the lab or loaded."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from rdptrust.errors import UsageError
from rdptrust.files import PRIVATE_MODE, write_atomic
from rdptrust.lab.certs.signing import sha256_fingerprint

if TYPE_CHECKING:
    from rdptrust.lab.certs.ca import LabCa

#: Largest PEM file :func:`load_host_credentials` reads.
MAX_PEM_FILE_BYTES = 1 << 20


@dataclass(frozen=True)
class HostCredentials:
    """What an RDP host serves: its chain (leaf first, as sent) and the leaf's key.

    ``sha256`` is the leaf certificate's SHA-256 fingerprint in lowercase hex.
    ``ca`` is the lab CA that issued the leaf; ``None`` for self-signed or
    user-supplied certificates.
    """

    chain: tuple[x509.Certificate, ...]
    key: CertificateIssuerPrivateKeyTypes
    sha256: str
    ca: LabCa | None = field(default=None, compare=False)

    @property
    def leaf(self) -> x509.Certificate:
        return self.chain[0]

    def chain_pem(self) -> bytes:
        return b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in self.chain)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def write_pem(self, directory: str | Path) -> tuple[Path, Path]:
        """Write ``host-chain.pem`` and ``host-key.pem`` (0600) into *directory*.

        The pair loads with ``ssl.SSLContext.load_cert_chain(chain, key)``. Certificates
        with a 1024-bit key or a SHA-1 signature need OpenSSL security level 0 there
        (``ctx.set_ciphers("DEFAULT:@SECLEVEL=0")`` before loading).
        """
        base = Path(directory)
        chain_path = write_atomic(base / "host-chain.pem", self.chain_pem())
        key_path = write_atomic(base / "host-key.pem", self.key_pem(), mode=PRIVATE_MODE)
        return chain_path, key_path


def _read_limited(path: Path, what: str) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_PEM_FILE_BYTES:
            raise UsageError(f"{what} {path} is {size} bytes; a PEM file this large is not a key")
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc


def load_host_credentials(cert_file: str | Path, key_file: str | Path) -> HostCredentials:
    """Load a user-supplied host certificate chain (PEM, leaf first) and its key (PEM).

    The key must be unencrypted and belong to the first certificate in *cert_file*.
    """
    cert_path, key_path = Path(cert_file), Path(key_file)
    cert_data = _read_limited(cert_path, "certificate file")
    key_data = _read_limited(key_path, "key file")
    try:
        chain = tuple(x509.load_pem_x509_certificates(cert_data))
    except ValueError as exc:
        raise UsageError(
            f"{cert_path} holds no readable PEM certificate (-----BEGIN CERTIFICATE-----): {exc}"
        ) from exc
    try:
        key = serialization.load_pem_private_key(key_data, password=None)
    except TypeError as exc:
        raise UsageError(
            f"{key_path} is an encrypted key; give the key without a password"
        ) from exc
    except ValueError as exc:
        raise UsageError(f"{key_path} holds no readable PEM private key: {exc}") from exc
    except UnsupportedAlgorithm as exc:
        raise UsageError(f"{key_path}: unsupported private key: {exc}") from exc
    if not isinstance(
        key,
        rsa.RSAPrivateKey
        | ec.EllipticCurvePrivateKey
        | ed25519.Ed25519PrivateKey
        | ed448.Ed448PrivateKey
        | dsa.DSAPrivateKey,
    ):
        raise UsageError(f"{key_path} holds a key type that cannot sign a TLS handshake")
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    try:
        leaf_spki = chain[0].public_key().public_bytes(serialization.Encoding.DER, public)
    except UnsupportedAlgorithm as exc:
        raise UsageError(f"{cert_path}: unsupported public key in the certificate: {exc}") from exc
    key_spki = key.public_key().public_bytes(serialization.Encoding.DER, public)
    if leaf_spki != key_spki:
        raise UsageError(
            f"the key in {key_path} does not belong to the first certificate in {cert_path}"
            " (put the host certificate first, then its issuers)"
        )
    return HostCredentials(chain=chain, key=key, sha256=sha256_fingerprint(chain[0]))
