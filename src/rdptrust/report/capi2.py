"""Renderers for a CAPI2 log: the ``rdptrust.capi2/1`` JSON document and a text report.

The keys are described in ``schemas/capi2.schema.json`` (and the README table made from
it). Every string taken from the log is written as the log has it in JSON and with its
control characters escaped (:func:`~rdptrust.pki.names.printable_text`) in text, which
is printed as rich ``Text`` so no markup in a log is ever interpreted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.text import Text

from rdptrust.fix.capi2 import fixes_for_purpose
from rdptrust.model.capi2 import (
    Capi2Log,
    ChainBuild,
    RecordComparison,
    RecordedRetrieval,
    SettledSetting,
)
from rdptrust.pki.names import printable_text
from rdptrust.protocol.capi2_builds import RecordedWait, stall_waits
from rdptrust.report.jsonform import timestamp

CAPI2_SCHEMA = "rdptrust.capi2/1"
CAPI2_SCHEMA_VERSION = 1


def capi2_document(
    log: Capi2Log,
    builds: Sequence[ChainBuild],
    settled: Sequence[SettledSetting] = (),
    comparison: RecordComparison | None = None,
) -> dict[str, Any]:
    """The ``rdptrust.capi2/1`` document of the chain builds *builds* of *log*."""
    return {
        "schema": CAPI2_SCHEMA,
        "schema_version": CAPI2_SCHEMA_VERSION,
        "events_read": log.events,
        "duplicate_events": log.duplicates,
        "processes": dict(log.processes),
        "rdp_chain_builds": sum(1 for b in log.chain_builds if b.rdp),
        "chain_builds": [chain_build_document(b) for b in builds],
        "waits": [wait_document(w) for w in stall_waits(builds)],
        "settled": [settled_document(s) for s in settled],
        "comparison": None if comparison is None else comparison_document(comparison),
    }


def chain_build_document(build: ChainBuild) -> dict[str, Any]:
    """One recorded chain build."""
    return {
        "task_id": build.task_id,
        "process": build.process,
        "certificate": {"subject": build.subject, "sha1": build.sha1},
        "flags": list(build.flags),
        "revocation_timeouts": build.revocation_timeouts.value,
        "started": timestamp(build.started),
        "elapsed_ms": build.elapsed_ms,
        "trust_errors": list(build.trust_errors),
        "retrievals": [retrieval_document(r) for r in build.retrievals],
    }


def retrieval_document(retrieval: RecordedRetrieval) -> dict[str, Any]:
    """One recorded retrieval."""
    return {
        "source": retrieval.source.value,
        "url": retrieval.url,
        "object": retrieval.object,
        "timeout_s": retrieval.timeout_s,
        "elapsed_ms": retrieval.elapsed_ms,
        "proxy_action": retrieval.proxy_action,
        "result": retrieval.result,
        "result_name": retrieval.result_name,
    }


def wait_document(wait: RecordedWait) -> dict[str, Any]:
    """One wait of the recorded stall, with its fixes."""
    return {
        "task_id": wait.build.task_id,
        "process": wait.build.process,
        "url": wait.retrieval.url,
        "purpose": None if wait.purpose is None else wait.purpose.value,
        "elapsed_ms": wait.retrieval.elapsed_ms,
        "result": wait.retrieval.result,
        "result_name": wait.retrieval.result_name,
        "fixes": [
            {"id": f.id.value, "title": f.title, "command": f.command}
            for f in fixes_for_purpose(wait.purpose)
        ],
    }


def settled_document(setting: SettledSetting) -> dict[str, Any]:
    return {"setting": setting.name, "observed": setting.value, "evidence": setting.evidence}


def comparison_document(comparison: RecordComparison) -> dict[str, Any]:
    """The prediction beside the record, wait by wait."""
    return {
        "target": comparison.target,
        "sha1": comparison.sha1,
        "task_id": comparison.task_id,
        "agrees": comparison.agrees,
        "predicted_stall_s": comparison.predicted_s,
        "recorded_s": comparison.recorded_s,
        "waits": [
            {
                "purpose": w.purpose,
                "url": w.url,
                "predicted_s": w.predicted_s,
                "recorded_s": w.recorded_s,
                "result_name": w.result,
                "agrees": w.agrees,
                "note": w.note,
            }
            for w in comparison.waits
        ],
    }


def _t(text: str | None) -> str:
    return printable_text(text) if text else "-"


def _result(retrieval: RecordedRetrieval) -> str:
    name = f" {retrieval.result_name}" if retrieval.result_name else ""
    return f"{retrieval.result}{name}"


def render_capi2(
    log: Capi2Log,
    builds: Sequence[ChainBuild],
    console: Console,
    settled: Sequence[SettledSetting] = (),
    comparison: RecordComparison | None = None,
) -> None:
    """The chain builds, each with its retrievals, then the waits and their fixes."""
    held = ", ".join(f"{_t(p)} {n}" for p, n in log.processes.items()) or "none"
    console.print(
        Text(
            f"CAPI2 log: {log.events} events"
            + (f" ({log.duplicates} more read twice, counted once)" if log.duplicates else "")
            + f", {len(log.chain_builds)} chain builds (by process: {held})",
            style="bold",
        )
    )
    if not any(b.rdp for b in log.chain_builds):
        console.print(
            Text(
                "No RDP (mstsc.exe) chain build in this log: it shows the other processes'"
                " builds below, not a Remote Desktop connection.",
                style="yellow",
            )
        )
    if not builds:
        console.print(Text("No chain build matches the filters.", style="yellow"))
    for build in builds:
        _render_build(console, build)
    waits = stall_waits(builds)
    console.print()
    if waits:
        console.print(Text("The waits that made the stall, largest first:", style="bold"))
        for wait in waits:
            r = wait.retrieval
            seconds = "?" if r.elapsed_ms is None else f"{r.elapsed_ms / 1000.0:.1f} s"
            console.print(
                Text(
                    f"  {seconds:>8}  {_t(r.url)}  {_result(r)}  ({_t(wait.build.process)},"
                    f" task {_t(wait.build.task_id)})"
                )
            )
            for fix in fixes_for_purpose(wait.purpose):
                console.print(Text(f"            fix [{fix.id.value}]: {fix.title}", style="dim"))
                console.print(Text(f"              {fix.command}", style="dim"))
    else:
        console.print(Text("No retrieval failed or took 0.5 s or more: no recorded stall."))
    if settled:
        console.print()
        whom = (
            "the RDP client (mstsc.exe)"
            if any(b.rdp for b in builds)
            else "these processes (not the RDP client)"
        )
        console.print(Text(f"What the record settles about {whom}:", style="bold"))
        for setting in settled:
            console.print(Text(f"  {setting.name} = {setting.value}: {_t(setting.evidence)}"))
    if comparison is not None:
        _render_comparison(console, comparison)


def _render_build(console: Console, build: ChainBuild) -> None:
    elapsed = "?" if build.elapsed_ms is None else f"{build.elapsed_ms:.0f} ms"
    console.print()
    console.print(
        Text.assemble(
            (f"{_t(build.process)}", "bold"),
            f"  {timestamp(build.started)}  {elapsed}  task {_t(build.task_id)}",
        )
    )
    console.print(Text(f"  certificate: {_t(build.subject)}  SHA-1 {_t(build.sha1)}"))
    flags = " | ".join(_t(f) for f in build.flags) or "none"
    console.print(Text(f"  flags: {flags}  (revocation: {build.revocation_timeouts.value})"))
    if build.trust_errors:
        errors = ", ".join(_t(e) for e in build.trust_errors)
        console.print(Text(f"  trust errors: {errors}", style="yellow"))
    for r in build.retrievals:
        took = "?" if r.elapsed_ms is None else f"{r.elapsed_ms:.0f} ms"
        timeout = "" if r.timeout_s is None else f" timeout {r.timeout_s:g} s"
        proxy = "" if r.proxy_action is None else f" proxy {_t(r.proxy_action)}"
        console.print(
            Text(
                f"    {r.source.value:<7} {took:>9}  {_t(r.url)}  {_t(r.object)}{timeout}"
                f"{proxy}  {_result(r)}",
                style="red" if r.failed else "",
            )
        )


def _render_comparison(console: Console, comparison: RecordComparison) -> None:
    console.print()
    recorded = "-" if comparison.recorded_s is None else f"{comparison.recorded_s:.1f} s"
    console.print(
        Text(
            f"Model against record for {_t(comparison.target)} (SHA-1 {comparison.sha1}):"
            f" predicted {comparison.predicted_s:.1f} s, recorded {recorded}",
            style="bold",
        )
    )
    if comparison.task_id is None:
        console.print(Text("  the log holds no chain build of this certificate", style="yellow"))
    for w in comparison.waits:
        predicted = "-" if w.predicted_s is None else f"{w.predicted_s:.1f} s"
        got = "-" if w.recorded_s is None else f"{w.recorded_s:.1f} s"
        mark = "same" if w.agrees else "DIFFERS"
        console.print(
            Text(
                f"  {mark:<7} {w.purpose or '?':<9} model {predicted:>7}  record {got:>7}"
                f"  {_t(w.url)}",
                style="green" if w.agrees else "red",
            )
        )
        console.print(Text(f"          {_t(w.note)}", style="dim"))
    if comparison.agrees is None:
        verdict = (
            "model and record: nothing to compare (record the log while Remote Desktop connects)"
        )
    else:
        verdict = f"model and record {'agree' if comparison.agrees else 'differ'}"
    console.print(Text(f"  {verdict}", style="bold"))
    if any(s.name == "revocation_timeouts" for s in comparison.settled):
        console.print(
            Text(
                "  'rdptrust diagnose HOST --assume-from-capi2 FILE' models the revocation"
                " regime this record shows",
                style="dim",
            )
        )
