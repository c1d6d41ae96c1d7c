"""Renderers for a diagnosis: the documented JSON document and a short terminal report.

JSON schema ``rdptrust.diagnosis/1`` (``schema_version`` 1): ``target``, ``verdict``
(ok / warning / critical / unknown), ``predicted_stall_s``, ``causes`` (purpose, url,
seconds, modelled, text),
``problems`` (code, severity, message), ``findings`` (security findings of the
probe: code, severity, message; they count toward ``verdict`` as problems do),
``fixes`` (id, title, removes, commands (where, command), note), ``retrievals``
(purpose — root_list, aia, crl or ocsp —, url, outcome — ok, http_error, refused,
dns_error, timeout or invalid —, elapsed_ms, status, detail,
certificate, revocation, counted, wait_s, modelled), ``trust`` (trusted, anchor, path,
pin), ``settings`` (the Windows model's figures and our observation time-out),
``probe`` (the ``rdptrust.probe/1`` document) and ``elapsed_ms``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.text import Text

from rdptrust.model.assessment import Assessment, Fix
from rdptrust.model.problems import Problem
from rdptrust.report.jsonform import to_jsonable
from rdptrust.report.probe import probe_document

DIAGNOSIS_SCHEMA = "rdptrust.diagnosis/1"
DIAGNOSIS_SCHEMA_VERSION = 1
#: The findings section's title: findings count toward the verdict as problems do.
FINDINGS_TITLE = "Security findings (counted in the verdict):"
_STYLE = {"ok": "green", "warning": "yellow", "critical": "red", "unknown": "magenta"}


def diagnosis_document(diagnosis: Assessment, fixes: Sequence[Fix] = ()) -> dict[str, Any]:
    """Build the ``rdptrust.diagnosis/1`` JSON document of *diagnosis* and its *fixes*."""
    pin = diagnosis.pin
    return {
        "schema": DIAGNOSIS_SCHEMA,
        "schema_version": DIAGNOSIS_SCHEMA_VERSION,
        "target": str(diagnosis.target),
        "verdict": diagnosis.verdict.value,
        "predicted_stall_s": diagnosis.predicted_stall_s or 0.0,
        "causes": to_jsonable(diagnosis.causes),
        "problems": to_jsonable(diagnosis.problems),
        "fixes": to_jsonable(tuple(fixes)),
        "findings": to_jsonable(diagnosis.findings),
        "retrievals": to_jsonable(diagnosis.retrievals),
        "trust": {
            "trusted": diagnosis.trusted,
            "anchor": diagnosis.anchor,
            "path": list(diagnosis.path_subjects),
            "pin": None
            if pin is None
            else {
                "status": pin.status.value,
                "looks_like_recreation": pin.looks_like_recreation,
                "explanation": pin.explanation,
            },
        },
        "settings": {
            "windows_url_timeout_s": diagnosis.settings.url_timeout_s,
            "windows_revocation_timeout_s": diagnosis.settings.revocation_timeout_s,
            "root_update": diagnosis.settings.root_update,
            "ocsp_first": diagnosis.settings.ocsp_first,
            "observation_url_timeout_s": diagnosis.fetch_timeout_s,
        },
        "revocation_capped": diagnosis.revocation_capped,
        "probe": probe_document(diagnosis.probe),
        "elapsed_ms": diagnosis.elapsed_ms,
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
