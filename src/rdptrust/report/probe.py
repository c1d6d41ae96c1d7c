"""Renderers for a probe: the ``rdptrust.probe/2`` JSON document and a terminal view.

The keys are described in ``schemas/probe.schema.json`` (and the README table made from
it). ``certificate`` and ``chain`` hold the facts read once by the caller
(:func:`chain_facts`, or an assessment's ``chain``), judged at its ``now``; ``findings``
are the probe's security findings at that moment (``code``, ``severity``, ``message``).

Version 2 (from 1): ``findings[].id`` is ``findings[].code``, as in every document;
``standard_security.x509_chain`` (fingerprints) is ``x509_chain_sha256``: ``chain``
holds certificate objects.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from rdptrust.model.certificate import CertificateFacts
from rdptrust.model.probe import (
    ENUMERATION_REQUESTS,
    ProbeResult,
    StandardSecurityResult,
    Timings,
    TlsSessionInfo,
)
from rdptrust.model.problems import Problem
from rdptrust.model.wire import SecurityProtocol
from rdptrust.pki.facts import certificate_facts, load_certificate
from rdptrust.pki.findings import probe_findings
from rdptrust.pki.stapling import stapled_ocsp_status
from rdptrust.protocol.gcc import rdp_version_name
from rdptrust.report.objects import (
    certificate_document,
    error_document,
    ntlm_document,
    problems_document,
)

PROBE_SCHEMA = "rdptrust.probe/2"


def protocol_name(value: SecurityProtocol | None) -> str | None:
    if value is None:
        return None
    if value == SecurityProtocol.RDP:
        return "RDP"
    names = [p.name or "" for p in SecurityProtocol if p and (value & p) == p]
    return "|".join(names) or hex(value)


def chain_facts(result: ProbeResult, now: dt.datetime | None = None) -> list[CertificateFacts]:
    """The facts of each certificate *result*'s host sent, leaf first."""
    return [certificate_facts(load_certificate(der), now=now) for der in result.chain]


def probe_document(
    result: ProbeResult,
    chain: Sequence[CertificateFacts],
    *,
    now: dt.datetime,
    findings: Sequence[Problem] | None = None,
) -> dict[str, Any]:
    """Build the ``rdptrust.probe/2`` document of *result*.

    *chain* holds the facts of the certificates the host sent (leaf first; empty when none
    could be read) and *now* the moment they were judged at. *findings* are the probe's
    security findings; None computes them at *now*.
    """
    neg = result.negotiation
    protocols: dict[str, Any] = {}
    for name in ENUMERATION_REQUESTS:
        found = next((p for p in result.protocols if p.name == name), None)
        protocols[name] = {
            "accepted": found.accepted if found else None,
            "failure": found.failure if found else None,
            "selected": protocol_name(found.selected) if found else None,
            "error": error_document(found.error) if found else None,
        }
    if findings is None:
        findings = probe_findings(result, now=now, leaf=chain[0] if chain else None)
    return {
        "schema": PROBE_SCHEMA,
        "target": str(result.target),
        "address": result.address,
        "negotiation": None
        if neg is None
        else {
            "requested": protocol_name(neg.requested),
            "selected": protocol_name(neg.selected),
            "failure": neg.failure,
            "legacy": neg.legacy,
            "disconnected": neg.disconnected,
        },
        "protocols": protocols,
        "tls_versions": {
            v.version: {"accepted": v.accepted, "error": error_document(v.error)}
            for v in result.tls_versions
        },
        "tls": tls_document(result.tls),
        "certificate": certificate_document(chain[0]) if chain else None,
        "chain": [certificate_document(f) for f in chain],
        "timings_ms": timings_document(result.timings),
        "error": error_document(result.error),
        "standard_security": standard_security_document(result),
        "ntlm": ntlm_document(result.ntlm),
        "findings": problems_document(findings),
    }


def tls_document(tls: TlsSessionInfo | None) -> dict[str, Any] | None:
    """The ``tls`` object: the session, whether it completed, renegotiation, the staple."""
    if tls is None:
        return None
    return {
        "version": tls.version,
        "cipher": tls.cipher,
        "completed": tls.completed,
        "failure": tls.failure,
        "secure_renegotiation": tls.secure_renegotiation,
        "ocsp_stapled": tls.stapled_ocsp is not None,
        "ocsp_status": None if tls.stapled_ocsp is None else stapled_ocsp_status(tls.stapled_ocsp),
    }


def timings_document(timings: Timings) -> dict[str, Any]:
    """The ``timings_ms`` object: milliseconds per phase of the main connection."""
    return {
        "connect": timings.connect_ms,
        "x224": timings.x224_ms,
        "tls": timings.tls_ms,
        "total": timings.total_ms,
    }


def standard_security_document(result: ProbeResult) -> dict[str, Any] | None:
    """The ``standard_security`` object, or ``None`` when RDP is not accepted or not asked."""
    std = result.standard_security
    if std is None:
        return None
    return {
        "accepted_methods": list(std.accepted_methods),
        "methods": {
            m.method: {
                "accepted": m.accepted,
                "selected": m.selected,
                "encryption_level": m.encryption_level,
                "refused": m.refused,
                "error": error_document(m.error),
            }
            for m in std.methods
        },
        "encryption_level": std.encryption_level,
        "rdp_version": None if std.rdp_version is None else f"0x{std.rdp_version:08x}",
        "rdp_version_name": _rdp_version_name(std),
        "certificate_type": std.certificate_type,
        "certificate_temporary": std.certificate_temporary,
        "certificate_key_bits": std.certificate_key_bits,
        "x509_chain_sha256": [hashlib.sha256(der).hexdigest() for der in std.x509_chain],
        "elapsed_ms": std.elapsed_ms,
    }


def _yes_no(value: bool | None) -> Text:
    if value is None:
        return Text("unknown", style="yellow")
    return Text("yes", style="green") if value else Text("no", style="red")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def render_probe(result: ProbeResult, console: Console, *, now: dt.datetime | None = None) -> None:
    """Print a readable view of *result*. Certificate text is shown literally, never as markup."""
    console.print(Text.assemble(("Target ", "bold"), str(result.target)))
    if result.error is not None:
        console.print(Text(f"Could not probe: {result.error.message}", style="bold red"))
        return
    neg = result.negotiation
    if neg is not None:
        if neg.selected is not None:
            line = f"Negotiation: asked {protocol_name(neg.requested)}, host chose "
            console.print(Text(line + (protocol_name(neg.selected) or "")))
        elif neg.failure:
            console.print(Text(f"Negotiation: host refused with {neg.failure}", style="yellow"))
        elif neg.legacy:
            console.print(
                Text("Negotiation: no negotiation data (old host, Standard RDP Security only)")
            )
    if result.protocols:
        table = Table(title="Security protocols (one connection each)", title_justify="left")
        table.add_column("Protocol")
        table.add_column("Accepted")
        table.add_column("Detail")
        for p in result.protocols:
            if p.failure:
                detail = p.failure
            elif p.error:
                detail = p.error.message
            elif p.accepted is False and p.selected is not None:
                detail = f"host chose {protocol_name(p.selected)} instead"
            elif p.accepted is False:
                detail = "host disconnected"
            else:
                detail = ""
            table.add_row(p.name, _yes_no(p.accepted), Text(detail))
        console.print(table)
    if result.tls_versions:
        versions = ", ".join(
            f"{v.version} {'yes' if v.accepted else 'no' if v.accepted is False else '?'}"
            for v in result.tls_versions
        )
        console.print(Text(f"TLS versions: {versions}"))
    if result.tls is not None:
        _render_tls(result.tls, console)
    chain = chain_facts(result, now)
    for index, facts in enumerate(chain):
        table = Table(
            title="Host certificate" if index == 0 else f"Chain certificate {index}",
            title_justify="left",
            show_header=False,
        )
        table.add_column("Field", style="bold")
        table.add_column("Value", overflow="fold")  # a narrow terminal folds, never cuts
        rows: list[tuple[str, str]] = [
            ("Subject", facts.subject),
            ("Issuer", facts.issuer),
            ("Self-signed", "yes" if facts.self_signed else "no"),
            ("Valid", f"{facts.not_before:%Y-%m-%d} to {facts.not_after:%Y-%m-%d}"),
            ("Days left", str(facts.days_left)),
            ("SHA-1 thumbprint", facts.sha1),
            ("SHA-256", facts.sha256),
            ("Key", f"{facts.key_type} {facts.key_bits or ''}".strip()),
            ("Signature", facts.signature_algorithm),
            ("SAN", ", ".join(facts.san) or "-"),
            ("EKU", ", ".join(facts.eku_names or facts.eku) or "(none: any purpose)"),
            ("CRL", ", ".join(facts.crl_urls) or "-"),
            ("OCSP", ", ".join(facts.ocsp_urls) or "-"),
            ("CA issuers", ", ".join(facts.ca_issuers_urls) or "-"),
        ]
        for field, value in rows:
            table.add_row(field, Text(value))
        console.print(table)
    _render_standard_security(result, console)
    _render_ntlm(result, console)
    _render_findings(result, console, now, chain[0] if chain else None)
    t = result.timings
    console.print(
        Text(
            f"Timings: connect {_ms(t.connect_ms)}, X.224 {_ms(t.x224_ms)}, "
            f"TLS {_ms(t.tls_ms)}, total {_ms(t.total_ms)}"
        )
    )


def _render_tls(tls: TlsSessionInfo, console: Console) -> None:
    console.print(Text(f"TLS session: {tls.version}, {tls.cipher}"))
    if not tls.completed:
        console.print(
            Text(
                "TLS handshake did not complete; the certificate below was read from the"
                f" host's handshake ({tls.failure})",
                style="yellow",
            )
        )
    if tls.secure_renegotiation is False:
        console.print(Text("TLS renegotiation: host predates RFC 5746 (no renegotiation_info)"))
    if tls.stapled_ocsp is not None:
        status = stapled_ocsp_status(tls.stapled_ocsp) or "unreadable"
        console.print(Text(f"OCSP stapled: yes ({status}, {len(tls.stapled_ocsp)} bytes)"))
    else:
        console.print(Text("OCSP stapled: no"))


def _render_standard_security(result: ProbeResult, console: Console) -> None:
    std = result.standard_security
    if std is None:
        return
    table = Table(
        title="Standard RDP Security (one connection per encryption method)", title_justify="left"
    )
    table.add_column("Method")
    table.add_column("Accepted")
    table.add_column("Detail")
    for m in std.methods:
        if m.error is not None:
            detail = m.error.message
        elif m.accepted is False and m.selected is not None:
            detail = f"host chose {m.selected}"
        elif m.accepted is False:
            detail = "host closed the connection (no method in common)"
        else:
            detail = m.refused or ""
        table.add_row(m.method, _yes_no(m.accepted), Text(detail))
    console.print(table)
    cert = std.certificate_type or "-"
    if std.certificate_key_bits:
        cert += f" RSA {std.certificate_key_bits}"
    if std.certificate_temporary:
        cert += " (temporary)"
    console.print(
        Text(
            f"Encryption level: {std.encryption_level or 'unknown'}; "
            f"RDP version: {_rdp_version_name(std) or 'unknown'}; server certificate: {cert}"
        )
    )


def _render_ntlm(result: ProbeResult, console: Console) -> None:
    info = result.ntlm
    if info is None:
        return
    if info.error is not None:
        console.print(Text(f"NTLM host information: {info.error.message}", style="yellow"))
        return
    table = Table(
        title="NTLM host information (anonymous)", title_justify="left", show_header=False
    )
    table.add_column("Field", style="bold")
    table.add_column("Value")
    rows = [
        ("Target name", info.target_name),
        ("NetBIOS computer", info.netbios_computer_name),
        ("NetBIOS domain", info.netbios_domain_name),
        ("DNS computer", info.dns_computer_name),
        ("DNS domain", info.dns_domain_name),
        ("DNS tree", info.dns_tree_name),
        ("OS version", None if info.os_version is None else str(info.os_version)),
        (
            "Host clock",
            None if info.server_time is None else f"{info.server_time:%Y-%m-%d %H:%M:%S} UTC",
        ),
        (
            "CredSSP answer",
            None
            if info.challenge_ms is None
            else f"{info.challenge_ms:.1f} ms (NEGOTIATE to CHALLENGE)",
        ),
    ]
    for name, value in rows:
        table.add_row(name, Text(value or "-"))
    console.print(table)


_SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "ok": "green"}


def _render_findings(
    result: ProbeResult, console: Console, now: dt.datetime | None, leaf: CertificateFacts | None
) -> None:
    findings = probe_findings(result, now=now, leaf=leaf)
    if not findings:
        console.print(Text("Findings: none", style="green"))
        return
    console.print(Text("Findings", style="bold"))
    for f in findings:
        console.print(
            Text.assemble(
                (f"  {f.severity.value.upper():8} ", _SEVERITY_STYLE[f.severity.value]),
                (f"{f.code}: ", "bold"),
                f.message,
            )
        )


def _rdp_version_name(std: StandardSecurityResult) -> str | None:
    return None if std.rdp_version is None else rdp_version_name(std.rdp_version)
