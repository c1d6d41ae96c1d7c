"""The revocation order is a setting of the model: OCSP then CRL (default) or CRL first.
Windows stops at the first retrieval that answers; only those it makes are counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.lab import LabFactory
from rdptrust.engine import AssessOptions, assess
from rdptrust.lab.runner import Lab
from rdptrust.model.assessment import Assessment
from rdptrust.model.retrieval import Purpose
from rdptrust.model.windows import WindowsSettings


def _options(lab: Lab, tmp_path: Path, *, ocsp_first: bool) -> AssessOptions:
    assert lab.ca_cert_path is not None
    return AssessOptions(
        fetch_timeout_s=1.0,
        probe_timeout_s=5.0,
        root_list_url=lab.root_list_url,
        known_hosts=tmp_path / "known_hosts.json",
        system_trust=False,
        ca_files=(lab.ca_cert_path,),
        windows=WindowsSettings(ocsp_first=ocsp_first),
    )


def _leaf_counted(diagnosis: Assessment) -> list[tuple[str, str]]:
    """(purpose, outcome) of the counted retrievals about the host certificate, in order."""
    leaf = diagnosis.path_subjects[0]
    return [
        (r.purpose.value, r.outcome.value)
        for r in diagnosis.retrievals
        if r.counted and r.certificate == leaf
    ]


async def test_crl_black_holed_ocsp_first_and_crl_first(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    # Given a CA-issued host whose CRLs (host and intermediate) black-hole, OCSP answers
    lab = await lab_factory(cert="ca", crl="blackhole")
    # When OCSP is tried first, the host certificate is settled by OCSP; only the
    # intermediate's CRL (it has no OCSP URL) waits
    first = await assess(lab.target, _options(lab, tmp_path, ocsp_first=True))
    assert sorted(_leaf_counted(first)) == [("ocsp", "ok")]
    # (WINDOWS.md §3: 15 s per URL, 10 s with the accumulative time-out)
    assert first.predicted_stall_s == pytest.approx(15.0, abs=1.0)
    assert first.prediction.first_connection.low_s == pytest.approx(10.0, abs=1.0)
    # and the host's CRL was still fetched, shown, but not counted
    leaf_crl = [
        r
        for r in first.retrievals
        if r.purpose == Purpose.CRL and r.certificate == first.path_subjects[0]
    ]
    assert [r.counted for r in leaf_crl] == [False]
    assert leaf_crl[0].wait_s == 0.0
    # When CRL is tried first, the host's CRL waits too: 15 + 15 s per URL, 10 + 5 s
    # accumulative
    crl_first = await assess(lab.target, _options(lab, tmp_path, ocsp_first=False))
    assert sorted(_leaf_counted(crl_first)) == [("crl", "timeout"), ("ocsp", "ok")]
    assert crl_first.predicted_stall_s == pytest.approx(30.0, abs=1.0)
    assert crl_first.prediction.first_connection.low_s == pytest.approx(15.0, abs=1.0)
    assert crl_first.revocation_capped is True


async def test_ocsp_black_holed_is_skipped_by_crl_first(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    # Given a CA-issued host whose OCSP responder black-holes while CRLs answer
    lab = await lab_factory(cert="ca", ocsp="blackhole", require="HYBRID")
    # When OCSP goes first, its time-out is the wait, then the CRL answers
    first = await assess(lab.target, _options(lab, tmp_path, ocsp_first=True))
    assert sorted(_leaf_counted(first)) == [("crl", "ok"), ("ocsp", "timeout")]
    assert first.predicted_stall_s == pytest.approx(15.0, abs=1.0)
    assert first.causes[0].purpose == Purpose.OCSP
    assert first.causes[0].modelled is True
    # When CRL goes first it answers and OCSP is never asked: no wait
    crl_first = await assess(lab.target, _options(lab, tmp_path, ocsp_first=False))
    assert _leaf_counted(crl_first) == [("crl", "ok")]
    assert crl_first.predicted_stall_s < 1.0
    assert crl_first.verdict == "ok", crl_first.problems


def _root_list_options(lab: Lab, tmp_path: Path) -> AssessOptions:
    """A short observation window, the lab's root list, no pins, no system trust."""
    return AssessOptions(
        fetch_timeout_s=1.0,
        probe_timeout_s=5.0,
        root_list_url=lab.root_list_url,
        known_hosts=tmp_path / "known_hosts.json",
        system_trust=False,
    )


@pytest.mark.parametrize(
    ("mode", "outcome"),
    [("garbage", "invalid"), ("404", "http_error")],
)
async def test_root_list_fast_failures_cost_what_was_observed(
    lab_factory: LabFactory, tmp_path: Path, mode: str, outcome: str
) -> None:
    # Given a self-signed host and a root list that fails fast in each way
    lab = await lab_factory(cert="self-signed", root_list=mode)
    options = _root_list_options(lab, tmp_path)
    # When diagnosing
    result = await assess(lab.target, options)
    # Then the root list retrieval is classified, counted, not modelled, and cheap
    (root_list,) = [r for r in result.retrievals if r.purpose == Purpose.ROOT_LIST]
    assert root_list.outcome.value == outcome
    assert root_list.counted is True
    assert root_list.modelled is False
    assert root_list.wait_s == pytest.approx(root_list.elapsed_ms / 1000.0, abs=0.01)
    assert result.predicted_stall_s < 1.0
    assert "predicted-stall" not in {p.code for p in result.problems}


async def test_a_refused_root_list_is_charged_as_windows_pays(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    # Given a self-signed host whose root list server refuses connections
    lab = await lab_factory(cert="self-signed", root_list="refuse")
    options = _root_list_options(lab, tmp_path)
    # When diagnosing
    result = await assess(lab.target, options)
    # Then the refusal is fast here but charged what Windows pays: about 2 s per address
    # (WINDOWS.md §6), with its connect listed
    (root_list,) = [r for r in result.retrievals if r.purpose == Purpose.ROOT_LIST]
    assert root_list.outcome.value == "refused"
    assert [a.outcome.value for a in root_list.connects] == ["refused"]
    assert root_list.elapsed_ms < 1000.0
    assert root_list.modelled is True
    assert root_list.wait_s == pytest.approx(2.0)
