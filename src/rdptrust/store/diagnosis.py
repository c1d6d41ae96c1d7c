"""The scan observer that diagnoses each host (``rdptrust scan --diagnose``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rdptrust.model.records import DiagnosisRecord, HostResult, ProblemRecord
from rdptrust.net.probe import ProbeResult, probe_host
from rdptrust.net.target import Target
from rdptrust.pki.diagnose import DiagnoseOptions, Diagnosis, Retrieval, diagnose
from rdptrust.pki.trust import load_trust_anchors
from rdptrust.pki.windows import DEFAULT_ROOT_LIST_URL, WindowsSettings
from rdptrust.store.options import Observer, ScanOptions


def diagnose_options(options: ScanOptions) -> DiagnoseOptions:
    """The diagnosis settings a scan with *options* uses."""
    ca_files = tuple(Path(f) for f in options.ca_files)
    return DiagnoseOptions(
        probe_timeout=options.timeout,
        url_timeout=options.url_timeout,
        # The model keeps Windows' own time-outs; url_timeout is only how long we wait.
        windows=WindowsSettings(root_update=options.root_update),
        root_list_url=options.root_list_url or DEFAULT_ROOT_LIST_URL,
        ca_files=ca_files,
        known_hosts=Path(options.known_hosts) if options.known_hosts else None,
        # loaded once for the whole scan, not once per host
        anchors=load_trust_anchors(system=True, ca_files=ca_files),
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


def diagnosis_record(diagnosis: Diagnosis) -> DiagnosisRecord:
    """What the inventory keeps of a diagnosis."""
    return DiagnosisRecord(
        verdict=str(diagnosis.verdict),
        predicted_stall_s=diagnosis.predicted_stall_s,
        problems=tuple(
            ProblemRecord(p.code, str(p.severity), p.message)
            for p in (*diagnosis.problems, *diagnosis.findings)
        ),
        retrievals=tuple(_retrieval(r) for r in diagnosis.retrievals),
    )


def diagnose_observer(options: ScanOptions) -> Observer:
    """Diagnose each host like ``rdptrust diagnose`` (probe with enumeration when asked)."""
    settings = diagnose_options(options)

    async def prober(target: Target) -> ProbeResult:
        return await probe_host(
            target,
            timeout=options.timeout,
            enumerate_protocols=options.enumerate,
            enumerate_tls_versions=options.enumerate,
            standard_security=False,
            ntlm=False,
        )

    async def observe(target: Target) -> HostResult:
        diagnosis = await diagnose(target, settings, prober=prober)
        return HostResult(diagnosis.probe, None, diagnosis_record(diagnosis))

    return observe
