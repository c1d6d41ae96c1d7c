"""Pins: a certificate trusted for one host and port (KB 2915774 Method 1), and a check."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from rdptrust.model.target import Target, ip_literal


def host_key(host: str) -> str:
    """The form host names are compared in: lowercase, no trailing dot, IPs normalised."""
    text = host.strip().strip("[]").rstrip(".").lower()
    address = ip_literal(text)
    return address.compressed if address is not None else text


@dataclass(frozen=True)
class Pin:
    """One pinned certificate: the host and port it is trusted for, and what it said.

    Fingerprints are lowercase hex without separators; times are UTC aware.
    """

    host: str
    port: int
    sha256: str
    subject: str
    issuer: str
    not_before: dt.datetime
    not_after: dt.datetime
    self_signed: bool
    public_key_sha256: str
    pinned_at: dt.datetime
    certificate_pem: str

    def matches(self, target: Target) -> bool:
        return self.port == target.port and host_key(self.host) == host_key(target.host)


class PinStatus(enum.StrEnum):
    NOT_PINNED = "not-pinned"
    MATCH = "match"
    CHANGED = "changed"


@dataclass(frozen=True)
class PinCheck:
    """How the served certificate compares with the pin for its host and port.

    ``pin`` is None when nothing is pinned for the target. ``looks_like_recreation``
    is True only for CHANGED where the pinned and the new certificate have the same
    subject, both are self-signed and the key is new: what Windows does every six
    months with its self-signed RDP certificate.
    """

    status: PinStatus
    pin: Pin | None
    looks_like_recreation: bool
    explanation: str
