"""`rdptrust check` names each problem and finding by its label in the problem catalog,
and every one of them counts toward the state at its severity."""

from __future__ import annotations

from pki.judgements import scenarios
from rdptrust.model import catalog
from rdptrust.model.problems import Severity
from rdptrust.monitor.check import PluginState, Thresholds, evaluate

_STATE = {Severity.WARNING: PluginState.WARNING, Severity.CRITICAL: PluginState.CRITICAL}
#: judged against the check's own thresholds, not by their code
_OWN_THRESHOLDS = {catalog.EXPIRING_SOON.code, catalog.PREDICTED_STALL.code}


def test_every_reason_is_a_catalog_label_at_its_severity() -> None:
    for judged in scenarios():
        assessment = judged.assessment
        if assessment is None:
            continue
        result = evaluate(assessment, Thresholds(max_stall_s=None))
        for problem in (*assessment.problems, *assessment.findings):
            if problem.code in _OWN_THRESHOLDS:
                continue
            reason = (_STATE[problem.severity], catalog.label(problem.code))
            assert reason in result.reasons, (judged.name, reason, result.reasons)
            assert catalog.label(problem.code) in result.summary
            assert result.state.rank >= _STATE[problem.severity].rank


def test_findings_alone_make_the_state() -> None:
    # Given a trusted CA-issued host that still allows Standard RDP Security and more
    (judged,) = [j for j in scenarios() if j.name == "trusted chain, weak host settings"]
    assert judged.assessment is not None
    assert judged.assessment.problems == ()
    # When the check judges it, Then the findings make it CRITICAL, named by their labels
    result = evaluate(judged.assessment, Thresholds())
    assert result.state is PluginState.CRITICAL
    assert result.line().startswith(
        "RDPTRUST CRITICAL - rdp01.example.test:3389: Standard RDP Security allowed; "
        "40/56-bit RC4 allowed; FIPS offered, not required; NLA not required; "
        "TLS 1.0/1.1 accepted |"
    )
