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
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID

from rdptrust.errors import UsageError
from rdptrust.protocol import der

#: How far in the past a new certificate starts, so small clock skew does not matter.
BACKDATE = dt.timedelta(minutes=10)

# AlgorithmIdentifier DER (RFC 4055): sha256WithRSAEncryption and sha1WithRSAEncryption.
_SHA256_WITH_RSA = der.sequence(
    der.object_identifier(SignatureAlgorithmOID.RSA_WITH_SHA256.dotted_string), der.NULL
)
_SHA1_WITH_RSA = der.sequence(
    der.object_identifier(SignatureAlgorithmOID.RSA_WITH_SHA1.dotted_string), der.NULL
)

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


def _sign_sha1(builder: x509.CertificateBuilder, key: CertificateIssuerPrivateKeyTypes) -> bytes:
    """Sign *builder* with sha1WithRSAEncryption, returning the certificate DER."""
    if not isinstance(key, rsa.RSAPrivateKey):
        raise UsageError("a SHA-1 signed lab certificate needs an RSA issuer key")
    tbs = builder.sign(key, hashes.SHA256()).tbs_certificate_bytes
    # TBSCertificate: SEQUENCE { [0] version, serialNumber, signature AlgorithmIdentifier, ...}
    outer = der.read_element(tbs, 0, len(tbs), what="TBSCertificate")
    fields = list(der.children(tbs, outer.start, outer.end, what="TBSCertificate field"))
    if len(fields) < 3 or fields[2].encoding(tbs) != _SHA256_WITH_RSA:
        raise UsageError("unexpected TBSCertificate layout; cannot make a SHA-1 certificate")
    # Both identifiers are 15 bytes long, so no length around them changes.
    algorithm = fields[2]
    tbs = tbs[: algorithm.offset] + _SHA1_WITH_RSA + tbs[algorithm.end :]
    signature = key.sign(tbs, padding.PKCS1v15(), hashes.SHA1())
    return der.sequence(tbs, _SHA1_WITH_RSA, der.bit_string(signature))


def sign_certificate(
    builder: x509.CertificateBuilder,
    key: CertificateIssuerPrivateKeyTypes,
    signature_hash: SignatureHash,
) -> x509.Certificate:
    if signature_hash == "sha1":
        return x509.load_der_x509_certificate(_sign_sha1(builder, key))
    return builder.sign(key, hashes.SHA256())
