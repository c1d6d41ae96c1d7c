"""The verdict accounts for every security finding, and the text report says so."""

from __future__ import annotations

import io

from rich.console import Console

from pki.judgements import scenarios
from rdptrust.fix.advice import fixes_for
from rdptrust.model.assessment import Verdict
from rdptrust.report.diagnosis import FINDINGS_TITLE, render_diagnosis


def _text(judged_name: str) -> str:
    (judged,) = [j for j in scenarios() if j.name == judged_name]
    assert judged.assessment is not None
    out = io.StringIO()
    console = Console(file=out, width=400, color_system=None)
    render_diagnosis(judged.assessment, console, fixes_for(judged.assessment))
    return out.getvalue()


def test_the_verdict_is_the_worst_of_problems_and_findings() -> None:
    for judged in scenarios():
        assessment = judged.assessment
        if assessment is None or assessment.store_error is not None:
            continue
        expected = Verdict.of((*assessment.problems, *assessment.findings))
        assert assessment.verdict is expected, judged.name


def test_the_findings_section_says_it_counts_toward_the_verdict() -> None:
    # Given a trusted CA-issued host whose only faults are what it allows
    text = _text("trusted chain, weak host settings")
    # Then the verdict is the findings' worst, and the section says they count
    assert text.splitlines()[0] == "Diagnosis of rdp01.example.test:3389: CRITICAL"
    assert "verdict" in FINDINGS_TITLE
    assert FINDINGS_TITLE in text
    assert "Problems:" not in text
    assert "[critical] standard-rdp-security-allowed:" in text


def test_no_findings_no_section() -> None:
    text = _text("trusted CA chain, nothing wrong")
    assert text.splitlines()[0] == "Diagnosis of rdp01.example.test:3389: OK"
    assert FINDINGS_TITLE not in text
