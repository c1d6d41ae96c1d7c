"""Certificates the lab's RDP endpoint can present, made at run time with ``cryptography``.

Each :class:`CertKind` models one situation an RDP client meets in the field:

=================  ==========================================================================
kind               what the host presents
=================  ==========================================================================
self-signed        always self-signed, like the certificate Windows makes for RDP: CN = the
                   computer name, RSA 2048, SHA-256, valid six months (182 days) from a few
                   minutes in the past, EKU serverAuth, keyUsage keyEncipherment +
                   dataEncipherment, no SAN. Every call makes a new key, as the six-monthly
                   recreation on Windows does.
ca                 always CA-issued (a new :class:`LabCa` is made when none is given):
                   CN = computer name, SAN DNS computer name and ``<name>.lab.test`` and IP
                   127.0.0.1, EKU serverAuth + Remote Desktop Authentication
                   (1.3.6.1.4.1.311.54.1.2), CRL DP / OCSP / caIssuers from :class:`PkiUrls`.
expired            ended 10 days ago.
not-yet-valid      starts in 30 days.
wrong-name         made for another host (:data:`WRONG_NAME`); with a CA, the SAN holds only
                   that host's names (no IP address), so no name the lab answers on matches.
sha1               signed with SHA-1 (sha1WithRSAEncryption), as older hosts were.
weak-key           a 1024-bit RSA key.
rdp-eku-only       EKU holds only Remote Desktop Authentication.
=================  ==========================================================================

The last six are CA-issued (the ``ca`` profile with the one defining property changed)
when a :class:`LabCa` is given, and Windows-like self-signed (the ``self-signed`` profile
with the one property changed) otherwise.

Keys: CA keys and self-signed host keys are always new. The key of a CA-issued host
certificate made by :func:`make_host_credentials` comes from a per-process cache (one key
per size), since there the issuing CA, not the host key, tells certificates apart; this
keeps test suites fast. :meth:`LabCa.issue` makes a new key unless given one.

``cryptography`` no longer signs certificates with SHA-1, so for ``sha1`` the
to-be-signed part built by ``cryptography`` gets the sha1WithRSAEncryption algorithm
identifier and is signed with RSA PKCS#1 v1.5 over SHA-1 here; the result loads in
``cryptography`` and OpenSSL like any other certificate.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, SignatureAlgorithmOID

from rdptrust.errors import UsageError
from rdptrust.files import PRIVATE_MODE, PUBLIC_MODE, write_atomic
from rdptrust.pki.ca import (
    CA_KEY_USAGE,
    RDP_AUTH_EKU,
    host_certificate_builder,
    with_pki_urls,
)
from rdptrust.protocol import der

#: EKU "Remote Desktop Authentication" (PROTOCOL.md §4).
RDP_AUTHENTICATION_OID = RDP_AUTH_EKU
#: The host a ``wrong-name`` certificate is made for.
WRONG_NAME = "WIN-ELSEWHERE"
#: DNS suffix of the lab's host names in CA-issued certificates.
LAB_DOMAIN = "lab.test"
#: Validity of the Windows self-signed RDP certificate: six months (KB 2915774).
SELF_SIGNED_VALIDITY = dt.timedelta(days=182)
#: How far in the past a new certificate starts, so small clock skew does not matter.
BACKDATE = dt.timedelta(minutes=10)
CA_ISSUED_VALIDITY = dt.timedelta(days=365)
#: Largest PEM file :func:`load_host_credentials` reads.
MAX_PEM_FILE_BYTES = 1 << 20

_COMPUTER_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,62})")
# AlgorithmIdentifier (RFC 4055): sha256WithRSAEncryption and sha1WithRSAEncryption.
_SHA256_WITH_RSA = der.sequence(
    der.object_identifier(SignatureAlgorithmOID.RSA_WITH_SHA256.dotted_string), der.NULL
)
_SHA1_WITH_RSA = der.sequence(
    der.object_identifier(SignatureAlgorithmOID.RSA_WITH_SHA1.dotted_string), der.NULL
)

IssuerName = Literal["root", "intermediate"]
SignatureHash = Literal["sha256", "sha1"]


class CertKind(StrEnum):
    """The host certificates the lab can make (see the module docstring)."""

    SELF_SIGNED = "self-signed"
    CA = "ca"
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    WRONG_NAME = "wrong-name"
    SHA1 = "sha1"
    WEAK_KEY = "weak-key"
    RDP_EKU_ONLY = "rdp-eku-only"


@dataclass(frozen=True)
class PkiUrls:
    """URLs written into lab certificates; ``None`` leaves the extension or entry out.

    ``crl``, ``ocsp`` and ``ca_issuers`` go into the host certificate (issued by the
    intermediate); ``issuer_crl`` and ``root_ca_issuers`` into the intermediate.
    """

    crl: str | None = None
    ocsp: str | None = None
    ca_issuers: str | None = None
    issuer_crl: str | None = None
    root_ca_issuers: str | None = None


@dataclass(frozen=True)
class Revocation:
    """One revoked serial number, as it appears in the CRL and in OCSP answers."""

    serial_number: int
    revoked_at: dt.datetime
    reason: x509.ReasonFlags


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
        chain_path = write_atomic(base / "host-chain.pem", self.chain_pem(), mode=PUBLIC_MODE)
        key_path = write_atomic(base / "host-key.pem", self.key_pem(), mode=PRIVATE_MODE)
        return chain_path, key_path


def sha256_fingerprint(cert: x509.Certificate) -> str:
    """The certificate's SHA-256 fingerprint in lowercase hex, no separators."""
    return cert.fingerprint(hashes.SHA256()).hex()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def new_rsa_key(key_size: int = 2048) -> rsa.RSAPrivateKey:
    """A new RSA key (public exponent 65537)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=key_size)


_key_cache: dict[int, rsa.RSAPrivateKey] = {}


def _cached_rsa_key(key_size: int) -> rsa.RSAPrivateKey:
    key = _key_cache.get(key_size)
    if key is None:
        key = _key_cache[key_size] = new_rsa_key(key_size)
    return key


def _name(common_name: str, organization: str | None = None) -> x509.Name:
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


def _sign(
    builder: x509.CertificateBuilder,
    key: CertificateIssuerPrivateKeyTypes,
    signature_hash: SignatureHash,
) -> x509.Certificate:
    if signature_hash == "sha1":
        return x509.load_der_x509_certificate(_sign_sha1(builder, key))
    return builder.sign(key, hashes.SHA256())


def _check_computer_name(name: str) -> None:
    if not _COMPUTER_NAME.fullmatch(name):
        raise UsageError(
            f"computer name {name!r} is not usable: use 1-63 letters, digits, '-' or '.'"
        )


class LabCa:
    """A root CA and the intermediate that issues host certificates.

    It remembers every serial it issued and every revocation, so its CRLs and the lab's
    OCSP responder answer from the same state.
    """

    def __init__(
        self,
        root: x509.Certificate,
        root_key: rsa.RSAPrivateKey,
        intermediate: x509.Certificate,
        intermediate_key: rsa.RSAPrivateKey,
        urls: PkiUrls | None = None,
    ) -> None:
        self.root = root
        self.root_key = root_key
        self.intermediate = intermediate
        self.intermediate_key = intermediate_key
        #: URLs written into host certificates when :meth:`issue` is given none.
        self.urls = urls or PkiUrls()
        self._issued: dict[int, IssuerName] = {intermediate.serial_number: "root"}
        self._revoked: dict[int, Revocation] = {}
        self._crl_number = 0

    @classmethod
    def generate(
        cls,
        name: str = "rdptrust Lab Root CA",
        urls: PkiUrls | None = None,
        *,
        intermediate_name: str = "rdptrust Lab Issuing CA",
    ) -> LabCa:
        """Make a new root (10 years) and intermediate (5 years), each with a new key.

        ``urls.issuer_crl`` and ``urls.root_ca_issuers`` go into the intermediate.
        """
        urls = urls or PkiUrls()
        now = _now()
        root_key = new_rsa_key()
        intermediate_key = new_rsa_key()
        try:
            root_name = _name(name, "rdptrust lab")
            intermediate_subject = _name(intermediate_name, "rdptrust lab")
        except ValueError as exc:
            raise UsageError(f"bad CA name: {exc}") from exc
        root_ski = x509.SubjectKeyIdentifier.from_public_key(root_key.public_key())
        root = (
            x509.CertificateBuilder()
            .subject_name(root_name)
            .issuer_name(root_name)
            .public_key(root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(CA_KEY_USAGE, critical=True)
            .add_extension(root_ski, critical=False)
            .sign(root_key, hashes.SHA256())
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(intermediate_subject)
            .issuer_name(root_name)
            .public_key(intermediate_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1825))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(CA_KEY_USAGE, critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(intermediate_key.public_key()),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski),
                critical=False,
            )
        )
        builder = with_pki_urls(builder, urls.issuer_crl, None, urls.root_ca_issuers)
        intermediate = builder.sign(root_key, hashes.SHA256())
        return cls(root, root_key, intermediate, intermediate_key, urls)

    # -- issuing -------------------------------------------------------------

    def issue(
        self,
        common_name: str,
        *,
        dns_names: Sequence[str] = (),
        ip_addresses: Sequence[str] = (),
        key: rsa.RSAPrivateKey | None = None,
        key_size: int = 2048,
        not_valid_before: dt.datetime | None = None,
        not_valid_after: dt.datetime | None = None,
        extended_key_usage: Sequence[x509.ObjectIdentifier] | None = (
            ExtendedKeyUsageOID.SERVER_AUTH,
            RDP_AUTHENTICATION_OID,
        ),
        signature_hash: SignatureHash = "sha256",
        urls: PkiUrls | None = None,
        omit_intermediate: bool = False,
    ) -> HostCredentials:
        """Issue a host certificate from the intermediate.

        *key* ``None`` makes a new RSA key of *key_size* bits. Validity defaults to one
        year from 10 minutes ago. *extended_key_usage* ``None`` leaves the EKU out.
        *urls* ``None`` uses the CA's own :attr:`urls`. The chain is (leaf,
        intermediate), or just (leaf,) with *omit_intermediate*, so AIA fetching can be
        tested.
        """
        key = key or new_rsa_key(key_size)
        urls = urls or self.urls
        now = _now()
        start = not_valid_before or now - BACKDATE
        end = not_valid_after or start + CA_ISSUED_VALIDITY
        try:
            subject = _name(common_name)
            alt_names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
            alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
        except ValueError as exc:
            raise UsageError(f"bad host certificate name or address: {exc}") from exc
        builder = host_certificate_builder(
            subject,
            self.intermediate.subject,
            key.public_key(),
            self.intermediate_key.public_key(),
            start,
            end,
            alt_names=alt_names,
            extended_key_usage=extended_key_usage,
            crl=urls.crl,
            ocsp=urls.ocsp,
            ca_issuers=urls.ca_issuers,
        )
        leaf = _sign(builder, self.intermediate_key, signature_hash)
        self._issued[leaf.serial_number] = "intermediate"
        chain = (leaf,) if omit_intermediate else (leaf, self.intermediate)
        return HostCredentials(chain=chain, key=key, sha256=sha256_fingerprint(leaf), ca=self)

    # -- revocation ----------------------------------------------------------

    @property
    def issued_serials(self) -> frozenset[int]:
        """Every serial this CA issued: the intermediate's (by the root) and the hosts'."""
        return frozenset(self._issued)

    def issuer_of(self, serial: int) -> IssuerName | None:
        """Which of the two CAs issued *serial*; ``None`` when neither did."""
        return self._issued.get(serial)

    def revoke(
        self,
        serial: int,
        *,
        reason: x509.ReasonFlags = x509.ReasonFlags.key_compromise,
        revoked_at: dt.datetime | None = None,
    ) -> None:
        """Revoke *serial*; it shows in the issuer's CRL and in OCSP answers from now on."""
        if serial not in self._issued:
            raise UsageError(f"serial {serial:#x} was not issued by this lab CA")
        when = (revoked_at or _now()).astimezone(dt.UTC).replace(microsecond=0)
        self._revoked[serial] = Revocation(serial, when, reason)

    def is_revoked(self, serial: int) -> bool:
        return serial in self._revoked

    def revocation(self, serial: int) -> Revocation | None:
        """The revocation of *serial*; ``None`` when it is not revoked."""
        return self._revoked.get(serial)

    def issuer_certificate(self, issuer: IssuerName) -> x509.Certificate:
        if issuer == "root":
            return self.root
        if issuer == "intermediate":
            return self.intermediate
        raise UsageError(f"unknown issuer {issuer!r}: use 'root' or 'intermediate'")

    def issuer_key(self, issuer: IssuerName) -> rsa.RSAPrivateKey:
        self.issuer_certificate(issuer)
        return self.root_key if issuer == "root" else self.intermediate_key

    def crl(
        self, issuer: IssuerName, *, validity: dt.timedelta = dt.timedelta(days=7)
    ) -> x509.CertificateRevocationList:
        """A new CRL signed by *issuer*, listing the serials it issued that are revoked."""
        cert = self.issuer_certificate(issuer)
        key = self.issuer_key(issuer)
        now = _now()
        self._crl_number += 1
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(cert.subject)
            .last_update(now - dt.timedelta(minutes=1))
            .next_update(now + validity)
            .add_extension(x509.CRLNumber(self._crl_number), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()),
                critical=False,
            )
        )
        for serial, revocation in sorted(self._revoked.items()):
            if self._issued.get(serial) != issuer:
                continue
            entry = (
                x509.RevokedCertificateBuilder()
                .serial_number(serial)
                .revocation_date(revocation.revoked_at)
            )
            if revocation.reason is not x509.ReasonFlags.unspecified:
                entry = entry.add_extension(x509.CRLReason(revocation.reason), critical=False)
            builder = builder.add_revoked_certificate(entry.build())
        return builder.sign(key, hashes.SHA256())

    # -- files ---------------------------------------------------------------

    def write_root_pem(self, path: str | Path) -> Path:
        """Write the root certificate (what a client must trust) as PEM."""
        return write_atomic(path, self.root.public_bytes(serialization.Encoding.PEM))

    def write_intermediate_pem(self, path: str | Path) -> Path:
        return write_atomic(path, self.intermediate.public_bytes(serialization.Encoding.PEM))


def windows_self_signed(
    computer_name: str = "WIN-LAB01",
    *,
    key_size: int = 2048,
    not_valid_before: dt.datetime | None = None,
    not_valid_after: dt.datetime | None = None,
    extended_key_usage: Sequence[x509.ObjectIdentifier] = (ExtendedKeyUsageOID.SERVER_AUTH,),
    signature_hash: SignatureHash = "sha256",
    key: CertificateIssuerPrivateKeyTypes | None = None,
) -> HostCredentials:
    """A self-signed certificate shaped like the one Windows makes for RDP.

    It gets a new key of *key_size* bits unless *key* is given.
    """
    key = key or new_rsa_key(key_size)
    start = not_valid_before or _now() - BACKDATE
    end = not_valid_after or start + SELF_SIGNED_VALIDITY
    try:
        name = _name(computer_name)
    except ValueError as exc:
        raise UsageError(f"bad computer name: {exc}") from exc
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=True,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage(list(extended_key_usage)), critical=False)
    )
    cert = _sign(builder, key, signature_hash)
    return HostCredentials(chain=(cert,), key=key, sha256=sha256_fingerprint(cert))


def make_host_credentials(
    kind: CertKind | str,
    *,
    computer_name: str = "WIN-LAB01",
    ca: LabCa | None = None,
    urls: PkiUrls | None = None,
    omit_intermediate: bool = False,
) -> HostCredentials:
    """Make the host certificate and key of *kind* (see the module docstring).

    *urls* ``None`` uses ``ca.urls``. For ``ca`` without a *ca*, a new :class:`LabCa` is
    made (with *urls*) and returned in :attr:`HostCredentials.ca`.
    """
    try:
        kind = CertKind(kind)
    except ValueError:
        choices = ", ".join(member.value for member in CertKind)
        raise UsageError(f"unknown certificate kind {kind!r}; choose one of {choices}") from None
    _check_computer_name(computer_name)
    now = _now()
    if kind is CertKind.SELF_SIGNED:
        return windows_self_signed(computer_name)
    if kind is CertKind.CA and ca is None:
        ca = LabCa.generate(urls=urls)
    if ca is None:
        return _self_signed_variant(kind, computer_name, now)

    common_name = _other_name(computer_name) if kind is CertKind.WRONG_NAME else computer_name
    dns_names = [common_name, f"{common_name.lower()}.{LAB_DOMAIN}"]
    ip_addresses = [] if kind is CertKind.WRONG_NAME else ["127.0.0.1"]
    start = now - BACKDATE
    end = start + CA_ISSUED_VALIDITY
    if kind is CertKind.EXPIRED:
        start, end = now - dt.timedelta(days=375), now - dt.timedelta(days=10)
    elif kind is CertKind.NOT_YET_VALID:
        start, end = now + dt.timedelta(days=30), now + dt.timedelta(days=395)
    eku: tuple[x509.ObjectIdentifier, ...] = (
        (RDP_AUTHENTICATION_OID,)
        if kind is CertKind.RDP_EKU_ONLY
        else (ExtendedKeyUsageOID.SERVER_AUTH, RDP_AUTHENTICATION_OID)
    )
    key_size = 1024 if kind is CertKind.WEAK_KEY else 2048
    return ca.issue(
        common_name,
        dns_names=dns_names,
        ip_addresses=ip_addresses,
        key=_cached_rsa_key(key_size),
        not_valid_before=start,
        not_valid_after=end,
        extended_key_usage=eku,
        signature_hash="sha1" if kind is CertKind.SHA1 else "sha256",
        urls=urls,
        omit_intermediate=omit_intermediate,
    )


def _other_name(computer_name: str) -> str:
    """The name a ``wrong-name`` certificate carries: never *computer_name*."""
    return WRONG_NAME if computer_name.lower() != WRONG_NAME.lower() else WRONG_NAME + "2"


def _self_signed_variant(kind: CertKind, computer_name: str, now: dt.datetime) -> HostCredentials:
    if kind is CertKind.EXPIRED:
        start = now - SELF_SIGNED_VALIDITY - dt.timedelta(days=10)
        return windows_self_signed(
            computer_name, not_valid_before=start, not_valid_after=start + SELF_SIGNED_VALIDITY
        )
    if kind is CertKind.NOT_YET_VALID:
        return windows_self_signed(computer_name, not_valid_before=now + dt.timedelta(days=30))
    if kind is CertKind.WRONG_NAME:
        return windows_self_signed(_other_name(computer_name))
    if kind is CertKind.SHA1:
        return windows_self_signed(computer_name, signature_hash="sha1")
    if kind is CertKind.WEAK_KEY:
        return windows_self_signed(computer_name, key_size=1024)
    if kind is CertKind.RDP_EKU_ONLY:
        return windows_self_signed(computer_name, extended_key_usage=(RDP_AUTHENTICATION_OID,))
    raise UsageError(f"certificate kind {kind} needs a CA")


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
