"""A small internal CA that issues proper RDP host certificates (the lasting fix).

Files in the CA folder (the private key is created 0600 and never leaves it)::

    ca-key.pem   the CA's private key (PKCS#8 PEM, 0600)
    ca.pem       the CA certificate (PEM), ca.cer the same in DER for Windows
    ca.json      settings and the register of issued certificates (schema rdptrust.ca/1)
    crl.der      the latest CRL (written by ``crl()``), crl.pem the same in PEM
    ca.json.lock the lock every change of the register and the CRL is made under

``init`` is all or nothing: the files are written in a staging folder first and moved in
with ``ca.json`` last, so a failure (a full disk) leaves no half CA. ``issue``, ``revoke``
and ``crl`` re-read the register under the lock before changing it, so commands run at
the same time serialise and none loses another's certificate or revocation.

Host certificates carry EKU serverAuth and Remote Desktop Authentication, a SAN for every
name, and the CRL / OCSP / caIssuers URLs the admin chose, so clients can check them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from rdptrust.errors import DataError, StoreError, UsageError
from rdptrust.files import PRIVATE_MODE, state_lock, write_atomic
from rdptrust.pki.ca_records import CaUrls, IssuedCertificate, IssuedRecord
from rdptrust.pki.certbuilder import CA_KEY_USAGE, host_certificate_builder

__all__ = ["CaUrls", "CertificateAuthority", "IssuedCertificate", "IssuedRecord"]

CA_SCHEMA = "rdptrust.ca/1"
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
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        raise UsageError(f"{name!r} is an IP address, not a DNS name: give it with --ip")
    if not name or len(name) > 253:
        raise UsageError(f"{name!r} is not a valid DNS name")
    for index, label in enumerate(labels):
        if index == 0 and label == "*" and len(labels) > 2:
            continue
        if not _DNS_LABEL.match(label):
            raise UsageError(f"{name!r} is not a valid DNS name")
    return name.rstrip(".")


def _check_url(url: str | None) -> str | None:
    if url is None:
        return None
    if not re.match(r"^(https?|ldap)://[^\s\"'<>]+$", url):
        raise UsageError(f"{url!r} is not an http(s) or ldap URL")
    return url


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

    def _state_json(self) -> str:
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
        return json.dumps(doc, indent=2) + "\n"

    def _save_state(self) -> None:
        """Write ca.json (the caller holds the lock)."""
        write_atomic(self.state_path, self._state_json())

    def _reload(self) -> None:
        """Re-read the register from ca.json (the caller holds the lock)."""
        self.urls, self.records, self.crl_number = _read_state(self.directory)

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
        _refuse_existing(directory, force)
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
        ca = cls(directory, certificate, key, urls, [], 1)
        with state_lock(ca.state_path):
            _refuse_existing(directory, force)
            ca._install(
                {
                    "ca-key.pem": key.private_bytes(
                        serialization.Encoding.PEM,
                        serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption(),
                    ),
                    "ca.pem": certificate.public_bytes(serialization.Encoding.PEM),
                    "ca.cer": certificate.public_bytes(serialization.Encoding.DER),
                }
            )
        return ca

    def _install(self, files: dict[str, bytes]) -> None:
        """Write *files* and ca.json in a staging folder, then move them in, ca.json last."""
        directory = self.directory
        try:
            staging = Path(tempfile.mkdtemp(prefix=".ca-init-", dir=directory))
        except OSError as exc:
            raise StoreError(f"cannot write in {directory}: {exc.strerror or exc}") from exc
        try:
            for file_name, data in files.items():
                mode = PRIVATE_MODE if file_name == "ca-key.pem" else None
                write_atomic(staging / file_name, data, mode=mode)
            write_atomic(staging / "ca.json", self._state_json())
            # From here on the folder holds no CA until ca.json is back: a failure midway
            # leaves nothing that init and load disagree about.
            for stale in ("ca.json", "crl.der", "crl.pem"):
                (directory / stale).unlink(missing_ok=True)
            for file_name in [*files, "ca.json"]:
                os.replace(staging / file_name, directory / file_name)
        except OSError as exc:
            raise StoreError(f"cannot write the CA in {directory}: {exc.strerror or exc}") from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    @classmethod
    def load(cls, directory: Path) -> CertificateAuthority:
        """Open the CA in *directory*: UsageError when there is none, DataError when its
        files are damaged or do not belong together, StoreError when they cannot be read."""
        try:
            key_data = (directory / "ca-key.pem").read_bytes()
            cert_data = (directory / "ca.pem").read_bytes()
        except FileNotFoundError as exc:
            raise UsageError(
                f"no CA in {directory} (missing {Path(exc.filename).name}); run 'rdptrust ca init'"
            ) from exc
        except OSError as exc:
            raise StoreError(f"cannot read the CA in {directory}: {exc.strerror or exc}") from None
        urls, records, crl_number = _read_state(directory)
        try:
            key = serialization.load_pem_private_key(key_data, password=None)
            certificate = x509.load_pem_x509_certificate(cert_data)
        except (ValueError, TypeError, x509.InvalidVersion) as exc:
            raise DataError(f"the CA in {directory} is damaged: {exc}") from exc
        if not isinstance(key, rsa.RSAPrivateKey):
            raise DataError(f"the CA key in {directory} is not an RSA key")
        if key.public_key().public_numbers() != _rsa_numbers(certificate):
            raise DataError(
                f"the CA in {directory} is damaged: ca-key.pem is not the key of ca.pem (what it"
                " signs would not verify against the CA certificate); restore the pair, or"
                " 'rdptrust ca init --force'"
            )
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
        record: bool = True,
    ) -> IssuedCertificate:
        """Issue a certificate for *host* (its CN and first SAN) with the extra names given.

        With *record* false the register is left alone: :meth:`record` adds it once what
        the certificate is for has been written (a bundle that cannot be written leaves
        no valid certificate in the register whose key exists nowhere)."""
        if not 1 <= days <= 3650:
            raise UsageError("--days must be between 1 and 3650")
        now = now or dt.datetime.now(dt.UTC)
        ends = self.certificate.not_valid_after_utc
        if ends <= now + dt.timedelta(minutes=5):
            raise DataError(
                f"the CA certificate in {self.directory} expired on {ends:%Y-%m-%d %H:%M} UTC:"
                " nothing it signs is valid; create a new CA ('rdptrust ca init --force')"
                " and deploy its root"
            )
        if len(host) > _MAX_COMMON_NAME:
            raise UsageError(
                f"{host!r} is {len(host)} characters; a certificate's common name holds at"
                f" most {_MAX_COMMON_NAME} (RFC 5280 ub-common-name): issue it for a shorter"
                " name and add this one with --dns"
            )
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
        issued = IssuedRecord(
            serial=certificate.serial_number,
            host=host,
            names=tuple(names),
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            sha1=certificate.fingerprint(hashes.SHA1()).hex(),
            sha256=certificate.fingerprint(hashes.SHA256()).hex(),
        )
        if record:
            self.record(issued)
        return IssuedCertificate(certificate, key, issued)

    def record(self, issued: IssuedRecord) -> None:
        """Add *issued* to the register (under the register's lock)."""
        with state_lock(self.state_path):
            self._reload()
            self.records.append(issued)
            self._save_state()

    def find(self, serial_or_host: str) -> list[IssuedRecord]:
        """Records whose hex serial or host name matches (host names case-insensitively)."""
        host = serial_or_host.lower()
        # as openssl and certutil show serials too: "18:02:54:…" or "18 02 54 …"
        serial = host.removeprefix("0x").replace(":", "").replace(" ", "").lstrip("0")
        return [
            r for r in self.records if format(r.serial, "x") == serial or r.host.lower() == host
        ]

    def revoke(
        self, serial_or_host: str, *, reason: str = "unspecified", now: dt.datetime | None = None
    ) -> list[IssuedRecord]:
        """Revoke every valid certificate matching *serial_or_host*; returns what changed."""
        if reason not in REVOCATION_REASONS:
            raise UsageError(f"reason must be one of {', '.join(REVOCATION_REASONS)}")
        now = now or dt.datetime.now(dt.UTC)
        with state_lock(self.state_path):
            self._reload()
            matches = [r for r in self.find(serial_or_host) if r.revoked_at is None]
            if not matches:
                raise UsageError(f"no valid certificate with serial or host {serial_or_host!r}")
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
        with state_lock(self.state_path):
            self._reload()
            crl = self._sign_crl(days, now)
            self.crl_number += 1
            self._save_state()
            write_atomic(self.directory / "crl.der", crl.public_bytes(serialization.Encoding.DER))
            write_atomic(self.directory / "crl.pem", crl.public_bytes(serialization.Encoding.PEM))
        return crl

    def _sign_crl(self, days: int, now: dt.datetime) -> x509.CertificateRevocationList:
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
        return builder.sign(self.key, hashes.SHA256())


def _refuse_existing(directory: Path, force: bool) -> None:
    """UsageError when *directory* holds a CA, or the key of an incomplete one, and not *force*."""
    if force:
        return
    if (directory / "ca.json").exists():
        raise UsageError(
            f"{directory} already holds a CA; use --force to replace it (the old key is lost)"
        )
    if (directory / "ca-key.pem").exists():
        raise UsageError(
            f"{directory} holds an incomplete CA (ca-key.pem without ca.json); "
            "use --force to replace it (the old key is lost)"
        )


#: RFC 5280 ub-common-name: the most characters a CN may hold.
_MAX_COMMON_NAME = 64


def _rsa_numbers(certificate: x509.Certificate) -> rsa.RSAPublicNumbers | None:
    public = certificate.public_key()
    return public.public_numbers() if isinstance(public, rsa.RSAPublicKey) else None


def _read_state(directory: Path) -> tuple[CaUrls, list[IssuedRecord], int]:
    """The URLs, register and next CRL number in *directory*'s ca.json."""
    try:
        state = json.loads((directory / "ca.json").read_text())
    except FileNotFoundError as exc:
        hint = (
            "an incomplete CA: run 'rdptrust ca init --force' to start over"
            if (directory / "ca-key.pem").exists()
            else "run 'rdptrust ca init'"
        )
        raise UsageError(f"no CA in {directory} (missing ca.json); {hint}") from exc
    except OSError as exc:
        raise StoreError(f"cannot read the CA in {directory}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise DataError(f"the CA in {directory} is damaged: ca.json is not JSON ({exc})") from exc
    try:
        if not isinstance(state, dict) or state.get("schema") != CA_SCHEMA:
            found = state.get("schema") if isinstance(state, dict) else None
            raise ValueError(f"unknown schema {found!r}")
        urls = CaUrls(**state["urls"])
        records = [IssuedRecord.from_json(r) for r in state["issued"]]
        crl_number = int(state["crl_number"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"the CA in {directory} is damaged: {exc}") from exc
    return urls, records, crl_number
