"""The CA's value types: the register's records, an issued certificate, the CA's URLs.

:mod:`rdptrust.pki.ca` keeps them in ``ca.json`` (schema ``rdptrust.ca/1``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa


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
