"""A stapled OCSP answer comes first in Windows' revocation order (WINDOWS.md §4: stapled
OCSP, URL cache, CRL in a store, OCSP from AIA, CRL DP): a usable one settles the leaf, so
the leaf's black-holed OCSP and CRL URLs cost nothing; a stale one is not used."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from fixtures.documents import assert_valid
from fixtures.lab import LabFactory
from rdptrust.engine import AssessOptions, assess
from rdptrust.lab.runner import Lab
from rdptrust.model.assessment import Assessment
from rdptrust.model.retrieval import Purpose
from rdptrust.model.windows import RevocationRegime, WindowsSettings
from rdptrust.report.diagnosis import diagnosis_document, render_diagnosis

#: WINDOWS.md §3: a dead URL waits 15 s without the accumulative flag; with it, each URL
#: half of what remains of 20 s.
PER_URL_S = 15.0


def _accumulative(dead: int) -> float:
    remaining, total = 20.0, 0.0
    for _ in range(dead):
        wait = min(remaining / 2, PER_URL_S)
        total += wait
        remaining -= wait
    return total


def _options(lab: Lab, tmp_path: Path, **windows: object) -> AssessOptions:
    assert lab.ca_cert_path is not None
    return AssessOptions(
        fetch_timeout_s=1.0,
        probe_timeout_s=5.0,
        root_list_url=lab.root_list_url,
        known_hosts=tmp_path / "known_hosts.json",
        system_trust=False,
        ca_files=(lab.ca_cert_path,),
        windows=WindowsSettings(**windows),  # type: ignore[arg-type]
    )


def _text(diagnosis: Assessment) -> str:
    out = io.StringIO()
    render_diagnosis(diagnosis, Console(file=out, width=300, color_system=None))
    return out.getvalue()


def _leaf_revocation(diagnosis: Assessment) -> list[tuple[bool, str]]:
    leaf = diagnosis.path_subjects[0]
    return [
        (r.counted, r.outcome.value)
        for r in diagnosis.retrievals
        if r.purpose in (Purpose.OCSP, Purpose.CRL) and r.certificate == leaf
    ]


async def test_a_current_staple_removes_the_leafs_waits(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    # Given a CA-issued host that staples a current good answer, every OCSP and CRL URL
    # black-holed
    lab = await lab_factory(cert="ca", tls_mode="stapled", ocsp="blackhole", crl="blackhole")
    diagnosis = await assess(lab.target, _options(lab, tmp_path))
    # Then the leaf's URLs were still fetched and shown (they timed out) but not counted
    leaf = _leaf_revocation(diagnosis)
    assert leaf
    assert all(not counted for counted, _ in leaf)
    assert {outcome for _, outcome in leaf} == {"timeout"}
    # and only the intermediate's CRL waits (it has no OCSP URL and no staple)
    counted = [r for r in diagnosis.retrievals if r.counted and r.purpose == Purpose.CRL]
    assert len(counted) == 1
    assert counted[0].certificate != diagnosis.path_subjects[0]
    first = diagnosis.prediction.first_connection
    assert (first.low_s, first.high_s) == pytest.approx((_accumulative(1), PER_URL_S), abs=0.5)
    # and the prediction says the staple was used, on which rule
    staple = diagnosis.prediction.stapled_ocsp
    assert staple is not None
    assert staple.used
    assert "stapled-ocsp" in {b.rule for b in diagnosis.prediction.basis}
    # the intermediate has no answer; the leaf has the staple's
    unavailable = [p for p in diagnosis.problems if p.code == "revocation-unavailable"]
    assert len(unavailable) == 1
    assert diagnosis.path_subjects[1] in unavailable[0].message
    document = diagnosis_document(diagnosis)
    assert_valid(document)
    assert document["prediction"]["stapled_ocsp"]["used"] is True
    assert _text(diagnosis).count("stapled OCSP answer used (documented order)") == 1


async def test_a_current_staple_and_no_other_wait_predicts_zero(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    # Given the leaf's OCSP and CRL black-holed while the intermediate's CRL answers
    lab = await lab_factory(cert="ca", tls_mode="stapled", ocsp="blackhole")
    diagnosis = await assess(lab.target, _options(lab, tmp_path))
    # Then nothing the client does waits: 0 s for the leaf, and for the chain
    assert diagnosis.prediction.stapled_ocsp is not None
    assert diagnosis.prediction.stapled_ocsp.used
    assert all(not counted for counted, _ in _leaf_revocation(diagnosis))
    assert diagnosis.predicted_stall_s == pytest.approx(0.0, abs=0.5)
    # while without the staple the black-holed OCSP responder is the wait
    plain = await lab_factory(cert="ca", ocsp="blackhole")
    without = await assess(plain.target, _options(plain, tmp_path))
    assert without.prediction.stapled_ocsp is None
    assert without.predicted_stall_s == pytest.approx(PER_URL_S, abs=0.5)


async def test_a_stale_staple_is_not_used(lab_factory: LabFactory, tmp_path: Path) -> None:
    # Given a host stapling an answer whose nextUpdate passed, every URL black-holed
    lab = await lab_factory(cert="ca", tls_mode="stapled-stale", ocsp="blackhole", crl="blackhole")
    diagnosis = await assess(
        lab.target, _options(lab, tmp_path, revocation_timeouts=RevocationRegime.PER_URL)
    )
    # Then the staple is ignored, with the reason, and the usual waits stand: the
    # intermediate's CRL, then the leaf's OCSP and its CRL (OCSP first, none answers)
    staple = diagnosis.prediction.stapled_ocsp
    assert staple is not None
    assert not staple.used
    assert "out of date" in staple.detail
    assert "stapled OCSP answer not used: OCSP answer is out of date" in _text(diagnosis)
    assert [c for c, _ in _leaf_revocation(diagnosis)] == [True, True]
    assert diagnosis.predicted_stall_s == pytest.approx(3 * PER_URL_S, abs=0.5)
    assert "stapled-ocsp" in {b.rule for b in diagnosis.prediction.basis}


async def test_a_stapled_revoked_answer_is_taken(lab_factory: LabFactory, tmp_path: Path) -> None:
    lab = await lab_factory(cert="ca", tls_mode="stapled", ocsp="blackhole", crl="blackhole")
    assert lab.ca is not None
    lab.ca.revoke(lab.credentials.leaf.serial_number)
    diagnosis = await assess(lab.target, _options(lab, tmp_path))
    staple = diagnosis.prediction.stapled_ocsp
    assert staple is not None
    assert staple.used
    assert staple.revoked
    assert "revoked" in {p.code for p in diagnosis.problems}
