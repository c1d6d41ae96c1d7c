"""rdptrust's prediction beside the client's own record (``rdptrust capi2 --host``).

Pure: an :class:`~rdptrust.model.assessment.Assessment` (with a diagnosis) and the
chain builds the CAPI2 log holds for its certificate go in; a
:class:`~rdptrust.model.capi2.RecordComparison` comes out. Waits are matched by URL
(without the query string: Windows adds a random one to CTL fetches, WINDOWS.md §2).
Two waits agree when they differ by at most a second or a fifth, whichever is more.
The record settles settings the documents leave open (WINDOWS.md §3, §8): the
revocation regime from the chain flags, the per-URL time-out from a recorded
``Timeout``, whether root update is on from a root-list retrieval or its absence.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from urllib.parse import urlsplit

from rdptrust.model.assessment import Assessment
from rdptrust.model.capi2 import (
    ACCUMULATIVE_FLAG,
    ChainBuild,
    RecordComparison,
    RecordedRetrieval,
    RetrievalSource,
    SettledSetting,
    WaitComparison,
)
from rdptrust.model.retrieval import Purpose
from rdptrust.model.windows import RevocationRegime, WindowsSettings
from rdptrust.protocol.capi2_builds import purpose_of

_REVOCATION = (Purpose.CRL, Purpose.OCSP)
_UNTRUSTED_ROOT = {"CERT_TRUST_IS_UNTRUSTED_ROOT", "CERT_TRUST_IS_PARTIAL_CHAIN"}


def _key(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path}"


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= max(1.0, 0.2 * max(a, b))


def _seconds(retrieval: RecordedRetrieval) -> float:
    return (retrieval.elapsed_ms or 0.0) / 1000.0


def checks_revocation(build: ChainBuild) -> bool:
    """True when the chain build asked for a revocation check (its flags say so)."""
    return any(f.startswith("CERT_CHAIN_REVOCATION_CHECK") for f in build.flags)


def settled_settings(builds: Sequence[ChainBuild]) -> tuple[SettledSetting, ...]:
    """What *builds* (of one client program) settle about the modelled client; a
    setting the builds disagree on is not settled."""
    settled: list[SettledSetting] = []
    checking = [b for b in builds if checks_revocation(b)]
    regimes = {b.revocation_timeouts for b in checking}
    if len(regimes) == 1:
        (regime,) = regimes
        flag = (
            f"name {ACCUMULATIVE_FLAG}"
            if regime == RevocationRegime.ACCUMULATIVE
            else f"check revocation without {ACCUMULATIVE_FLAG}"
        )
        programs = ", ".join(sorted({b.process for b in checking}))
        evidence = f"the chain flags of {len(checking)} chain build(s) of {programs} {flag}"
        timeouts = sorted(
            {
                r.timeout_s
                for b in checking
                for r in b.retrievals
                if r.timeout_s is not None and purpose_of(r) in _REVOCATION
            }
        )
        if timeouts:
            shown = ", ".join(f"PT{t:g}S" for t in timeouts)
            evidence += f"; revocation retrieval time-outs {shown}"
        settled.append(SettledSetting("revocation_timeouts", regime.value, evidence))
    network = [r for b in builds for r in b.retrievals if r.source == RetrievalSource.NETWORK]
    url_timeouts = {
        r.timeout_s
        for r in network
        if r.timeout_s is not None and purpose_of(r) in (Purpose.ROOT_LIST, Purpose.AIA)
    }
    if len(url_timeouts) == 1:
        (value,) = url_timeouts
        settled.append(
            SettledSetting(
                "url_timeout_s",
                f"{value:g}",
                f"root-list/AIA retrievals record Timeout PT{value:g}S",
            )
        )
    if any(purpose_of(r) == Purpose.ROOT_LIST for r in network):
        settled.append(
            SettledSetting("root_update", "on", "the client fetched the trusted-root list")
        )
    elif builds and all(_UNTRUSTED_ROOT & set(b.trust_errors) for b in builds):
        settled.append(
            SettledSetting(
                "root_update",
                "off",
                "the chain ends in an untrusted root and the client fetched no root list",
            )
        )
    return tuple(settled)


def apply_settled(settings: WindowsSettings, settled: Sequence[SettledSetting]) -> WindowsSettings:
    """*settings* with the revocation regime the record settled (others stay as given)."""
    for setting in settled:
        if setting.name == "revocation_timeouts":
            settings = dataclasses.replace(
                settings, revocation_timeouts=RevocationRegime(setting.value)
            )
    return settings


def compare(assessment: Assessment, builds: Sequence[ChainBuild]) -> RecordComparison:
    """The prediction of *assessment* beside the latest of *builds* (those of its
    certificate), wait by wait."""
    leaf = assessment.leaf
    sha1 = leaf.sha1 if leaf is not None else ""
    build = max(builds, key=lambda b: b.started, default=None)
    recorded = [
        r for r in (build.retrievals if build else ()) if r.source == RetrievalSource.NETWORK
    ]
    by_url = {_key(r.url): r for r in recorded}
    waits: list[WaitComparison] = []
    seen: set[str] = set()
    regime = build.revocation_timeouts if build is not None else None
    for predicted in (r for r in assessment.retrievals if r.counted):
        key = _key(predicted.url)
        seen.add(key)
        record = by_url.get(key)
        if record is None:
            waits.append(
                WaitComparison(
                    predicted.purpose.value,
                    predicted.url,
                    predicted.wait_s,
                    None,
                    None,
                    predicted.wait_s < 1.0,
                    _unrecorded_note(predicted.purpose, build),
                )
            )
            continue
        got = _seconds(record)
        agrees = _close(predicted.wait_s, got)
        waits.append(
            WaitComparison(
                predicted.purpose.value,
                predicted.url,
                predicted.wait_s,
                round(got, 3),
                record.result_name or record.result,
                agrees,
                _note(predicted.purpose, predicted.wait_s, record, regime, agrees),
            )
        )
    for record in recorded:
        if _key(record.url) in seen:
            continue
        got = _seconds(record)
        purpose = purpose_of(record)
        waits.append(
            WaitComparison(
                None if purpose is None else purpose.value,
                record.url,
                None,
                round(got, 3),
                record.result_name or record.result,
                got < 1.0,
                "the client made this retrieval; rdptrust did not predict it",
            )
        )
    waits.sort(key=lambda w: -max(w.predicted_s or 0.0, w.recorded_s or 0.0))
    return RecordComparison(
        target=str(assessment.target),
        sha1=sha1,
        task_id=build.task_id if build else None,
        predicted_s=assessment.predicted_stall_s or 0.0,
        recorded_s=None
        if build is None or build.elapsed_ms is None
        else round(build.elapsed_ms / 1000.0, 3),
        waits=tuple(waits),
        settled=settled_settings(builds),
    )


def _unrecorded_note(purpose: Purpose, build: ChainBuild | None) -> str:
    if build is None:
        return "the log holds no chain build of this certificate"
    if purpose == Purpose.ROOT_LIST:
        return (
            "rdptrust predicted this fetch; the client made none: root update is off on"
            " that client (Method 2) or its cached list was not due"
        )
    return (
        "rdptrust predicted this fetch; the client made none (a cached answer, or a"
        " setting that differs)"
    )


def _note(
    purpose: Purpose,
    predicted: float,
    record: RecordedRetrieval,
    regime: RevocationRegime | None,
    agrees: bool,
) -> str:
    result = record.result_name or record.result
    timeout = "" if record.timeout_s is None else f", Timeout PT{record.timeout_s:g}S"
    if agrees:
        return f"agrees: the client waited {_seconds(record):.1f} s ({result}{timeout})"
    text = (
        f"differs: rdptrust modelled {predicted:.1f} s, the client waited"
        f" {_seconds(record):.1f} s ({result}{timeout})"
    )
    if purpose in _REVOCATION and regime is not None:
        text += f"; the client used the {regime.value} revocation regime"
    return text
