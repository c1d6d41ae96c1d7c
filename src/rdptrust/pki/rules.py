"""The rules of the Windows model, in one table: what outputs and the README cite.

Each rule has an id, its text, its status (``documented``: a Microsoft document says
it; ``observed``: seen in real Windows logs or traffic; ``unverified``: no primary
source, modelled as a setting and reported as assumed) and its source, as
WINDOWS.md gives them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from rdptrust.model.windows import Basis


class Status(enum.StrEnum):
    DOCUMENTED = "documented"
    OBSERVED = "observed"
    UNVERIFIED = "unverified"

    @property
    def basis(self) -> Basis:
        """How a wait resting on this rule is marked: unverified rules are assumed."""
        return Basis.ASSUMED if self == Status.UNVERIFIED else Basis(self.value)


@dataclass(frozen=True)
class Rule:
    id: str
    text: str
    status: Status
    source: str


_D, _O, _U = Status.DOCUMENTED, Status.OBSERVED, Status.UNVERIFIED

RULES: tuple[Rule, ...] = (
    Rule(
        "url-timeout",
        "each URL retrieval waits up to 15 s (ChainUrlRetrievalTimeoutMilliseconds)",
        _D,
        "WINDOWS.md §3; CERT_CHAIN_PARA dwUrlRetrievalTimeout (SDK default)",
    ),
    Rule(
        "revocation-per-url",
        "without CERT_CHAIN_REVOCATION_ACCUMULATIVE_TIMEOUT revocation waits 15 s times the"
        " number of URLs, no cap",
        _D,
        "WINDOWS.md §3; CertGetCertificateChain, CERT_CHAIN_PARA (SDK)",
    ),
    Rule(
        "revocation-accumulative",
        "with CERT_CHAIN_REVOCATION_ACCUMULATIVE_TIMEOUT each revocation URL waits half the"
        " remaining 20 s budget (10, 5, 2.5 s ...), whatever the per-URL time-out",
        _D,
        "WINDOWS.md §3; CERT_CHAIN_PARA, ChainRevAccumulativeUrlRetrievalTimeoutMilliseconds",
    ),
    Rule(
        "revocation-regime-unknown",
        "which revocation regime mstsc/Schannel asks for is not documented: a range over both",
        _U,
        "WINDOWS.md §3; a Windows 7 CAPI2 log shows the accumulative flag for one caller"
        " (<Timeout>PT9.976S</Timeout>)",
    ),
    Rule(
        "revocation-trusted-only",
        "revocation is checked only for a chain ending in a trusted root, top down;"
        " per certificate OCSP from AIA, then the CRL distribution point",
        _D,
        "WINDOWS.md §1, §4; ee619754 How Certificate Revocation Works;"
        " configure-certificate-path-validation-revocation-policy",
    ),
    Rule(
        "stapled-ocsp",
        "a stapled OCSP answer (for the leaf, from its issuer, current) comes first in the"
        " documented order: the leaf's OCSP and CRL URLs are not fetched; an unusable staple"
        " is ignored",
        _D,
        "WINDOWS.md §4; configure-certificate-path-validation-revocation-policy (stapled"
        " OCSP, URL cache, CRL in a store, OCSP from AIA, CRL DP); Wine cryptnet",
    ),
    Rule(
        "crl-before-ocsp",
        "after 50 cached OCSP answers for one CA (or with CRYPTNET_CRL_BEFORE_OCSP_ENABLE,"
        " a GPO option) the client tries the CRL before OCSP; a setting (--crl-first), off"
        " by default",
        _D,
        "WINDOWS.md §4; ee619783 Optimizing the Revocation Experience",
    ),
    Rule(
        "aia-untrusted-path",
        "a missing issuer is fetched over AIA caIssuers (http/ldap/file, not https)",
        _D,
        "WINDOWS.md §4; CryptRetrieveObjectByUrl",
    ),
    Rule(
        "ldap-url",
        "an ldap:// CRL or AIA URL is read over LDAP (TCP 389 unless the URL names a port);"
        " one refused, unresolvable or silent costs what a dead HTTP URL costs",
        _D,
        "WINDOWS.md §4; CryptRetrieveObjectByUrl (ldap, http, https, file)",
    ),
    Rule(
        "ldap-dc-locate",
        "an ldap:/// URL (no host, the AD CS default) makes the client locate a domain"
        " controller first: off the domain network it waits the URL time-out (measured"
        " with --domain through _ldap._tcp.dc._msdcs.DOMAIN)",
        _U,
        "WINDOWS.md §4: AD CS CRLPublicationURLs; no document gives the off-domain wait",
    ),
    Rule(
        "file-url",
        "a file:// CRL or AIA URL is opened over SMB; rdptrust does not open it and counts"
        " the URL time-out an off-domain client waits",
        _U,
        "WINDOWS.md §4; CryptRetrieveObjectByUrl (file); no document gives the SMB wait",
    ),
    Rule(
        "ctl-trusted-list",
        "an untrusted root makes Automatic Root Certificates Update fetch authrootseq.txt,"
        " then authrootstl.cab, with a random query string",
        _D,
        "WINDOWS.md §2; KB 2915774, KB 2253680, cc733922",
    ),
    Rule(
        "ctl-disallowed-list",
        "every chain, trusted ones too, syncs the disallowed list (sequence file, then"
        " disallowedcertstl.cab)",
        _D,
        "WINDOWS.md §2 (trigger, documented); AskDS 2018 'Maybe it's the CTL engine'; habr 306974",
    ),
    Rule(
        "ctl-pin-rules",
        "Windows 10 and later also sync pinrulesstl.cab",
        _D,
        "WINDOWS.md §2, §7; configure-trusted-roots-disallowed-certificates",
    ),
    Rule(
        "ctl-due",
        "the lists are synced only while the cached list is due; a sync that never succeeds"
        " leaves it due at every connection",
        _O,
        "WINDOWS.md §2; SDK SyncDeltaTime; habr 306974; alejacma",
    ),
    Rule(
        "ctl-fetch-wait",
        "a blocked list fetch waits about 15 s (--windows-list-timeout; not the per-URL"
        " time-out, nor the client's ChainUrlRetrievalTimeoutMilliseconds)",
        _U,
        "WINDOWS.md §2: field reports; no document ties it to ChainUrlRetrievalTimeout",
    ),
    Rule(
        "method2-trusted-only",
        "DisableRootAutoUpdate=1 (Method 2) turns off the trusted list only",
        _D,
        "WINDOWS.md §2; KB 2915774 Method 2; configure-trusted-roots-disallowed-certificates",
    ),
    Rule(
        "disallowed-switch",
        "EnableDisallowedCertAutoUpdate switches the untrusted list separately, Windows 8.1"
        " and later; on Windows 7 Method 2 is the whole fix",
        _D,
        "WINDOWS.md §2, §7; configure-trusted-roots-disallowed-certificates; KB 2677070",
    ),
    Rule(
        "root-dir-url",
        "RootDirUrl (HTTP or FILE) points every list at an internal mirror",
        _D,
        "WINDOWS.md §2; configure-trusted-roots-disallowed-certificates",
    ),
    Rule(
        "cache-first-connection",
        "a successful CRL/OCSP/AIA/list download is cached until nextUpdate: a slow but"
        " answering URL costs the first connection only",
        _D,
        "WINDOWS.md §5; path-validation doc; techcommunity 'Enough With The Delays Already!'",
    ),
    Rule(
        "cache-failures-repeat",
        "failures are remembered per process only and mstsc is a new process: a dead URL or"
        " failing list sync costs every connection",
        _D,
        "WINDOWS.md §5; CRYPT_OFFLINE_CHECK_RETRIEVAL",
    ),
    Rule(
        "observed-figure",
        "a retrieval that answered or failed fast costs what rdptrust observed",
        _O,
        "rdptrust's own measurement on the probing machine",
    ),
    Rule(
        "tcp-refused-retry",
        "a refused or reset connect costs about 2 s per address on Windows (it retries the"
        " SYN), where Linux fails at once: the Windows figure is charged",
        _O,
        "WINDOWS.md §6; libuv PR 2896 (2002-2011 ms measured on Windows, ~0 on Linux)",
    ),
    Rule(
        "tcp-connect-giveup",
        "a connect that gets no answer costs min(the URL's time-out, TCP's give-up of about"
        " 21 s) per address",
        _D,
        "WINDOWS.md §6; KB 2786464 (initial SYN and two retransmissions: 3 + 6 + 12 s)",
    ),
    Rule(
        "addresses-in-order",
        "the resolved addresses are tried one after another in the resolver's order (IPv6"
        " first when it says so), without Happy Eyeballs: a black hole first costs its wait",
        _U,
        "WINDOWS.md §6; no Happy Eyeballs is documented for WinHTTP",
    ),
    Rule(
        "proxy-path",
        "retrievals go through WinHTTP's proxy: static netsh winhttp proxy, a PAC file, or"
        " WPAD auto-detection (Windows 10: WINHTTP_ACCESS_TYPE_AUTOMATIC_PROXY)",
        _D,
        "WINDOWS.md §6; KB 2623724",
    ),
    Rule(
        "wpad-discovery",
        "WPAD auto-detection (DNS wpad.<domain>, then GET /wpad.dat) is a wait of its own"
        " before the first retrieval; a failed discovery is made again by each new process",
        _U,
        "WINDOWS.md §6; KB 2623724; DHCP option 252 is not tried here",
    ),
    Rule(
        "pin-as-root",
        "a pinned certificate stands for Method 1 deployed: its chain is judged as a Root"
        " store anchor (revocation fetched when it has URLs)",
        _U,
        "WINDOWS.md §7; KB 2915774 Method 1 (assumes Method 1 deployed on the clients)",
    ),
    Rule(
        "gpo-roots-intermittent",
        "roots deployed by Group Policy might intermittently appear untrusted (RDS listed)",
        _D,
        "WINDOWS.md §7; KB 4560600",
    ),
    Rule(
        "scope-credssp",
        "CredSSP/NLA (Kerberos KDC lookup, NTLM fallback) and DNS on the client sit on the"
        " same screen and are not measured",
        _D,
        "WINDOWS.md §1; MS-CSSP 3.1.5, MS-KILE 3.2.6",
    ),
)

BY_ID: Mapping[str, Rule] = MappingProxyType({r.id: r for r in RULES})

#: What no prediction measures (WINDOWS.md §1).
NOT_MEASURED = (
    "CredSSP/NLA (Kerberos KDC lookup or NTLM fallback)",
    "DNS resolution on the client",
)
PIN_ASSUMPTION = "assumes Method 1 deployed on the clients (the pinned certificate in Root)"
CRL_FIRST_ASSUMPTION = (
    "assumes the clients prefer CRLs (--crl-first on: 50 cached OCSP answers for the CA,"
    " or CRYPTNET_CRL_BEFORE_OCSP_ENABLE set by policy)"
)


def rule(rule_id: str) -> Rule:
    """The rule *rule_id*; KeyError for an unknown id."""
    return BY_ID[rule_id]


def rules_markdown() -> str:
    """The rules table as Markdown, for the README's "What rdptrust assumes" section."""
    lines = ["| Rule | What the model does | Status | Source |", "|---|---|---|---|"]
    for entry in RULES:
        text = entry.text.replace("|", "/")
        source = entry.source.replace("|", "/")
        lines.append(f"| `{entry.id}` | {text} | {entry.status.value} | {source} |")
    return "\n".join(lines) + "\n"
