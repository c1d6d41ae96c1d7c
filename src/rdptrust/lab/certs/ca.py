"""The lab CA: a root and an issuing intermediate, their CRLs and revocation state."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from rdptrust.errors import UsageError
from rdptrust.files import write_atomic
from rdptrust.lab.certs.credentials import HostCredentials
from rdptrust.lab.certs.signing import (
    BACKDATE,
    SignatureHash,
    new_rsa_key,
    now_utc,
    sha256_fingerprint,
    sign_certificate,
    x509_name,
)
from rdptrust.pki.certbuilder import (
    CA_KEY_USAGE,
    RDP_AUTH_EKU,
    host_certificate_builder,
    with_pki_urls,
)

CA_ISSUED_VALIDITY = dt.timedelta(days=365)

IssuerName = Literal["root", "intermediate"]


@dataclass(frozen=True)
class PkiUrls:
    """URLs written into lab certificates; ``None`` leaves the extension or entry out.

    ``crl``, ``ocsp``, ``ca_issuers`` and ``delta_crl`` (a Freshest CRL extension) go
    into the host certificate (issued by the intermediate); ``issuer_crl`` and
    ``root_ca_issuers`` into the intermediate.
    """

    crl: str | None = None
    ocsp: str | None = None
    ca_issuers: str | None = None
    issuer_crl: str | None = None
    root_ca_issuers: str | None = None
    delta_crl: str | None = None


@dataclass(frozen=True)
class Revocation:
    """One revoked serial number, as it appears in the CRL and in OCSP answers."""

    serial_number: int
    revoked_at: dt.datetime
    reason: x509.ReasonFlags


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
        self._base_crl_number = 0

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
        now = now_utc()
        root_key = new_rsa_key()
        intermediate_key = new_rsa_key()
        try:
            root_name = x509_name(name, "rdptrust lab")
            intermediate_subject = x509_name(intermediate_name, "rdptrust lab")
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
            RDP_AUTH_EKU,
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
        now = now_utc()
        start = not_valid_before or now - BACKDATE
        end = not_valid_after or start + CA_ISSUED_VALIDITY
        try:
            subject = x509_name(common_name)
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
        if urls.delta_crl:
            point = x509.DistributionPoint(
                [x509.UniformResourceIdentifier(urls.delta_crl)], None, None, None
            )
            builder = builder.add_extension(x509.FreshestCRL([point]), critical=False)
        leaf = sign_certificate(builder, self.intermediate_key, signature_hash)
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
        when = (revoked_at or now_utc()).astimezone(dt.UTC).replace(microsecond=0)
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
        self,
        issuer: IssuerName,
        *,
        validity: dt.timedelta = dt.timedelta(days=7),
        delta: bool = False,
    ) -> x509.CertificateRevocationList:
        """A new CRL signed by *issuer*, listing the serials it issued that are revoked;
        with *delta*, a delta CRL (RFC 5280 5.2.4) on the last full CRL."""
        cert = self.issuer_certificate(issuer)
        key = self.issuer_key(issuer)
        now = now_utc()
        self._crl_number += 1
        base = self._base_crl_number
        if not delta:
            self._base_crl_number = self._crl_number
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
        if delta:
            builder = builder.add_extension(x509.DeltaCRLIndicator(base), critical=True)
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
