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
from rdptrust.model.windows import Cause
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
            "root_update": diagnosis.settings.root_update,
            "ocsp_first": diagnosis.settings.ocsp_first,
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
    }


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
    if stall >= 0.5:
        console.print(
            Text(
                f'Predicted wait on "Securing remote connection": about {stall:.0f} s',
                style=f"bold {'red' if stall >= 10 else 'yellow'}",
            )
        )
        for cause in diagnosis.causes:
            console.print(Text(f"  - {cause.text}"))
    else:
        console.print(
            Text('Predicted wait on "Securing remote connection": none', style="bold green")
        )
    counted = [r for r in diagnosis.retrievals if r.counted]
    if counted:
        console.print(Text("Retrievals Windows would make (each done for real):"))
        for r in counted:
            extra = f", {r.revocation.value}" if r.revocation else ""
            model = " (counted as Windows' time-out)" if r.modelled else ""
            console.print(
                Text(
                    f"  {r.purpose.value:<9} {r.outcome.value:<10} {r.elapsed_ms:8.1f} ms"
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
            f" per-URL and {diagnosis.settings.revocation_timeout_s:.0f} s revocation"
            " time-outs; observed ones are measured here)",
            style="dim",
        )
    )


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
