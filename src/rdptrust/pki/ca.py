"""A small internal CA that issues proper RDP host certificates (the lasting fix).

Files in the CA folder (the private key is created 0600 and never leaves it)::

    ca-key.pem   the CA's private key (PKCS#8 PEM, 0600)
    ca.pem       the CA certificate (PEM), ca.cer the same in DER for Windows
    ca.json      settings and the register of issued certificates (schema rdptrust.ca/1)
    crl.der      the latest CRL (written by ``crl()``), crl.pem the same in PEM

Host certificates carry EKU serverAuth and Remote Desktop Authentication, a SAN for every
name, and the CRL / OCSP / caIssuers URLs the admin chose, so clients can check them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from rdptrust.errors import PkiError, UsageError
from rdptrust.files import PRIVATE_MODE, write_atomic
from rdptrust.pki.facts import RDP_AUTHENTICATION_OID

CA_SCHEMA = "rdptrust.ca/1"
#: Remote Desktop Authentication (szOID_KP_RDP_AUTH... as Windows names it).
RDP_AUTH_EKU = x509.ObjectIdentifier(RDP_AUTHENTICATION_OID)
_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")

REVOCATION_REASONS = {
    "unspecified": x509.ReasonFlags.unspecified,
    "key-compromise": x509.ReasonFlags.key_compromise,
    "superseded": x509.ReasonFlags.superseded,
    "cessation-of-operation": x509.ReasonFlags.cessation_of_operation,
    "affiliation-changed": x509.ReasonFlags.affiliation_changed,
}


def check_dns_name(name: str) -> str:
    """Return *name* if it is a valid DNS host name (or wildcard), else raise UsageError."""
    labels = name.rstrip(".").split(".")
    if not name or len(name) > 253:
        raise UsageError(f"{name!r} is not a valid DNS name")
    for index, label in enumerate(labels):
        if index == 0 and label == "*" and len(labels) > 2:
            continue
        if not _DNS_LABEL.match(label):
            raise UsageError(f"{name!r} is not a valid DNS name")
    return name.rstrip(".")


@dataclass(frozen=True)
class IssuedRecord:
    """One line of the register. ``revoked_at``/``reason`` are ``None`` while valid."""

    serial: int
    host: str
    names: tuple[str, ...]
    not_before: dt.datetime
    not_after: dt.datetime
    sha1: str
    sha256: str
    revoked_at: dt.datetime | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "serial": format(self.serial, "x"),
            "host": self.host,
            "names": list(self.names),
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "sha1": self.sha1,
            "sha256": self.sha256,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> IssuedRecord:
        return cls(
            serial=int(doc["serial"], 16),
            host=str(doc["host"]),
            names=tuple(doc["names"]),
            not_before=dt.datetime.fromisoformat(doc["not_before"]),
            not_after=dt.datetime.fromisoformat(doc["not_after"]),
            sha1=str(doc["sha1"]),
            sha256=str(doc["sha256"]),
            revoked_at=dt.datetime.fromisoformat(doc["revoked_at"]) if doc["revoked_at"] else None,
            reason=doc.get("reason"),
        )


@dataclass(frozen=True)
class IssuedCertificate:
    """A host certificate and its private key, fresh from :meth:`CertificateAuthority.issue`."""

    certificate: x509.Certificate
    key: rsa.RSAPrivateKey
    record: IssuedRecord


@dataclass(frozen=True)
class CaUrls:
    """Where clients fetch revocation data and the CA certificate; ``None`` = not published."""

    crl: str | None = None
    ocsp: str | None = None
    ca_issuers: str | None = None


def _check_url(url: str | None) -> str | None:
    if url is None:
        return None
    if not re.match(r"^(https?|ldap)://[^\s\"'<>]+$", url):
        raise UsageError(f"{url!r} is not an http(s) or ldap URL")
    return url


def with_pki_urls(
    builder: x509.CertificateBuilder,
    crl: str | None,
    ocsp: str | None,
    ca_issuers: str | None,
) -> x509.CertificateBuilder:
    """*builder* with a CRL distribution point and AIA (OCSP, caIssuers) for the URLs given."""
    if crl:
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl)], None, None, None)
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    access = [
        x509.AccessDescription(method, x509.UniformResourceIdentifier(url))
        for method, url in (
            (AuthorityInformationAccessOID.OCSP, ocsp),
            (AuthorityInformationAccessOID.CA_ISSUERS, ca_issuers),
        )
        if url
    ]
    if access:
        builder = builder.add_extension(x509.AuthorityInformationAccess(access), critical=False)
    return builder


#: Key usage of a CA certificate: it signs certificates and CRLs (and OCSP answers).
CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


def host_certificate_builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: CertificatePublicKeyTypes,
    issuer_public_key: CertificatePublicKeyTypes,
    not_before: dt.datetime,
    not_after: dt.datetime,
    *,
    alt_names: Sequence[x509.GeneralName] = (),
    extended_key_usage: Sequence[x509.ObjectIdentifier] | None = (
        ExtendedKeyUsageOID.SERVER_AUTH,
        RDP_AUTH_EKU,
    ),
    crl: str | None = None,
    ocsp: str | None = None,
    ca_issuers: str | None = None,
) -> x509.CertificateBuilder:
    """The certificate an RDP host serves, issued by a CA, ready to sign.

    An end entity (basic constraints, critical) for digital signature and key
    encipherment (critical), with Server Authentication and Remote Desktop
    Authentication (*extended_key_usage* ``None`` leaves the EKU out), the subject
    alternative names given, key identifiers and the CRL and AIA URLs given.
    """
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
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
    )
    if extended_key_usage is not None:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(list(extended_key_usage)), critical=False
        )
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    builder = builder.add_extension(
        x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False
    ).add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public_key),  # type: ignore[arg-type]
        critical=False,
    )
    return with_pki_urls(builder, crl, ocsp, ca_issuers)


class CertificateAuthority:
    """An on-disk CA; use :meth:`init` to create one and :meth:`load` to open it."""

    def __init__(
        self,
        directory: Path,
        certificate: x509.Certificate,
        key: rsa.RSAPrivateKey,
        urls: CaUrls,
        records: list[IssuedRecord],
        crl_number: int,
    ) -> None:
        self.directory = directory
        self.certificate = certificate
        self.key = key
        self.urls = urls
        self.records = records
        self.crl_number = crl_number

    # -- files ---------------------------------------------------------------------------
    @property
    def key_path(self) -> Path:
        return self.directory / "ca-key.pem"

    @property
    def cert_path(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def state_path(self) -> Path:
        return self.directory / "ca.json"

    def _save_state(self) -> None:
        doc = {
            "schema": CA_SCHEMA,
            "urls": {
                "crl": self.urls.crl,
                "ocsp": self.urls.ocsp,
                "ca_issuers": self.urls.ca_issuers,
            },
            "crl_number": self.crl_number,
            "issued": [r.to_json() for r in self.records],
        }
        write_atomic(self.state_path, json.dumps(doc, indent=2) + "\n")

    @classmethod
    def init(
        cls,
        directory: Path,
        *,
        name: str = "rdptrust RDP CA",
        days: int = 3650,
        key_size: int = 3072,
        urls: CaUrls | None = None,
        force: bool = False,
        now: dt.datetime | None = None,
    ) -> CertificateAuthority:
        """Create a CA in *directory*; refuses to overwrite an existing one unless *force*."""
        urls = urls or CaUrls()
        for url in (urls.crl, urls.ocsp, urls.ca_issuers):
            _check_url(url)
        if not name.strip() or len(name) > 64:
            raise UsageError("the CA name must be 1 to 64 characters")
        if (directory / "ca-key.pem").exists() and not force:
            raise UsageError(
                f"{directory} already holds a CA; use --force to replace it (the old key is lost)"
            )
        now = now or dt.datetime.now(dt.UTC)
        key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                CA_KEY_USAGE,
                critical=True,
            )
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create {directory}: {exc.strerror or exc}") from exc
        write_atomic(
            directory / "ca-key.pem",
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            mode=PRIVATE_MODE,
        )
        write_atomic(directory / "ca.pem", certificate.public_bytes(serialization.Encoding.PEM))
        write_atomic(directory / "ca.cer", certificate.public_bytes(serialization.Encoding.DER))
        ca = cls(directory, certificate, key, urls, [], 1)
        ca._save_state()
        return ca

    @classmethod
    def load(cls, directory: Path) -> CertificateAuthority:
        """Open the CA in *directory*; PkiError with the reason when it is not usable."""
        try:
            key_data = (directory / "ca-key.pem").read_bytes()
            cert_data = (directory / "ca.pem").read_bytes()
            state = json.loads((directory / "ca.json").read_text())
        except FileNotFoundError as exc:
            raise UsageError(
                f"no CA in {directory} (missing {Path(exc.filename).name}); run 'rdptrust ca init'"
            ) from exc
        except (OSError, ValueError) as exc:
            raise PkiError(f"cannot read the CA in {directory}: {exc}") from exc
        try:
            key = serialization.load_pem_private_key(key_data, password=None)
            certificate = x509.load_pem_x509_certificate(cert_data)
            if state.get("schema") != CA_SCHEMA:
                raise ValueError(f"unknown schema {state.get('schema')!r}")
            urls = CaUrls(**state["urls"])
            records = [IssuedRecord.from_json(r) for r in state["issued"]]
            crl_number = int(state["crl_number"])
        except (ValueError, KeyError, TypeError) as exc:
            raise PkiError(f"the CA in {directory} is damaged: {exc}") from exc
        if not isinstance(key, rsa.RSAPrivateKey):
            raise PkiError(f"the CA key in {directory} is not an RSA key")
        return cls(directory, certificate, key, urls, records, crl_number)

    # -- issuing -------------------------------------------------------------------------
    def issue(
        self,
        host: str,
        *,
        dns_names: tuple[str, ...] = (),
        ip_addresses: tuple[str, ...] = (),
        days: int = 365,
        key_size: int = 2048,
        now: dt.datetime | None = None,
    ) -> IssuedCertificate:
        """Issue a certificate for *host* (its CN and first SAN) with the extra names given."""
        if not 1 <= days <= 3650:
            raise UsageError("--days must be between 1 and 3650")
        now = now or dt.datetime.now(dt.UTC)
        sans: list[x509.GeneralName] = []
        names: list[str] = []
        try:
            host_ip = ipaddress.ip_address(host)
        except ValueError:
            host_ip = None
        for dns in ([] if host_ip else [host]) + list(dns_names):
            checked = check_dns_name(dns)
            if checked.lower() not in (n.lower() for n in names):
                names.append(checked)
                sans.append(x509.DNSName(checked))
        for text in ([host] if host_ip else []) + list(ip_addresses):
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                raise UsageError(f"{text!r} is not an IP address") from None
            if str(address) not in names:
                names.append(str(address))
                sans.append(x509.IPAddress(address))
        key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
        not_after = min(now + dt.timedelta(days=days), self.certificate.not_valid_after_utc)
        builder = host_certificate_builder(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]),
            self.certificate.subject,
            key.public_key(),
            self.key.public_key(),
            now - dt.timedelta(minutes=5),
            not_after,
            alt_names=sans,
            crl=self.urls.crl,
            ocsp=self.urls.ocsp,
            ca_issuers=self.urls.ca_issuers,
        )
        certificate = builder.sign(self.key, hashes.SHA256())
        record = IssuedRecord(
            serial=certificate.serial_number,
            host=host,
            names=tuple(names),
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            sha1=certificate.fingerprint(hashes.SHA1()).hex(),
            sha256=certificate.fingerprint(hashes.SHA256()).hex(),
        )
        self.records.append(record)
        self._save_state()
        return IssuedCertificate(certificate, key, record)

    def find(self, serial_or_host: str) -> list[IssuedRecord]:
        """Records whose hex serial or host name matches (host names case-insensitively)."""
        wanted = serial_or_host.lower().removeprefix("0x")
        return [
            r
            for r in self.records
            if format(r.serial, "x") == wanted.lstrip("0") or r.host.lower() == wanted
        ]

    def revoke(
        self, serial_or_host: str, *, reason: str = "unspecified", now: dt.datetime | None = None
    ) -> list[IssuedRecord]:
        """Revoke every valid certificate matching *serial_or_host*; returns what changed."""
        if reason not in REVOCATION_REASONS:
            raise UsageError(f"reason must be one of {', '.join(REVOCATION_REASONS)}")
        matches = [r for r in self.find(serial_or_host) if r.revoked_at is None]
        if not matches:
            raise UsageError(f"no valid certificate with serial or host {serial_or_host!r}")
        now = now or dt.datetime.now(dt.UTC)
        changed = []
        for index, record in enumerate(self.records):
            if record in matches:
                revoked = dataclasses.replace(record, revoked_at=now, reason=reason)
                self.records[index] = revoked
                changed.append(revoked)
        self._save_state()
        return changed

    def crl(
        self, *, days: int = 7, now: dt.datetime | None = None
    ) -> x509.CertificateRevocationList:
        """Sign a new CRL listing every revoked certificate; writes crl.der and crl.pem."""
        now = now or dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(now - dt.timedelta(minutes=5))
            .next_update(now + dt.timedelta(days=days))
            .add_extension(x509.CRLNumber(self.crl_number), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        for record in self.records:
            if record.revoked_at is None:
                continue
            entry = (
                x509.RevokedCertificateBuilder()
                .serial_number(record.serial)
                .revocation_date(record.revoked_at)
                .add_extension(
                    x509.CRLReason(REVOCATION_REASONS[record.reason or "unspecified"]),
                    critical=False,
                )
                .build()
            )
            builder = builder.add_revoked_certificate(entry)
        crl = builder.sign(self.key, hashes.SHA256())
        self.crl_number += 1
        self._save_state()
        write_atomic(self.directory / "crl.der", crl.public_bytes(serialization.Encoding.DER))
        write_atomic(self.directory / "crl.pem", crl.public_bytes(serialization.Encoding.PEM))
        return crl
