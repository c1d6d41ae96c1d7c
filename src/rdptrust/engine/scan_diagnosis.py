"""The scan observer that diagnoses each host (``rdptrust scan --diagnose``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rdptrust.engine.assessment import assess
from rdptrust.engine.options import AssessOptions
from rdptrust.engine.scan_options import Observer, ScanOptions
from rdptrust.model.assessment import Assessment, Retrieval
from rdptrust.model.records import DiagnosisRecord, HostResult, ProblemRecord
from rdptrust.model.target import Target
from rdptrust.model.windows import DEFAULT_ROOT_LIST_URL, WindowsSettings
from rdptrust.pki.pinning import KnownHosts
from rdptrust.pki.trust import load_trust_anchors


def diagnose_options(options: ScanOptions) -> AssessOptions:
    """The assessment settings a scan with *options* uses."""
    ca_files = tuple(Path(f) for f in options.ca_files)
    return AssessOptions(
        probe_timeout_s=options.timeout,
        enumerate=options.enumerate,
        standard_security=False,
        fetch_timeout_s=options.url_timeout,
        # The model keeps Windows' own time-outs; url_timeout is only how long we wait.
        windows=WindowsSettings(root_update=options.root_update),
        root_list_url=options.root_list_url or DEFAULT_ROOT_LIST_URL,
        proxy=options.proxy,
        # loaded once for the whole scan, not once per host
        anchors=load_trust_anchors(system=True, ca_files=ca_files),
        known_hosts=KnownHosts.load(Path(options.known_hosts) if options.known_hosts else None),
    )


def _retrieval(r: Retrieval) -> dict[str, Any]:
    return {
        "purpose": str(r.purpose),
        "url": r.url,
        "outcome": str(r.outcome),
        "elapsed_ms": r.elapsed_ms,
        "status": r.status,
        "counted": r.counted,
        "wait_s": r.wait_s,
        "modelled": r.modelled,
    }


def diagnosis_record(diagnosis: Assessment) -> DiagnosisRecord:
    """What the inventory keeps of a diagnosis."""
    return DiagnosisRecord(
        verdict=str(diagnosis.verdict),
        predicted_stall_s=diagnosis.predicted_stall_s or 0.0,
        problems=tuple(
            ProblemRecord(p.code, str(p.severity), p.message)
            for p in (*diagnosis.problems, *diagnosis.findings)
        ),
        retrievals=tuple(_retrieval(r) for r in diagnosis.retrievals),
    )


def diagnose_observer(options: ScanOptions) -> Observer:
    """Diagnose each host like ``rdptrust diagnose`` (probe with enumeration when asked)."""
    settings = diagnose_options(options)

    async def observe(target: Target) -> HostResult:
        diagnosis = await assess(target, settings)
        return HostResult(diagnosis.probe, None, diagnosis_record(diagnosis))

    return observe
