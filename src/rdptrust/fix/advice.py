"""The fixes for what an assessment found: what each removes, and the exact commands.

Each fix names the problem codes (or retrieval purposes) it removes and the commands
for where they run: ``rdptrust`` itself, a Windows client, the Windows host, Group
Policy or the network. Target names come from the user and are quoted for a POSIX
shell; nothing taken from a certificate enters a command.
"""

from __future__ import annotations

import re
import shlex

from rdptrust.model.assessment import Assessment, Fix, FixCommand
from rdptrust.model.retrieval import Purpose


def _shell(text: str) -> str:
    """A POSIX shell word (target names come from the user, not from certificates)."""
    return shlex.quote(text)


def fixes_for(assessment: Assessment) -> tuple[Fix, ...]:
    """The fixes for what *assessment* found, most effective first; empty without a
    certificate."""
    leaf = assessment.leaf
    if leaf is None:
        return ()
    target = assessment.target
    problems = assessment.problems
    causes = assessment.causes
    codes = {p.code for p in problems}
    purposes = {c.purpose for c in causes}
    host = _shell(str(target))
    # The file stem 'rdptrust trust --out' uses (rdptrust.fix.method1.bundle_stem).
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", f"{target.host}_{target.port}").strip(".")[:80]
    fixes: list[Fix] = []
    if "pin-changed" in codes:
        fixes.append(
            Fix(
                "verify-and-repin",
                "Check the new certificate on the host, then pin it again",
                ("pin-changed",),
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
    untrusted = {"self-signed-not-pinned", "untrusted-root"} & codes
    if Purpose.ROOT_LIST in purposes or untrusted:
        removes = tuple(
            sorted(untrusted | ({"root_list"} if Purpose.ROOT_LIST in purposes else set()))
        )
        if leaf.self_signed:
            fixes.append(
                Fix(
                    "method1-trust-host-certificate",
                    "Method 1: trust the host's own certificate on the clients",
                    removes,
                    (
                        FixCommand("rdptrust", f"rdptrust trust {host} --out trust-{_shell(stem)}"),
                        FixCommand(
                            "windows client",
                            f"certutil -addstore -f Root {stem}.cer",
                        ),
                    ),
                    "Windows recreates a self-signed RDP certificate every six months:"
                    " Method 1 must then be repeated; the CA-issued certificate lasts.",
                )
            )
        else:
            name = assessment.path[-1].subject if assessment.path else "the issuing CA"
            fixes.append(
                Fix(
                    "trust-issuing-ca",
                    f"Make the clients trust {name}",
                    removes,
                    (FixCommand("windows client", "certutil -addstore -f Root root-ca.cer"),),
                    "Deploy the CA certificate by Group Policy (Public Key Policies >"
                    " Trusted Root Certification Authorities) for all clients at once.",
                )
            )
        if Purpose.ROOT_LIST in purposes:
            fixes.append(
                Fix(
                    "method2-disable-root-update",
                    "Method 2: turn off Automatic Root Certificates Update on the clients",
                    ("root_list",),
                    (
                        FixCommand(
                            "rdptrust", "rdptrust policy root-autoupdate --disable --out gpo"
                        ),
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
                    "Removes the root-list wait only; the certificate prompt stays.",
                )
            )
        if leaf.self_signed:
            fixes.append(
                Fix(
                    "ca-issued-host-certificate",
                    "The lasting fix: give the host a certificate from a CA the clients trust",
                    removes,
                    (
                        FixCommand(
                            "rdptrust", "rdptrust ca init --crl-url http://YOUR-PKI/rdp.crl"
                        ),
                        FixCommand(
                            "rdptrust", f"rdptrust ca issue {_shell(target.host)} --out host-cert"
                        ),
                        FixCommand("windows host", "install-HOST.ps1 (written by ca issue)"),
                    ),
                )
            )
    if Purpose.AIA in purposes or "incomplete-chain" in codes:
        fixes.append(
            Fix(
                "send-full-chain",
                "Make the host send its intermediate certificates (or make the AIA URL reachable)",
                ("aia", "incomplete-chain"),
                (
                    FixCommand(
                        "windows host",
                        "certutil -addstore -f CA intermediate.cer  (then restart the Remote"
                        " Desktop Services service)",
                    ),
                ),
            )
        )
    rev = sorted({c.url for c in causes if c.purpose in (Purpose.CRL, Purpose.OCSP) and c.url})
    if rev:
        fixes.append(
            Fix(
                "reach-revocation-urls",
                "Let the clients reach the revocation URLs, or shorten the waits",
                ("crl", "ocsp"),
                (
                    FixCommand("network", "allow HTTP to " + ", ".join(rev)),
                    FixCommand(
                        "rdptrust",
                        "rdptrust policy retrieval-timeouts --url-timeout-ms 3000"
                        " --revocation-timeout-ms 5000 --out timeouts",
                    ),
                ),
            )
        )
    if {"expired", "not-yet-valid", "expiring-soon", "revoked"} & codes:
        fixes.append(
            Fix(
                "renew-host-certificate",
                "Give the host a new certificate",
                tuple(sorted({"expired", "not-yet-valid", "expiring-soon", "revoked"} & codes)),
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
    reissue = {"eku-unsuitable", "weak-signature", "weak-key"} & codes
    if "name-mismatch" in codes and not leaf.self_signed:
        # for a self-signed leaf, pinning (Method 1) settles the name too
        reissue.add("name-mismatch")
    if reissue:
        fixes.append(
            Fix(
                "reissue-properly",
                "Issue a certificate with the right names, EKU, SHA-256 and a 2048-bit key",
                tuple(sorted(reissue)),
                (
                    FixCommand(
                        "rdptrust", f"rdptrust ca issue {_shell(target.host)} --out host-cert"
                    ),
                ),
            )
        )
    return tuple(fixes)
