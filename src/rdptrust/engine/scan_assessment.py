"""The scan observer: each target assessed as ``rdptrust diagnose`` assesses a host.

Every scan judges every host as :func:`rdptrust.engine.assess` does (trust, pins,
certificate and security findings, verdict); the judgements that need no retrieval run
in batches, the hosts whose probes ended in one turn of the event loop back to back
(:mod:`rdptrust.engine.batching`). ``scan --diagnose`` adds the client's
retrievals and the predicted stall; without it no URL is fetched and the record says
so (``retrievals`` None).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rdptrust.engine.assessment import assess_probe, default_prober, judge_probe, judged_now
from rdptrust.engine.batching import Batch
from rdptrust.engine.client_state import load_client_state, options_with_client_state
from rdptrust.engine.options import AssessOptions
from rdptrust.engine.scan_options import Observer, ScanOptions
from rdptrust.model.assessment import Assessment, Retrieval
from rdptrust.model.probe import ProbeResult
from rdptrust.model.records import DiagnosisRecord, HostResult, ProblemRecord
from rdptrust.model.target import Target
from rdptrust.model.windows import (
    DEFAULT_ROOT_LIST_URL,
    ClientProfile,
    RevocationRegime,
    WindowsSettings,
)
from rdptrust.pki.pinning import KnownHosts
from rdptrust.pki.trust import load_trust_anchors


def assessment_options(options: ScanOptions) -> AssessOptions:
    """The assessment settings a scan with *options* uses (trust loaded once per scan)."""
    ca_files = tuple(Path(f) for f in options.ca_files)
    assess_options = AssessOptions(
        probe_timeout_s=options.timeout,
        enumerate=options.enumerate,
        standard_security=False,
        # which machine answered: one more connection, with --enumerate
        ntlm=options.enumerate,
        diagnose=options.diagnose,
        fetch_timeout_s=options.url_timeout,
        # The model keeps Windows' own time-outs; url_timeout is only how long we wait.
        windows=WindowsSettings(
            root_update=options.root_update,
            revocation_timeouts=RevocationRegime(options.revocation_timeouts),
            disallowed_update=options.disallowed_update,
            ctl_due=options.ctl_due,
            client=ClientProfile(options.client),
            root_dir_url=options.root_dir_url,
            ocsp_first=not options.crl_first,
            domain=options.domain,
            dns_server=options.dns_server,
            list_timeout_s=options.list_timeout,
        ),
        root_list_url=options.root_list_url or DEFAULT_ROOT_LIST_URL,
        proxy=options.proxy,
        pac=options.pac,
        wpad=options.wpad,
        wpad_domain=options.wpad_domain,
        # loaded once for the whole scan, not once per host
        anchors=load_trust_anchors(system=True, ca_files=ca_files),
        known_hosts=KnownHosts.load(Path(options.known_hosts) if options.known_hosts else None),
        ca_files=ca_files,
    )
    if options.client_state is None:
        return assess_options
    # the client's stores replace this machine's; loaded once for the whole scan
    return options_with_client_state(assess_options, load_client_state(Path(options.client_state)))


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


def assessment_record(assessment: Assessment, *, diagnosed: bool) -> DiagnosisRecord:
    """What the inventory keeps of an assessment; *diagnosed* says whether the
    retrievals ran (without them there is no prediction and ``retrievals`` is None)."""
    return DiagnosisRecord(
        verdict=str(assessment.verdict),
        predicted_stall_s=(assessment.predicted_stall_s or 0.0) if diagnosed else None,
        problems=tuple(
            ProblemRecord(p.code, str(p.severity), p.message)
            for p in (*assessment.problems, *assessment.findings)
        ),
        retrievals=tuple(_retrieval(r) for r in assessment.retrievals) if diagnosed else None,
    )


def assessment_observer(options: ScanOptions) -> Observer:
    """Assess each target like ``rdptrust diagnose`` (the retrievals with ``diagnose``)."""
    settings = assessment_options(options)

    def result(assessment: Assessment) -> HostResult:
        return HostResult(
            assessment.probe, None, assessment_record(assessment, diagnosed=settings.diagnose)
        )

    def judged(seen: tuple[Target, ProbeResult, float]) -> HostResult:
        target, probe, start = seen
        return result(judge_probe(target, probe, settings, start=start))

    # the judgements without retrievals run in batches (rdptrust.engine.batching)
    batch = Batch(judged)

    async def observe(target: Target) -> HostResult:
        start = time.monotonic()
        probe = await default_prober(target, settings)
        if judged_now(probe, settings):
            return await batch((target, probe, start))
        return result(await assess_probe(target, probe, settings, start=start))

    return observe
