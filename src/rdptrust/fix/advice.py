"""The fixes for what an assessment found: what each removes, and the exact commands.

Which fixes a problem code (or a retrieval that makes the client wait) calls for is
the problem catalog's (:mod:`rdptrust.model.catalog`); this module holds what each fix
says, its commands, and the choices that need the assessment (a self-signed leaf gets
Method 1, a CA-issued one the issuing CA). Each fix names the problem codes (or
retrieval purposes) it removes and the commands for where they run: ``rdptrust``
itself, a Windows client, the Windows host, Group Policy or the network. Target names
come from the user and are quoted for a POSIX shell; nothing taken from a certificate
enters a command.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable

from rdptrust.model import catalog
from rdptrust.model.assessment import Assessment, Fix, FixCommand
from rdptrust.model.catalog import FixId
from rdptrust.model.retrieval import Purpose, RevocationStatus
from rdptrust.model.windows import ClientProfile
from rdptrust.pki.schemes import reach_text

#: KB 4560600: roots deployed by Group Policy might intermittently appear untrusted.
GPO_ROOTS_CAVEAT = (
    " KB 4560600: roots deployed by Group Policy might intermittently appear as untrusted"
    " (Remote Desktop is listed); at scale prefer certutil -addstore Root or a Group Policy"
    " Preferences registry item."
)


def _lists_left(assessment: Assessment) -> str:
    """What a Method leaves on the client modelled: the disallowed-list (and pin-rule) sync."""
    if assessment.settings.client == ClientProfile.WIN7:
        return ""
    waited = {c.purpose for c in assessment.causes}
    left = [
        name
        for purpose, name in (
            (Purpose.DISALLOWED_LIST, "the disallowed-list sync"),
            (Purpose.PIN_RULES, "the pin-rules sync"),
        )
        if purpose in waited
    ]
    if not left:
        return ""
    return (
        f" It leaves {' and '.join(left)}: Windows 8 and later sync the disallowed list for"
        " trusted chains too, so with Windows Update unreachable neither Method 1 nor Method 2"
        " removes that wait; the disallowed-list switch or an internal RootDirUrl mirror does."
    )


def _shell(text: str) -> str:
    """A POSIX shell word (target names come from the user, not from certificates)."""
    return shlex.quote(text)


def removed_by(fix: FixId, codes: Iterable[str], purposes: Iterable[Purpose]) -> tuple[str, ...]:
    """The problem codes among *codes* and retrieval purposes among *purposes* that the
    catalog maps to *fix*, sorted. A predicted stall counts through its causes'
    purposes."""
    found = {
        code
        for code in codes
        if code != catalog.PREDICTED_STALL.code and fix in catalog.lookup(code).fixes
    }
    found.update(p.value for p in purposes if fix in catalog.STALL_FIXES[p])
    return tuple(sorted(found))


def fixes_for(assessment: Assessment) -> tuple[Fix, ...]:
    """The fixes for what *assessment* found, most effective first; empty without a
    certificate."""
    leaf = assessment.leaf
    if leaf is None:
        return ()
    target = assessment.target
    codes = {p.code for p in (*assessment.problems, *assessment.findings)}
    purposes = {c.purpose for c in assessment.causes}

    def removes(fix: FixId) -> tuple[str, ...]:
        return removed_by(fix, codes, purposes)

    host = _shell(str(target))
    # The file stem 'rdptrust trust --out' uses (rdptrust.fix.method1.bundle_stem).
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", f"{target.host}_{target.port}").strip(".")[:80]
    fixes: list[Fix] = []
    if removes(FixId.VERIFY_AND_REPIN):
        fixes.append(
            Fix(
                FixId.VERIFY_AND_REPIN,
                "Check the new certificate on the host, then pin it again",
                removes(FixId.VERIFY_AND_REPIN),
                (
                    FixCommand(
                        "windows host",
                        "Get-ChildItem 'Cert:\\LocalMachine\\Remote Desktop' | Format-List "
                        "Subject,Thumbprint,NotAfter",
                    ),
                    FixCommand("rdptrust", f"rdptrust trust {host} --replace"),
                ),
                f"The thumbprint shown on the host must equal {leaf.sha1}.",
            )
        )
    # a self-signed leaf is trusted by pinning it; a CA-issued one by trusting its root
    if leaf.self_signed and removes(FixId.METHOD1_TRUST_HOST_CERTIFICATE):
        fixes.append(
            Fix(
                FixId.METHOD1_TRUST_HOST_CERTIFICATE,
                "Method 1: trust the host's own certificate on the clients",
                removes(FixId.METHOD1_TRUST_HOST_CERTIFICATE),
                (
                    FixCommand("rdptrust", f"rdptrust trust {host} --out trust-{_shell(stem)}"),
                    FixCommand(
                        "windows client",
                        f"certutil -addstore -f Root {stem}.cer",
                    ),
                ),
                "Removes the certificate prompt and the trusted-root list sync (the chain is then"
                " trusted; revocation is checked only if the certificate has URLs)."
                + _lists_left(assessment)
                + " Windows recreates a self-signed RDP certificate every six months:"
                " Method 1 must then be repeated; the CA-issued certificate lasts."
                + GPO_ROOTS_CAVEAT,
            )
        )
    if not leaf.self_signed and removes(FixId.TRUST_ISSUING_CA):
        name = assessment.path[-1].subject if assessment.path else "the issuing CA"
        fixes.append(
            Fix(
                FixId.TRUST_ISSUING_CA,
                f"Make the clients trust {name}",
                removes(FixId.TRUST_ISSUING_CA),
                (FixCommand("windows client", "certutil -addstore -f Root root-ca.cer"),),
                "Deploy the CA certificate to all clients at once (Group Policy: Public Key"
                " Policies > Trusted Root Certification Authorities)." + GPO_ROOTS_CAVEAT,
            )
        )
    if removes(FixId.METHOD2_DISABLE_ROOT_UPDATE):
        fixes.append(
            Fix(
                FixId.METHOD2_DISABLE_ROOT_UPDATE,
                "Method 2: turn off Automatic Root Certificates Update on the clients",
                removes(FixId.METHOD2_DISABLE_ROOT_UPDATE),
                (
                    FixCommand("rdptrust", "rdptrust policy root-autoupdate --disable --out gpo"),
                    FixCommand(
                        "group policy",
                        "Computer Configuration > Administrative Templates > System >"
                        " Internet Communication Management > Internet Communication"
                        " settings > Turn off Automatic Root Certificates Update: Enabled",
                    ),
                    FixCommand(
                        "windows client",
                        'reg add "HKLM\\SOFTWARE\\Policies\\Microsoft\\SystemCertificates'
                        '\\AuthRoot" /v DisableRootAutoUpdate /t REG_DWORD /d 1 /f',
                    ),
                ),
                "Removes the trusted-root list sync (authrootseq.txt, authrootstl.cab) only;"
                " the certificate prompt stays."
                + (
                    " On Windows 7 this is the whole fix: the disallowed list follows the same"
                    " switch."
                    if assessment.settings.client == ClientProfile.WIN7
                    else _lists_left(assessment)
                    or " On Windows 8.1 and later the disallowed-list sync stays (its own switch)."
                ),
            )
        )
    if removes(FixId.DISALLOWED_AUTOUPDATE_OFF):
        fixes.append(
            Fix(
                FixId.DISALLOWED_AUTOUPDATE_OFF,
                "Turn off the disallowed-list and pin-rules update on the clients",
                removes(FixId.DISALLOWED_AUTOUPDATE_OFF),
                (
                    FixCommand(
                        "rdptrust", "rdptrust policy disallowed-autoupdate --disable --out gpo"
                    ),
                    FixCommand(
                        "windows client",
                        'reg add "HKLM\\SOFTWARE\\Policies\\Microsoft\\SystemCertificates'
                        '\\AuthRoot" /v EnableDisallowedCertAutoUpdate /t REG_DWORD /d 0 /f',
                    ),
                ),
                "Removes the disallowed-list and pin-rules syncs (Windows 8.1 and later); the"
                " clients then stop learning certificates Microsoft distrusts.",
            )
        )
    if removes(FixId.PROXY_AUTODETECT):
        fixes.append(
            Fix(
                FixId.PROXY_AUTODETECT,
                "Give the clients a proxy they find at once, or none to look for",
                removes(FixId.PROXY_AUTODETECT),
                (
                    FixCommand("network", "publish wpad.<your domain> serving a working wpad.dat"),
                    FixCommand("windows client", "netsh winhttp set proxy proxy.example:3128"),
                    FixCommand(
                        "group policy",
                        'turn off "Automatically detect settings" where no WPAD is published',
                    ),
                ),
                "Removes the proxy discovery's wait (WPAD lookups, wpad.dat or PAC"
                " download) that CryptoAPI pays through WinHTTP before its retrievals.",
            )
        )
    if removes(FixId.ROOT_DIR_URL_MIRROR):
        fixes.append(
            Fix(
                FixId.ROOT_DIR_URL_MIRROR,
                "Serve the certificate trust lists from an internal mirror (RootDirUrl)",
                removes(FixId.ROOT_DIR_URL_MIRROR),
                (
                    FixCommand("windows host", "certutil -syncWithWU \\\\fileserver\\ctl"),
                    FixCommand(
                        "rdptrust",
                        "rdptrust policy root-dir-url http://YOUR-MIRROR/ctl/ --out gpo-mirror",
                    ),
                ),
                "Removes every list sync's wait (trusted, disallowed, pin rules) while the"
                " clients keep their updates; the mirror must be kept current.",
            )
        )
    if leaf.self_signed and removes(FixId.CA_ISSUED_HOST_CERTIFICATE):
        fixes.append(
            Fix(
                FixId.CA_ISSUED_HOST_CERTIFICATE,
                "The lasting fix: give the host a certificate from a CA the clients trust",
                removes(FixId.CA_ISSUED_HOST_CERTIFICATE),
                (
                    FixCommand("rdptrust", "rdptrust ca init --crl-url http://YOUR-PKI/rdp.crl"),
                    FixCommand(
                        "rdptrust", f"rdptrust ca issue {_shell(target.host)} --out host-cert"
                    ),
                    FixCommand("windows host", "install-HOST.ps1 (written by ca issue)"),
                ),
            )
        )
    if removes(FixId.SEND_FULL_CHAIN):
        fixes.append(
            Fix(
                FixId.SEND_FULL_CHAIN,
                "Make the host send its intermediate certificates (or make the AIA URL reachable)",
                removes(FixId.SEND_FULL_CHAIN),
                (
                    FixCommand(
                        "windows host",
                        "certutil -addstore -f CA intermediate.cer  (then restart the Remote"
                        " Desktop Services service)",
                    ),
                ),
            )
        )
    if removes(FixId.REACH_REVOCATION_URLS):
        fixes.append(
            Fix(
                FixId.REACH_REVOCATION_URLS,
                "Let the clients reach the revocation URLs, or shorten the waits",
                removes(FixId.REACH_REVOCATION_URLS),
                (
                    FixCommand("network", reach_text(_revocation_urls(assessment))),
                    FixCommand(
                        "rdptrust",
                        "rdptrust policy retrieval-timeouts --url-timeout-ms 3000"
                        " --revocation-timeout-ms 5000 --out timeouts",
                    ),
                ),
            )
        )
    if removes(FixId.RENEW_HOST_CERTIFICATE):
        fixes.append(
            Fix(
                FixId.RENEW_HOST_CERTIFICATE,
                "Give the host a new certificate",
                removes(FixId.RENEW_HOST_CERTIFICATE),
                (
                    FixCommand(
                        "rdptrust", f"rdptrust ca issue {_shell(target.host)} --out host-cert"
                    ),
                    FixCommand(
                        "windows host",
                        "for the default self-signed certificate: delete it from"
                        " 'Cert:\\LocalMachine\\Remote Desktop' and restart TermService",
                    ),
                ),
            )
        )
    reissue = removes(FixId.REISSUE_PROPERLY)
    if leaf.self_signed:
        # for a self-signed leaf, pinning (Method 1) settles the name
        reissue = tuple(c for c in reissue if c != catalog.NAME_MISMATCH.code)
    if reissue:
        fixes.append(
            Fix(
                FixId.REISSUE_PROPERLY,
                "Issue a certificate with the right names, EKU, SHA-256 and a 2048-bit key",
                reissue,
                (
                    FixCommand(
                        "rdptrust", f"rdptrust ca issue {_shell(target.host)} --out host-cert"
                    ),
                ),
            )
        )
    return tuple(fixes)


def _revocation_urls(assessment: Assessment) -> list[str]:
    """The CRL and OCSP URLs the client waits for, else those that gave no answer."""
    revocation = (Purpose.CRL, Purpose.OCSP)
    waited = {c.url for c in assessment.causes if c.purpose in revocation and c.url}
    if waited:
        return sorted(waited)
    answered = (RevocationStatus.GOOD, RevocationStatus.REVOKED)
    return sorted(
        {
            r.url
            for r in assessment.retrievals
            if r.purpose in revocation and r.revocation not in answered
        }
    )
