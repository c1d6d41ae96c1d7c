"""Findings judged from probe results: which ids, which severity, in which order."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from pki.certs_for_tests import NOW, hierarchy, issue
from pki.judgements import standard_security
from rdptrust.model.catalog import Kind, lookup
from rdptrust.model.outcome import ProbeFailure
from rdptrust.model.probe import (
    ENUMERATION_REQUESTS,
    Negotiation,
    ProbeResult,
    ProtocolSupport,
    StandardSecurityResult,
    Timings,
    TlsSessionInfo,
    TlsVersionSupport,
)
from rdptrust.model.problems import Severity
from rdptrust.model.target import Target
from rdptrust.model.wire import SecurityProtocol
from rdptrust.pki.findings import probe_findings

TARGET = Target("rdp01.example.test", 3389)
HYBRID = SecurityProtocol.SSL | SecurityProtocol.HYBRID


def _protocols(accepted: set[str]) -> tuple[ProtocolSupport, ...]:
    return tuple(
        ProtocolSupport(name, request, name in accepted, None, None, None)
        for name, request in ENUMERATION_REQUESTS.items()
    )


def _result(
    *,
    accepted: set[str],
    chain: tuple[bytes, ...] = (),
    tls_versions: dict[str, bool] | None = None,
    standard: StandardSecurityResult | None = None,
    legacy: bool = False,
) -> ProbeResult:
    selected = None if legacy else HYBRID
    return ProbeResult(
        target=TARGET,
        address="127.0.0.1",
        negotiation=Negotiation(HYBRID, selected, None, legacy),
        tls=TlsSessionInfo("TLSv1.3", "TLS_AES_256_GCM_SHA384", chain) if chain else None,
        protocols=_protocols(accepted),
        tls_versions=tuple(
            TlsVersionSupport(v, ok, None) for v, ok in (tls_versions or {}).items()
        ),
        timings=Timings(total_ms=1.0),
        error=None,
        standard_security=standard,
    )


def _ids(result: ProbeResult, now: dt.datetime = NOW) -> list[str]:
    findings = probe_findings(result, now=now)
    for finding in findings:
        entry = lookup(finding.code)
        assert (entry.kind, finding.severity in entry.severities) == (Kind.FINDING, True)
    return [f.code for f in findings]


def test_nla_only_host_with_ca_certificate_has_no_findings() -> None:
    chain = hierarchy()
    result = _result(
        accepted={"HYBRID", "HYBRID_EX"},
        chain=(chain.leaf.der, chain.intermediate.der),
        tls_versions={"TLSv1.0": False, "TLSv1.1": False, "TLSv1.2": True, "TLSv1.3": True},
    )
    assert _ids(result) == []


def test_windows_defaults_with_weak_standard_security() -> None:
    # Given a host that accepts everything, offers 40-bit RC4 and a self-signed cert
    leaf = issue("WIN-LAB01")
    result = _result(
        accepted={"RDP", "SSL", "HYBRID"},
        chain=(leaf.der,),
        tls_versions={"TLSv1.0": True, "TLSv1.1": True, "TLSv1.2": True},
        standard=standard_security({"40BIT", "128BIT", "FIPS"}, "CLIENT_COMPATIBLE"),
    )
    # When it is judged
    findings = probe_findings(result, now=NOW)
    # Then the critical findings come first, and every message says what to change
    assert [f.code for f in findings] == [
        "standard-rdp-security-allowed",
        "weak-encryption-methods",
        "fips-offered-not-required",
        "nla-not-required",
        "tls-legacy-versions",
        "self-signed-certificate",
    ]
    assert [f.severity for f in findings[:2]] == [Severity.CRITICAL] * 2
    assert all(f.severity == Severity.WARNING for f in findings[2:])
    assert "40-bit" in findings[1].message
    assert "56-bit" not in findings[1].message
    assert "CLIENT_COMPATIBLE" in findings[2].message
    assert "RDP, SSL" in findings[3].message
    assert "TLSv1.0 and TLSv1.1" in findings[4].message
    assert "SecurityLayer=2" in findings[0].message


def test_fips_required_is_not_a_finding() -> None:
    result = _result(accepted={"RDP"}, standard=standard_security({"FIPS"}, "FIPS"))
    assert "fips-offered-not-required" not in _ids(result)
    assert "weak-encryption-methods" not in _ids(result)
    assert _ids(result)[0] == "standard-rdp-security-allowed"


def test_legacy_host_without_negotiation_data() -> None:
    result = _result(accepted=set(), legacy=True)
    assert _ids(result) == ["standard-rdp-security-allowed", "nla-not-required"]


@pytest.mark.parametrize(
    ("days_after", "severity"), [(170, Severity.WARNING), (200, Severity.CRITICAL)]
)
def test_expiring_and_expired_certificate(days_after: int, severity: Severity) -> None:
    chain = hierarchy()
    result = _result(accepted={"HYBRID"}, chain=(chain.leaf.der,))
    now = NOW + dt.timedelta(days=days_after)
    findings = probe_findings(result, now=now)
    assert [f.code for f in findings] == ["expiring-certificate"]
    assert findings[0].severity == severity


def test_failed_probe_has_no_findings() -> None:
    result = _result(accepted={"RDP"})
    failed = ProbeResult(
        TARGET, None, None, None, (), (), Timings(), ProbeFailure("connect", "refused")
    )
    assert _ids(failed) == []
    assert _ids(result) == ["standard-rdp-security-allowed", "nla-not-required"]


def test_a_known_leaf_summary_is_used_instead_of_reading_the_certificate() -> None:
    # Given a result whose leaf is CA-issued, judged with a stored summary of it
    chain = hierarchy()
    result = _result(accepted={"HYBRID"}, chain=(chain.leaf.der,))
    stored = _Summary("CN=stored", True, NOW + dt.timedelta(days=3))
    findings = probe_findings(result, now=NOW, leaf=stored)
    # Then the findings come from the summary
    assert [(f.code, f.severity) for f in findings] == [
        ("self-signed-certificate", Severity.WARNING),
        ("expiring-certificate", Severity.WARNING),
    ]
    assert "CN=stored" in findings[0].message
    assert "in 3 days" in findings[1].message


def test_an_undecodable_leaf_raises_no_certificate_finding() -> None:
    result = _result(accepted={"HYBRID"}, chain=(b"\x30\x03\x02\x01\x00",))
    assert _ids(result) == []


@dataclasses.dataclass(frozen=True)
class _Summary:
    subject: str
    self_signed: bool
    not_after: dt.datetime
