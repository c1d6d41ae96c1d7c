"""Certificates made at test time: self-signed RDP hosts, CAs, intermediates and leaves.

Keys are generated once per (type, size, slot) and reused, so a test file stays fast;
ask for another ``slot`` when a test needs a key that differs from the others.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
RDP_EKU = x509.ObjectIdentifier("1.3.6.1.4.1.311.54.1.2")
SERVER_AUTH = x509.oid.ExtendedKeyUsageOID.SERVER_AUTH
CLIENT_AUTH = x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH


@functools.cache
def rsa_key(bits: int = 2048, slot: int = 0) -> rsa.RSAPrivateKey:
    del slot  # only part of the cache key
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@functools.cache
def ec_key(slot: int = 0) -> ec.EllipticCurvePrivateKey:
    del slot
    return ec.generate_private_key(ec.SECP256R1())


@functools.cache
def ed25519_key(slot: int = 0) -> ed25519.Ed25519PrivateKey:
    del slot
    return ed25519.Ed25519PrivateKey.generate()


@dataclass(frozen=True)
class Issued:
    """A certificate and the key that signs for its subject."""

    cert: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = []
    if organization is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def issue(
    common_name: str,
    *,
    issuer: Issued | None = None,
    key: CertificateIssuerPrivateKeyTypes | None = None,
    subject: x509.Name | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    days: int = 180,
    dns: Sequence[str] = (),
    ips: Sequence[str] = (),
    eku: Sequence[x509.ObjectIdentifier] | None = (SERVER_AUTH,),
    ca: bool = False,
    path_length: int | None = None,
    hash_algorithm: hashes.HashAlgorithm | None = None,
    crl_urls: Sequence[str] = (),
    ocsp_urls: Sequence[str] = (),
    ca_issuers_urls: Sequence[str] = (),
    serial: int | None = None,
) -> Issued:
    """Make a certificate; self-signed unless *issuer* is given. ``eku=None``: no EKU."""
    key = key if key is not None else rsa_key()
    subject = subject if subject is not None else name(common_name)
    start = not_before if not_before is not None else NOW - dt.timedelta(days=1)
    end = not_after if not_after is not None else start + dt.timedelta(days=days)
    signer_key = issuer.key if issuer is not None else key
    issuer_name = issuer.cert.subject if issuer is not None else subject
    if hash_algorithm is None and not isinstance(signer_key, ed25519.Ed25519PrivateKey):
        hash_algorithm = hashes.SHA256()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())  # type: ignore[arg-type]
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
    )
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if eku is not None and not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    if ca:
        builder = builder.add_extension(
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
    if crl_urls:
        builder = builder.add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        full_name=[x509.UniformResourceIdentifier(u) for u in crl_urls],
                        relative_name=None,
                        reasons=None,
                        crl_issuer=None,
                    )
                ]
            ),
            critical=False,
        )
    access = [
        x509.AccessDescription(
            AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(u)
        )
        for u in ocsp_urls
    ] + [
        x509.AccessDescription(
            AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(u)
        )
        for u in ca_issuers_urls
    ]
    if access:
        builder = builder.add_extension(x509.AuthorityInformationAccess(access), critical=False)
    return Issued(builder.sign(signer_key, hash_algorithm), key)


@dataclass(frozen=True)
class Hierarchy:
    root: Issued
    intermediate: Issued
    leaf: Issued


def hierarchy(
    host: str = "rdp01.example.test",
    *,
    slot: int = 0,
    leaf_hash: hashes.HashAlgorithm | None = None,
    ca_issuers_url: str = "http://127.0.0.1:9/intermediate.cer",
) -> Hierarchy:
    """Root CA → intermediate CA → RDP host leaf with serverAuth and a DNS SAN."""
    root = issue(
        f"Test Root {slot}", key=rsa_key(2048, 100 + slot), ca=True, days=3650, subject=None
    )
    intermediate = issue(
        f"Test Issuing CA {slot}",
        issuer=root,
        key=rsa_key(2048, 200 + slot),
        ca=True,
        path_length=0,
        days=1825,
    )
    leaf = issue(
        host,
        issuer=intermediate,
        key=rsa_key(2048, 300 + slot),
        dns=[host],
        eku=[SERVER_AUTH, RDP_EKU],
        hash_algorithm=leaf_hash,
        ca_issuers_urls=[ca_issuers_url],
    )
    return Hierarchy(root, intermediate, leaf)


_SHA256_WITH_RSA = bytes.fromhex("300d06092a864886f70d01010b0500")
_RSA_ALGORITHMS = {
    "sha1": bytes.fromhex("300d06092a864886f70d0101050500"),
    "md5": bytes.fromhex("300d06092a864886f70d0101040500"),
    "sha256": _SHA256_WITH_RSA,
}


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


#: ecdsa-with-SHA256's AlgorithmIdentifier (RFC 5758), to label an RSA signature wrongly.
ECDSA_WITH_SHA256_LABEL = bytes.fromhex("300a06082a8648ce3d040302")


def resign_rsa(
    cert: x509.Certificate,
    signer: rsa.RSAPrivateKey,
    hash_name: str,
    *,
    label: bytes | None = None,
) -> x509.Certificate:
    """Re-sign an RSA/SHA-256 certificate with SHA-1 or MD5, which cryptography will not sign.

    Old Windows hosts still present such certificates, so the judging code must see them.
    With *label*, the signature (PKCS#1 v1.5 with *hash_name*, which may be "sha256" then)
    carries that AlgorithmIdentifier instead of its own.
    """
    algorithm = label or _RSA_ALGORITHMS[hash_name]
    tbs = cert.tbs_certificate_bytes
    assert tbs.count(_SHA256_WITH_RSA) == 1
    header = 2 + (tbs[1] & 0x7F if tbs[1] & 0x80 else 0)
    body = tbs[header:].replace(_SHA256_WITH_RSA, algorithm)
    tbs = b"\x30" + _der_length(len(body)) + body  # a label of another length: a new header
    hash_algorithm: hashes.HashAlgorithm = {
        "sha1": hashes.SHA1(),
        "md5": hashes.MD5(),
        "sha256": hashes.SHA256(),
    }[hash_name]
    signature = signer.sign(tbs, padding.PKCS1v15(), hash_algorithm)
    bit_string = b"\x03" + _der_length(len(signature) + 1) + b"\x00" + signature
    body = tbs + algorithm + bit_string
    return x509.load_der_x509_certificate(b"\x30" + _der_length(len(body)) + body)
