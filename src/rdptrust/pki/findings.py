"""Security findings about one probed host: what it still allows besides TLS with NLA.

:func:`probe_findings` judges a :class:`~rdptrust.net.probe.ProbeResult`; ``probe``,
``diagnose`` and ``report`` all show the same list. Each finding's code, severities,
label, meaning and fixes are in the problem catalog, :mod:`rdptrust.model.catalog`.
Findings count toward a host's verdict as the chain's problems do.

Findings are ordered most severe first. Each message says what to change on the host.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Protocol

from rdptrust.errors import PkiError
from rdptrust.model import catalog
from rdptrust.model.probe import ProbeResult
from rdptrust.model.problems import Problem, Severity
from rdptrust.pki.facts import as_utc, certificate_facts, load_certificate

_WEAK_METHODS = ("40BIT", "56BIT")
_LEGACY_TLS = ("TLSv1.0", "TLSv1.1")
_SECURITY_LAYER_FIX = (
    "set the host's security layer to SSL (Group Policy: Computer Configuration > "
    "Administrative Templates > Windows Components > Remote Desktop Services > Remote "
    "Desktop Session Host > Security > 'Require use of specific security layer for remote "
    "(RDP) connections' = SSL; or SecurityLayer=2 under HKLM\\SYSTEM\\CurrentControlSet\\"
    "Control\\Terminal Server\\WinStations\\RDP-Tcp)"
)


class LeafSummary(Protocol):
    """What the certificate findings read of the leaf; :class:`CertificateFacts` has it."""

    @property
    def subject(self) -> str: ...

    @property
    def self_signed(self) -> bool: ...

    @property
    def not_after(self) -> dt.datetime: ...


def _accepted(result: ProbeResult, name: str) -> bool:
    return any(p.name == name and p.accepted for p in result.protocols)


def _rdp_accepted(result: ProbeResult) -> bool:
    """Whether the host accepts Standard RDP Security.

    When the encryption methods were tried, their answers decide: a host that selects
    PROTOCOL_RDP at the X.224 step but then completes no Standard RDP Security
    connection does not accept it (the probe's own table says so), and attempts that
    failed decide nothing. Without them, the negotiation decides. A host that answers
    with no encryption at all (FreeRDP's shadow server does) accepts it too.
    """
    legacy = result.negotiation is not None and result.negotiation.legacy
    standard = result.standard_security
    if standard is not None and standard.methods:
        # A Connect-Response, even one that selects no encryption (level NONE), is a
        # Standard RDP Security connection the host accepts. Attempts that failed (reset,
        # time-out) showed nothing: they do not make the X.224 answer decide instead.
        return legacy or any(m.accepted or m.selected is not None for m in standard.methods)
    return legacy or _accepted(result, "RDP")


def probe_findings(
    result: ProbeResult,
    *,
    now: dt.datetime | None = None,
    warn_days: int = 30,
    leaf: LeafSummary | None = None,
) -> tuple[Problem, ...]:
    """The findings for *result*, most severe first; empty when nothing is wrong.

    *leaf* is what is already known of ``result.leaf`` (its facts, or a stored summary);
    without it the leaf is read here. A leaf that cannot be decoded raises no finding.
    """
    if result.error is not None:
        return ()
    target = result.target
    found: list[Problem] = []
    standard = result.standard_security
    if _rdp_accepted(result):
        unencrypted = (
            ", with no encryption at all (encryption level NONE)"
            if standard is not None and standard.encryption_level == "NONE"
            else ""
        )
        found.append(
            catalog.STANDARD_RDP_SECURITY_ALLOWED.problem(
                Severity.CRITICAL,
                f"{target} accepts Standard RDP Security{unencrypted}: the client cannot "
                "verify the host (its proprietary key is signed with a key published in the "
                "specification), so a machine in the middle can read and change the "
                f"session, typed passwords included; {_SECURITY_LAYER_FIX}",
            )
        )
    if standard is not None:
        weak = [m for m in standard.accepted_methods if m in _WEAK_METHODS]
        if weak:
            found.append(
                catalog.WEAK_ENCRYPTION_METHODS.problem(
                    Severity.CRITICAL,
                    f"{target} accepts {' and '.join(m.replace('BIT', '-bit') for m in weak)} "
                    "RC4 for Standard RDP Security, which can be broken offline from a "
                    "capture: set 'Set client connection encryption level' to High Level "
                    "(MinEncryptionLevel=3), better still require SSL",
                )
            )
        if "FIPS" in standard.accepted_methods and standard.encryption_level != "FIPS":
            level = standard.encryption_level or "unknown"
            found.append(
                catalog.FIPS_OFFERED_NOT_REQUIRED.problem(
                    Severity.WARNING,
                    f"{target} offers the FIPS method but its encryption level is {level}, "
                    "so clients may still use RC4: if FIPS is required, set the level to "
                    "FIPS Compliant (MinEncryptionLevel=4) or enable the 'System "
                    "cryptography: Use FIPS compliant algorithms' policy",
                )
            )
    without_nla = [n for n in ("RDP", "SSL") if _accepted(result, n)]
    if result.negotiation is not None and result.negotiation.legacy:
        without_nla = ["RDP"]
    if without_nla:
        found.append(
            catalog.NLA_NOT_REQUIRED.problem(
                Severity.WARNING,
                f"{target} accepts connections without Network Level Authentication "
                f"({', '.join(without_nla)} accepted): anyone who reaches the port gets a "
                "logon screen and a session before proving who they are; enable 'Require "
                "user authentication for remote connections by using Network Level "
                "Authentication' (UserAuthentication=1)",
            )
        )
    legacy_tls = [v.version for v in result.tls_versions if v.accepted and v.version in _LEGACY_TLS]
    if legacy_tls:
        found.append(
            catalog.TLS_LEGACY_VERSIONS.problem(
                Severity.WARNING,
                f"{target} completes TLS handshakes with {' and '.join(legacy_tls)}, which "
                "current clients and standards no longer accept: disable them in SCHANNEL "
                "(HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\"
                "Protocols\\TLS 1.0|TLS 1.1\\Server, Enabled=0) once every client speaks "
                "TLS 1.2",
            )
        )
    if leaf is None and result.leaf is not None:
        with contextlib.suppress(PkiError):
            leaf = certificate_facts(load_certificate(result.leaf))
    if leaf is not None:
        days_left = (leaf.not_after - as_utc(now)).days
        if leaf.self_signed:
            found.append(
                catalog.SELF_SIGNED_CERTIFICATE.problem(
                    Severity.WARNING,
                    f"{target} presents a self-signed certificate ({leaf.subject}): every "
                    "client warns before connecting and cannot tell it from an impostor's; "
                    "pin it on the clients (rdptrust trust) or install one from your CA "
                    "(rdptrust ca)",
                )
            )
        if days_left < 0:
            found.append(
                catalog.EXPIRING_CERTIFICATE.problem(
                    Severity.CRITICAL,
                    f"{target}'s certificate expired on {leaf.not_after:%Y-%m-%d} UTC: "
                    "renew or replace it on the host",
                )
            )
        elif days_left <= warn_days:
            found.append(
                catalog.EXPIRING_CERTIFICATE.problem(
                    Severity.WARNING,
                    f"{target}'s certificate expires on {leaf.not_after:%Y-%m-%d} UTC, in "
                    f"{days_left} days: renew it, and update pinned copies on the "
                    "clients when it changes",
                )
            )
    found.sort(key=lambda p: -p.severity.rank)
    return tuple(found)
