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
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID

from rdptrust.errors import UsageError
from rdptrust.lab.certs.ca import CA_ISSUED_VALIDITY, LabCa, PkiUrls
from rdptrust.lab.certs.credentials import HostCredentials
from rdptrust.lab.certs.signing import (
    BACKDATE,
    SignatureHash,
    cached_rsa_key,
    new_rsa_key,
    now_utc,
    sha256_fingerprint,
    sign_certificate,
    x509_name,
)
from rdptrust.pki.certbuilder import RDP_AUTH_EKU

#: EKU "Remote Desktop Authentication" (PROTOCOL.md §4).
RDP_AUTHENTICATION_OID = RDP_AUTH_EKU
#: The host a ``wrong-name`` certificate is made for.
WRONG_NAME = "WIN-ELSEWHERE"
#: DNS suffix of the lab's host names in CA-issued certificates.
LAB_DOMAIN = "lab.test"
#: Validity of the Windows self-signed RDP certificate: six months (KB 2915774).
SELF_SIGNED_VALIDITY = dt.timedelta(days=182)

_COMPUTER_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,62})")


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


def _check_computer_name(name: str) -> None:
    if not _COMPUTER_NAME.fullmatch(name):
        raise UsageError(
            f"computer name {name!r} is not usable: use 1-63 letters, digits, '-' or '.'"
        )


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
    start = not_valid_before or now_utc() - BACKDATE
    end = not_valid_after or start + SELF_SIGNED_VALIDITY
    try:
        name = x509_name(computer_name)
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
    cert = sign_certificate(builder, key, signature_hash)
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
    now = now_utc()
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
        key=cached_rsa_key(key_size),
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
