"""The problem catalog: every problem and finding code rdptrust emits, once.

Each :class:`CatalogEntry` says what kind of judgement raises the code (``chain``: the
served certificates and their path; ``diagnosis``: the retrievals the Windows client
would make; ``finding``: what the probe saw the host allow), the severities it can
have, the short label ``rdptrust check`` prints, a one-line doc, and the ids of the
fixes (:class:`FixId`) that :mod:`rdptrust.fix.advice` offers for it. Emitters build
their problems through :meth:`CatalogEntry.problem`, which refuses a severity the entry
does not allow; :func:`lookup` refuses a code the catalog lacks. The README's table of
problem codes is :func:`catalog_markdown`.

Codes are stable strings: JSON output, monitoring and stored inventories depend on them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from rdptrust.model.problems import Problem, Severity
from rdptrust.model.retrieval import Purpose


class Kind(enum.StrEnum):
    """Which judgement raises a code."""

    CHAIN = "chain"
    DIAGNOSIS = "diagnosis"
    FINDING = "finding"


class FixId(enum.StrEnum):
    """The fixes :func:`rdptrust.fix.advice.fixes_for` can offer."""

    VERIFY_AND_REPIN = "verify-and-repin"
    METHOD1_TRUST_HOST_CERTIFICATE = "method1-trust-host-certificate"
    TRUST_ISSUING_CA = "trust-issuing-ca"
    METHOD2_DISABLE_ROOT_UPDATE = "method2-disable-root-update"
    CA_ISSUED_HOST_CERTIFICATE = "ca-issued-host-certificate"
    SEND_FULL_CHAIN = "send-full-chain"
    REACH_REVOCATION_URLS = "reach-revocation-urls"
    RENEW_HOST_CERTIFICATE = "renew-host-certificate"
    REISSUE_PROPERLY = "reissue-properly"
    DISALLOWED_AUTOUPDATE_OFF = "disallowed-autoupdate-off"
    ROOT_DIR_URL_MIRROR = "root-dir-url-mirror"
    PROXY_AUTODETECT = "proxy-autodetect"


class UnknownProblemCode(KeyError):
    """A code that is not in the catalog."""


@dataclass(frozen=True)
class CatalogEntry:
    """One problem or finding code.

    ``severities`` are the severities the code can have, mildest first; ``label`` is
    the few words ``rdptrust check`` prints; ``doc`` says in one line when it is raised;
    ``fixes`` are the fixes offered for it (empty when the message itself says what to
    change on the host).
    """

    code: str
    kind: Kind
    severities: tuple[Severity, ...]
    label: str
    doc: str
    fixes: tuple[FixId, ...] = ()

    def __post_init__(self) -> None:
        if not self.severities or Severity.OK in self.severities:
            raise ValueError(f"{self.code}: a problem is a warning or critical")
        if "\n" in self.doc or "\n" in self.label or "|" in self.doc + self.label:
            raise ValueError(f"{self.code}: label and doc are one table cell each")

    def problem(self, severity: Severity, message: str) -> Problem:
        """A :class:`Problem` with this code; *severity* must be one the entry allows."""
        if severity not in self.severities:
            raise ValueError(f"{self.code} cannot be {severity}")
        return Problem(self.code, severity, message)


_W = (Severity.WARNING,)
_C = (Severity.CRITICAL,)
_WC = (Severity.WARNING, Severity.CRITICAL)

# --- chain ------------------------------------------------------------------------------
NO_CERTIFICATE = CatalogEntry(
    "no-certificate",
    Kind.CHAIN,
    _C,
    "no certificate (no TLS)",
    "the host presented no certificate (no TLS): the client cannot tell who it talks to",
)
PIN_CHANGED = CatalogEntry(
    "pin-changed",
    Kind.CHAIN,
    _C,
    "certificate changed since it was pinned",
    "the host sends another certificate than the one pinned for it; the message says "
    "whether it looks like Windows' six-month recreation or a possible interception",
    (FixId.VERIFY_AND_REPIN,),
)
SELF_SIGNED_NOT_PINNED = CatalogEntry(
    "self-signed-not-pinned",
    Kind.CHAIN,
    _W,
    "self-signed, not pinned",
    "the leaf is self-signed (the Windows default), not pinned and in no trust store: "
    "clients prompt and, with automatic root update on, wait for the root list first",
    (FixId.METHOD1_TRUST_HOST_CERTIFICATE, FixId.CA_ISSUED_HOST_CERTIFICATE),
)
UNTRUSTED_ROOT = CatalogEntry(
    "untrusted-root",
    Kind.CHAIN,
    _W,
    "untrusted root",
    "the path ends in a self-signed CA that no trust source holds: the same prompt and wait",
    (FixId.TRUST_ISSUING_CA,),
)
INCOMPLETE_CHAIN = CatalogEntry(
    "incomplete-chain",
    Kind.CHAIN,
    _W,
    "incomplete chain",
    "the host does not send an issuer the path needs and it is nowhere local: Windows "
    "fetches it over AIA (a wait) or fails the chain",
    (FixId.SEND_FULL_CHAIN,),
)
PATH_LIMIT = CatalogEntry(
    "path-limit",
    Kind.CHAIN,
    _W,
    "path building limited",
    "the host sends more certificates (or more that share one name) than path building"
    " considers, or the work ran out of time: the chain was judged on the best path found"
    " within the limit; the host should send its certificate and its issuers only",
)
EXPIRED = CatalogEntry(
    "expired",
    Kind.CHAIN,
    _C,
    "expired",
    "a certificate of the path is past its end date",
    (FixId.RENEW_HOST_CERTIFICATE,),
)
NOT_YET_VALID = CatalogEntry(
    "not-yet-valid",
    Kind.CHAIN,
    _C,
    "not yet valid",
    "a certificate of the path starts in the future (usually a wrong clock)",
    (FixId.RENEW_HOST_CERTIFICATE,),
)
EXPIRING_SOON = CatalogEntry(
    "expiring-soon",
    Kind.CHAIN,
    _W,
    "expiring soon",
    "a certificate of the path ends within the warning days (check judges the days "
    "against its own thresholds)",
    (FixId.RENEW_HOST_CERTIFICATE,),
)
NAME_MISMATCH = CatalogEntry(
    "name-mismatch",
    Kind.CHAIN,
    _WC,
    "name mismatch",
    "the name connected to is not in the leaf's SAN (or CN without a SAN); a warning "
    "when the leaf is self-signed and not pinned (pinning settles the name too)",
    (FixId.REISSUE_PROPERLY, FixId.METHOD1_TRUST_HOST_CERTIFICATE),
)
EKU_UNSUITABLE = CatalogEntry(
    "eku-unsuitable",
    Kind.CHAIN,
    _C,
    "EKU not for RDP",
    "the leaf's EKU allows neither Server Authentication nor Remote Desktop "
    "Authentication: Windows will not use it for RDP",
    (FixId.REISSUE_PROPERLY,),
)
WEAK_SIGNATURE = CatalogEntry(
    "weak-signature",
    Kind.CHAIN,
    _WC,
    "weak signature",
    "MD5, MD4 or MD2 (critical) or SHA-1 (warning) signs a certificate of the path; a "
    "trusted root's self-signature is not judged",
    (FixId.REISSUE_PROPERLY,),
)
WEAK_KEY = CatalogEntry(
    "weak-key",
    Kind.CHAIN,
    _WC,
    "weak key",
    "an RSA or DSA key under 1024 bits (critical: Windows refuses it) or under 2048 bits (warning)",
    (FixId.REISSUE_PROPERLY,),
)
MALFORMED_CERTIFICATE = CatalogEntry(
    "malformed-certificate",
    Kind.CHAIN,
    _C,
    "malformed certificate",
    "a certificate (or part of one: names, extensions) cannot be decoded, so Windows may "
    "reject it and its EKU and names cannot be judged",
    (FixId.REISSUE_PROPERLY,),
)
DISALLOWED_CERTIFICATE = CatalogEntry(
    "disallowed-certificate",
    Kind.CHAIN,
    _C,
    "in the client's Disallowed store",
    "a certificate of the path is in the client's Untrusted Certificates (Disallowed) "
    "store (from --client-state): Windows distrusts the chain whatever else trusts it",
)
# --- diagnosis --------------------------------------------------------------------------
REVOKED = CatalogEntry(
    "revoked",
    Kind.DIAGNOSIS,
    _C,
    "revoked",
    "a CRL or OCSP answer says a certificate of the path is revoked",
    (FixId.RENEW_HOST_CERTIFICATE,),
)
REVOCATION_UNAVAILABLE = CatalogEntry(
    "revocation-unavailable",
    Kind.DIAGNOSIS,
    _W,
    "no revocation answer",
    "every CRL and OCSP URL of a certificate of a trusted path failed: Windows waits for "
    "them, then warns",
    (FixId.REACH_REVOCATION_URLS,),
)
AIA_OVER_HTTPS = CatalogEntry(
    "aia-over-https",
    Kind.DIAGNOSIS,
    _W,
    "AIA over HTTPS",
    "a caIssuers URL is https://, which Windows never fetches (HTTPS is for CRL and OCSP "
    "only): the issuer must come another way",
    (FixId.SEND_FULL_CHAIN,),
)
RETRIEVAL_LIMIT = CatalogEntry(
    "retrieval-limit",
    Kind.DIAGNOSIS,
    _W,
    "retrieval limit reached",
    "a certificate names more URLs than the retrieval limits allow (Windows' own where "
    "documented, rdptrust's otherwise): the excess is not fetched, as the message says",
    (FixId.REISSUE_PROPERLY,),
)
#: The fixes for each retrieval that makes the client wait: the causes of a predicted
#: stall, whose fixes are these together.
STALL_FIXES: Mapping[Purpose, tuple[FixId, ...]] = MappingProxyType(
    {
        Purpose.ROOT_LIST: (
            FixId.METHOD1_TRUST_HOST_CERTIFICATE,
            FixId.TRUST_ISSUING_CA,
            FixId.METHOD2_DISABLE_ROOT_UPDATE,
            FixId.CA_ISSUED_HOST_CERTIFICATE,
            FixId.ROOT_DIR_URL_MIRROR,
        ),
        Purpose.DISALLOWED_LIST: (FixId.DISALLOWED_AUTOUPDATE_OFF, FixId.ROOT_DIR_URL_MIRROR),
        Purpose.PIN_RULES: (FixId.DISALLOWED_AUTOUPDATE_OFF, FixId.ROOT_DIR_URL_MIRROR),
        Purpose.AIA: (FixId.SEND_FULL_CHAIN,),
        Purpose.CRL: (FixId.REACH_REVOCATION_URLS,),
        Purpose.OCSP: (FixId.REACH_REVOCATION_URLS,),
        Purpose.WPAD: (FixId.PROXY_AUTODETECT,),
    }
)
WPAD_DISCOVERY_WAIT = CatalogEntry(
    "wpad-discovery-wait",
    Kind.DIAGNOSIS,
    _W,
    "proxy discovery wait",
    "finding the proxy (WPAD: wpad.<domain>, then wpad.dat; or a PAC download) failed or"
    " took 0.5 s or more: the client pays it before its first retrieval, and again at each"
    " connection when it fails",
    (FixId.PROXY_AUTODETECT,),
)
PREDICTED_STALL = CatalogEntry(
    "predicted-stall",
    Kind.DIAGNOSIS,
    _WC,
    "predicted stall",
    'the client is predicted to wait 2 s or more (critical from 10 s) on "Securing '
    'remote connection"; the fixes follow its causes (certificate trust lists, AIA,'
    " CRL/OCSP)",
    tuple(dict.fromkeys(f for fixes in STALL_FIXES.values() for f in fixes)),
)
# --- findings ---------------------------------------------------------------------------
STANDARD_RDP_SECURITY_ALLOWED = CatalogEntry(
    "standard-rdp-security-allowed",
    Kind.FINDING,
    _C,
    "Standard RDP Security allowed",
    "the host accepts Standard RDP Security, whose server authentication can be "
    "impersonated (interception risk)",
)
WEAK_ENCRYPTION_METHODS = CatalogEntry(
    "weak-encryption-methods",
    Kind.FINDING,
    _C,
    "40/56-bit RC4 allowed",
    "Standard RDP Security accepts 40- or 56-bit RC4",
)
NLA_NOT_REQUIRED = CatalogEntry(
    "nla-not-required",
    Kind.FINDING,
    _W,
    "NLA not required",
    "the host accepts a connection without CredSSP (Network Level Authentication)",
)
FIPS_OFFERED_NOT_REQUIRED = CatalogEntry(
    "fips-offered-not-required",
    Kind.FINDING,
    _W,
    "FIPS offered, not required",
    "the FIPS method is accepted but the encryption level is not FIPS, so clients may "
    "still pick RC4",
)
TLS_LEGACY_VERSIONS = CatalogEntry(
    "tls-legacy-versions",
    Kind.FINDING,
    _W,
    "TLS 1.0/1.1 accepted",
    "TLS 1.0 or 1.1 completes a handshake",
)
SELF_SIGNED_CERTIFICATE = CatalogEntry(
    "self-signed-certificate",
    Kind.FINDING,
    _W,
    "self-signed certificate",
    "the TLS certificate is self-signed (probe only: a judged chain says "
    "self-signed-not-pinned instead)",
    (FixId.METHOD1_TRUST_HOST_CERTIFICATE, FixId.CA_ISSUED_HOST_CERTIFICATE),
)
EXPIRING_CERTIFICATE = CatalogEntry(
    "expiring-certificate",
    Kind.FINDING,
    _WC,
    "certificate expiring",
    "the TLS certificate ends within the warning days, critical once expired (probe "
    "only: a judged chain says expiring-soon or expired instead)",
    (FixId.RENEW_HOST_CERTIFICATE,),
)

ENTRIES: tuple[CatalogEntry, ...] = (
    NO_CERTIFICATE,
    PIN_CHANGED,
    SELF_SIGNED_NOT_PINNED,
    UNTRUSTED_ROOT,
    INCOMPLETE_CHAIN,
    PATH_LIMIT,
    EXPIRED,
    NOT_YET_VALID,
    EXPIRING_SOON,
    NAME_MISMATCH,
    EKU_UNSUITABLE,
    WEAK_SIGNATURE,
    WEAK_KEY,
    MALFORMED_CERTIFICATE,
    DISALLOWED_CERTIFICATE,
    REVOKED,
    REVOCATION_UNAVAILABLE,
    AIA_OVER_HTTPS,
    RETRIEVAL_LIMIT,
    WPAD_DISCOVERY_WAIT,
    PREDICTED_STALL,
    STANDARD_RDP_SECURITY_ALLOWED,
    WEAK_ENCRYPTION_METHODS,
    NLA_NOT_REQUIRED,
    FIPS_OFFERED_NOT_REQUIRED,
    TLS_LEGACY_VERSIONS,
    SELF_SIGNED_CERTIFICATE,
    EXPIRING_CERTIFICATE,
)

#: Every entry by its code, in catalog order.
CATALOG: Mapping[str, CatalogEntry] = MappingProxyType({e.code: e for e in ENTRIES})
if len(CATALOG) != len(ENTRIES):  # pragma: no cover - a duplicated code
    raise RuntimeError("problem catalog: duplicated code")


def lookup(code: str) -> CatalogEntry:
    """The entry for *code*; :class:`UnknownProblemCode` when the catalog lacks it."""
    try:
        return CATALOG[code]
    except KeyError:
        raise UnknownProblemCode(f"unknown problem code {code!r}") from None


def label(code: str) -> str:
    """The short label of *code* (what ``rdptrust check`` prints)."""
    return lookup(code).label


def catalog_markdown() -> str:
    """The README's table of problem codes, one row per entry in catalog order."""
    lines = [
        "| code | kind | severity | `check` label | raised when | fixes |",
        "|---|---|---|---|---|---|",
    ]
    for entry in ENTRIES:
        fixes = ", ".join(f"`{f.value}`" for f in entry.fixes) or "(the message says)"
        severities = ", ".join(s.value for s in entry.severities)
        lines.append(
            f"| `{entry.code}` | {entry.kind.value} | {severities} | {entry.label} "
            f"| {entry.doc} | {fixes} |"
        )
    return "\n".join(lines) + "\n"
