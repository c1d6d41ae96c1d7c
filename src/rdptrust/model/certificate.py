"""What one certificate says, as plain values (``pki.facts`` reads them)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

#: Shown for a subject or issuer name that cannot be decoded.
UNDECODABLE_NAME = "(undecodable name)"


@dataclass(frozen=True)
class CertificateFacts:
    """What one certificate says.

    ``common_name`` is None when the subject has no CN. ``key_bits`` is None when the
    key type has no meaningful size (unknown algorithms). ``signature_hash`` is None
    when the algorithm has no separate hash (Ed25519, Ed448) or is unknown. Empty
    tuples mean the extension is absent (for ``eku``: no EKU extension, which
    Windows reads as "any purpose").
    """

    subject: str
    issuer: str
    common_name: str | None
    self_signed: bool
    serial: str
    not_before: dt.datetime
    not_after: dt.datetime
    days_left: int
    sha1: str
    sha256: str
    san: tuple[str, ...]
    eku: tuple[str, ...]
    eku_names: tuple[str, ...]
    key_type: str
    key_bits: int | None
    signature_algorithm: str
    signature_hash: str | None
    crl_urls: tuple[str, ...]
    ocsp_urls: tuple[str, ...]
    ca_issuers_urls: tuple[str, ...]
    is_ca: bool
    #: SHA-256 of the DER SubjectPublicKeyInfo, lowercase hex (stays equal when a
    #: certificate is renewed with the same key).
    public_key_sha256: str = ""
    #: Parts of the certificate that could not be decoded (empty when all was read).
    parse_warnings: tuple[str, ...] = ()
