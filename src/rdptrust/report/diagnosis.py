"""Renderers for a diagnosis: the ``rdptrust.diagnosis/2`` JSON document and a short report.

The keys are described in ``schemas/diagnosis.schema.json`` (and the README table made
from it). ``probe`` is the ``rdptrust.probe/2`` document of the assessment's probe, with
the certificate facts the assessment read and its ``now``.

Version 2 (from 1): the ``probe`` document is ``rdptrust.probe/2``; a retrieval's
``certificate`` (a subject) is ``certificate_subject`` and its ``status`` (HTTP) is
``http_status``: ``certificate`` is the certificate object and ``status`` a pin's state
in every document.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.text import Text

from rdptrust.model.assessment import Assessment, Fix, Retrieval
from rdptrust.model.problems import Problem
from rdptrust.model.text import safe_text
from rdptrust.model.windows import Cause, Prediction, WaitRange
from rdptrust.pki.prediction import staple_text
from rdptrust.pki.windows import CTL_PURPOSES
from rdptrust.report.objects import pin_check_document, problems_document
from rdptrust.report.probe import probe_document

DIAGNOSIS_SCHEMA = "rdptrust.diagnosis/2"
DIAGNOSIS_SCHEMA_VERSION = 2
#: The findings section's title: findings count toward the verdict as problems do.
FINDINGS_TITLE = "Security findings (counted in the verdict):"
_STYLE = {"ok": "green", "warning": "yellow", "critical": "red", "unknown": "magenta"}


def diagnosis_document(diagnosis: Assessment, fixes: Sequence[Fix] = ()) -> dict[str, Any]:
    """Build the ``rdptrust.diagnosis/2`` JSON document of *diagnosis* and its *fixes*."""
    return {
        "schema": DIAGNOSIS_SCHEMA,
        "schema_version": DIAGNOSIS_SCHEMA_VERSION,
        "target": str(diagnosis.target),
        "verdict": diagnosis.verdict.value,
        "predicted_stall_s": diagnosis.predicted_stall_s or 0.0,
        "prediction": prediction_document(diagnosis.prediction),
        "causes": [cause_document(c) for c in diagnosis.causes],
        "problems": problems_document(diagnosis.problems),
        "fixes": [fix_document(f) for f in fixes],
        "findings": problems_document(diagnosis.findings),
        "retrievals": [retrieval_document(r) for r in diagnosis.retrievals],
        "trust": {
            "trusted": diagnosis.trusted,
            "anchor": diagnosis.anchor,
            "path": list(diagnosis.path_subjects),
            "pin": pin_check_document(diagnosis.pin),
        },
        "settings": {
            "windows_url_timeout_s": diagnosis.settings.url_timeout_s,
            "windows_revocation_timeout_s": diagnosis.settings.revocation_timeout_s,
            "windows_list_timeout_s": diagnosis.settings.list_timeout_s,
            "root_update": diagnosis.settings.root_update,
            "ocsp_first": diagnosis.settings.ocsp_first,
            "crl_first": not diagnosis.settings.ocsp_first,
            "revocation_timeouts": diagnosis.settings.revocation_timeouts.value,
            "disallowed_update": diagnosis.settings.disallowed_update,
            "ctl_due": diagnosis.settings.ctl_due,
            "client": diagnosis.settings.client.value,
            "root_dir_url": diagnosis.settings.root_dir_url,
            "domain": diagnosis.settings.domain,
            "dns_server": diagnosis.settings.dns_server,
            "observation_url_timeout_s": diagnosis.fetch_timeout_s,
        },
        "revocation_capped": diagnosis.revocation_capped,
        "probe": probe_document(diagnosis.probe, diagnosis.chain, now=diagnosis.now),
        "elapsed_ms": diagnosis.elapsed_ms,
    }


def cause_document(cause: Cause) -> dict[str, Any]:
    """One cause of the predicted wait."""
    return {
        "purpose": cause.purpose.value,
        "url": cause.url,
        "seconds": cause.seconds,
        "modelled": cause.modelled,
        "text": cause.text,
        "rule": cause.rule,
        "rests_on": cause.basis.value,
        "every_connection": cause.later,
    }


def prediction_document(prediction: Prediction) -> dict[str, Any]:
    """The first and later connections' waits (ranges over the revocation regimes), the
    rules they rest on, the assumptions made and what is not measured."""
    return {
        "first_connection": _range(prediction.first_connection),
        "later_connections": _range(prediction.later_connections),
        "revocation_timeouts": prediction.regimes,
        "basis": [
            {"rule": b.rule, "status": b.status.value, "source": b.source} for b in prediction.basis
        ],
        "assumptions": list(prediction.assumptions),
        "not_measured": list(prediction.not_measured),
        "stapled_ocsp": (
            None
            if prediction.stapled_ocsp is None
            else {"used": prediction.stapled_ocsp.used, "detail": prediction.stapled_ocsp.detail}
        ),
    }


def _range(wait: WaitRange) -> dict[str, float]:
    return {"low_s": wait.low_s, "high_s": wait.high_s}


def fix_document(fix: Fix) -> dict[str, Any]:
    """One fix: what it removes and the commands, each with where to run it."""
    return {
        "id": fix.id,
        "title": fix.title,
        "removes": list(fix.removes),
        "commands": [{"where": c.where, "command": c.command} for c in fix.commands],
        "note": fix.note,
    }


def retrieval_document(retrieval: Retrieval) -> dict[str, Any]:
    """One retrieval the client would make, made for real."""
    return {
        "purpose": retrieval.purpose.value,
        "url": retrieval.url,
        "outcome": retrieval.outcome.value,
        "elapsed_ms": retrieval.elapsed_ms,
        "http_status": retrieval.status,
        "detail": retrieval.detail,
        "certificate_subject": retrieval.certificate,
        "revocation": None if retrieval.revocation is None else retrieval.revocation.value,
        "counted": retrieval.counted,
        "wait_s": retrieval.wait_s,
        "modelled": retrieval.modelled,
        "connects": [
            {
                "address": c.address,
                "port": c.port,
                "outcome": c.outcome.value,
                "elapsed_ms": c.elapsed_ms,
            }
            for c in retrieval.connects
        ],
    }


def render_diagnosis(diagnosis: Assessment, console: Console, fixes: Sequence[Fix] = ()) -> None:
    """A short report: what was found, the predicted stall and its causes, the fixes."""
    target = str(diagnosis.target)
    style = _STYLE.get(diagnosis.verdict, "white")
    console.print(
        Text.assemble(
            ("Diagnosis of ", "bold"),
            (target, "bold"),
            ": ",
            (diagnosis.verdict.upper(), f"bold {style}"),
        )
    )
    probe = diagnosis.probe
    if probe.error is not None:
        console.print(Text(f"Could not reach the host: {probe.error.message}", style="red"))
        return
    if diagnosis.leaf is not None:
        leaf = diagnosis.leaf
        kind = "self-signed" if leaf.self_signed else f"issued by {leaf.issuer}"
        console.print(
            Text(
                f"Certificate: {leaf.subject}, {kind}, valid to {leaf.not_after:%Y-%m-%d}"
                f" ({leaf.days_left} days), SHA-1 {leaf.sha1}"
            )
        )
        if diagnosis.trusted:
            how = (
                "pinned by rdptrust (Method 1)"
                if diagnosis.pin is not None and diagnosis.pin.status.value == "match"
                else f"chains to {diagnosis.anchor}"
            )
            console.print(Text(f"Trust: trusted, {how}", style="green"))
        else:
            console.print(Text("Trust: NOT trusted by this client", style="yellow"))
    stall = diagnosis.predicted_stall_s or 0.0
    console.print()
    forecast = diagnosis.prediction
    if stall >= 0.5:
        console.print(
            Text(
                f'Predicted wait on "Securing remote connection": first connection'
                f" {_span(forecast.first_connection)}, later connections"
                f" {_span(forecast.later_connections)}",
                style=f"bold {'red' if stall >= 10 else 'yellow'}",
            )
        )
        for cause in diagnosis.causes:
            console.print(Text(f"  - {cause_line(cause)}"))
    else:
        console.print(
            Text('Predicted wait on "Securing remote connection": none', style="bold green")
        )
    if diagnosis.diagnosed:
        if forecast.stapled_ocsp is not None:
            console.print(Text(f"  Note: {safe_text(staple_text(forecast.stapled_ocsp))}"))
        for assumption in forecast.assumptions:
            console.print(Text(f"  Note: {assumption}", style="dim"))
        if forecast.not_measured:
            console.print(Text(f"  Not measured: {'; '.join(forecast.not_measured)}", style="dim"))
    counted = [r for r in diagnosis.retrievals if r.counted]
    if counted:
        console.print(Text("Retrievals Windows would make (each done for real):"))
        for r in counted:
            extra = f", {r.revocation.value}" if r.revocation else ""
            model = (
                ""
                if not r.modelled
                else " (counted as the assumed list wait)"
                if r.purpose in CTL_PURPOSES
                else " (counted as Windows' time-out)"
            )
            console.print(
                Text(
                    f"  {r.purpose.value:<15} {r.outcome.value:<10} {r.elapsed_ms:8.1f} ms"
                    f"  {r.url}{extra}{model}"
                )
            )
    _print_problems(console, "Problems:", diagnosis.problems)
    _print_problems(console, FINDINGS_TITLE, diagnosis.findings)
    if fixes:
        console.print()
        console.print(Text("Fixes:", style="bold"))
        for index, fix in enumerate(fixes, 1):
            console.print(Text(f"  {index}. {fix.title}", style="bold"))
            for command in fix.commands:
                console.print(
                    Text(f"       {command.where}: ", style="dim") + Text(command.command)
                )
            if fix.note:
                console.print(Text(f"       {fix.note}", style="dim"))
    console.print(
        Text(
            f"\n(modelled figures use Windows' {diagnosis.settings.url_timeout_s:.0f} s"
            f" per-URL and {diagnosis.settings.revocation_timeout_s:.0f} s accumulative"
            f" revocation time-outs and an assumed {diagnosis.settings.list_timeout_s:.0f} s"
            " per blocked trust-list fetch; each wait is marked documented, observed or"
            " assumed;"
            " see 'What rdptrust assumes' in the README)",
            style="dim",
        )
    )


def cause_line(cause: Cause) -> str:
    """A cause in words, marked with what it rests on and whether later connections pay it."""
    later = "every connection" if cause.later else "first connection only"
    return f"{cause.text} [{cause.basis.value}; {later}]"


def _span(wait: WaitRange) -> str:
    """ "about 15 s", or "10-15 s" for a range over the revocation regimes."""
    if abs(wait.high_s - wait.low_s) < 0.05:
        return f"about {wait.high_s:.0f} s" if wait.high_s >= 0.5 else "none"
    return f"{wait.low_s:.1f}-{wait.high_s:.1f} s"


def _print_problems(console: Console, title: str, problems: Sequence[Problem]) -> None:
    """A titled list of problems, one line each with its severity and id; none: nothing."""
    if not problems:
        return
    console.print()
    console.print(Text(title, style="bold"))
    for problem in problems:
        console.print(
            Text.assemble(
                (f"  [{problem.severity.value}] ", _STYLE.get(problem.severity.value, "")),
                (problem.code, "bold"),
                f": {problem.message}",
            )
        )
