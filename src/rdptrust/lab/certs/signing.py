"""Keys, names and signatures of lab certificates, SHA-1 included.

``cryptography`` no longer signs certificates with SHA-1, so for ``sha1`` the
to-be-signed part built by ``cryptography`` gets the sha1WithRSAEncryption algorithm
identifier and is signed with RSA PKCS#1 v1.5 over SHA-1 here; the result loads in
``cryptography`` and OpenSSL like any other certificate.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

from rdptrust.errors import UsageError

#: How far in the past a new certificate starts, so small clock skew does not matter.
BACKDATE = dt.timedelta(minutes=10)

# AlgorithmIdentifier DER (RFC 4055): sha256WithRSAEncryption and sha1WithRSAEncryption.
_SHA256_WITH_RSA = bytes.fromhex("300d06092a864886f70d01010b0500")
_SHA1_WITH_RSA = bytes.fromhex("300d06092a864886f70d0101050500")

SignatureHash = Literal["sha256", "sha1"]


def sha256_fingerprint(cert: x509.Certificate) -> str:
    """The certificate's SHA-256 fingerprint in lowercase hex, no separators."""
    return cert.fingerprint(hashes.SHA256()).hex()


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def new_rsa_key(key_size: int = 2048) -> rsa.RSAPrivateKey:
    """A new RSA key (public exponent 65537)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=key_size)


_key_cache: dict[int, rsa.RSAPrivateKey] = {}


def cached_rsa_key(key_size: int) -> rsa.RSAPrivateKey:
    """An RSA key of *key_size* bits, the same one for every call in this process."""
    key = _key_cache.get(key_size)
    if key is None:
        key = _key_cache[key_size] = new_rsa_key(key_size)
    return key


def x509_name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def _der_header(data: bytes | bytearray, offset: int) -> tuple[int, int]:
    """Return (header length, content length) of the DER element at *offset*."""
    first = data[offset + 1]
    if first < 0x80:
        return 2, first
    count = first & 0x7F
    return 2 + count, int.from_bytes(data[offset + 2 : offset + 2 + count], "big")


def _sign_sha1(builder: x509.CertificateBuilder, key: CertificateIssuerPrivateKeyTypes) -> bytes:
    """Sign *builder* with sha1WithRSAEncryption, returning the certificate DER."""
    if not isinstance(key, rsa.RSAPrivateKey):
        raise UsageError("a SHA-1 signed lab certificate needs an RSA issuer key")
    tbs = bytearray(builder.sign(key, hashes.SHA256()).tbs_certificate_bytes)
    # TBSCertificate: SEQUENCE { [0] version, serialNumber, signature AlgorithmIdentifier, ...}
    offset, _ = _der_header(tbs, 0)
    for _ in range(2):
        header, length = _der_header(tbs, offset)
        offset += header + length
    end = offset + len(_SHA256_WITH_RSA)
    if bytes(tbs[offset:end]) != _SHA256_WITH_RSA:
        raise UsageError("unexpected TBSCertificate layout; cannot make a SHA-1 certificate")
    tbs[offset:end] = _SHA1_WITH_RSA
    signature = key.sign(bytes(tbs), padding.PKCS1v15(), hashes.SHA1())
    return _der(0x30, bytes(tbs) + _SHA1_WITH_RSA + _der(0x03, b"\x00" + signature))


def _der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def sign_certificate(
    builder: x509.CertificateBuilder,
    key: CertificateIssuerPrivateKeyTypes,
    signature_hash: SignatureHash,
) -> x509.Certificate:
    if signature_hash == "sha1":
        return x509.load_der_x509_certificate(_sign_sha1(builder, key))
    return builder.sign(key, hashes.SHA256())
