"""The staple and revocation-order rules, table-tested without sockets (WINDOWS.md §4)."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509

from rdptrust.lab.certs import CertKind, LabCa, make_host_credentials
from rdptrust.lab.pki.content import ocsp_answer
from rdptrust.model.retrieval import FetchOutcome, Purpose
from rdptrust.model.windows import StapleUse, WindowsSettings
from rdptrust.pki.prediction import Wait, predict, staple_text
from rdptrust.pki.revocation import ocsp_request
from rdptrust.pki.rules import CRL_FIRST_ASSUMPTION, rule
from rdptrust.pki.stapling import staple_use
from rdptrust.pki.windows import (
    RevocationAttempt,
    revocation_methods,
    revocation_order,
    stapled_skips,
)

OCSP_FIRST = WindowsSettings()
CRL_FIRST = WindowsSettings(ocsp_first=False)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [(OCSP_FIRST, (Purpose.OCSP, Purpose.CRL)), (CRL_FIRST, (Purpose.CRL, Purpose.OCSP))],
)
def test_revocation_methods(settings: WindowsSettings, expected: tuple[Purpose, ...]) -> None:
    assert revocation_methods(settings) == expected


# attempts: leaf (index 0) OCSP and CRL, intermediate (index 1) CRL
_A = RevocationAttempt


@pytest.mark.parametrize(
    ("attempts", "settings", "expected"),
    [
        # OCSP answers: its CRL is never fetched
        ([_A(0, Purpose.OCSP, True), _A(0, Purpose.CRL, True)], OCSP_FIRST, (0,)),
        # CRL first: the CRL answers and OCSP is never asked
        ([_A(0, Purpose.OCSP, True), _A(0, Purpose.CRL, True)], CRL_FIRST, (1,)),
        # CRL first but dead: then OCSP
        ([_A(0, Purpose.OCSP, True), _A(0, Purpose.CRL, False)], CRL_FIRST, (1, 0)),
        # top down: the intermediate first, in either order
        (
            [_A(0, Purpose.OCSP, False), _A(0, Purpose.CRL, False), _A(1, Purpose.CRL, False)],
            OCSP_FIRST,
            (2, 0, 1),
        ),
        (
            [_A(0, Purpose.OCSP, False), _A(0, Purpose.CRL, False), _A(1, Purpose.CRL, False)],
            CRL_FIRST,
            (2, 1, 0),
        ),
    ],
)
def test_revocation_order_follows_the_setting(
    attempts: list[RevocationAttempt], settings: WindowsSettings, expected: tuple[int, ...]
) -> None:
    assert revocation_order(attempts, settings) == expected


@pytest.mark.parametrize(
    ("index", "used", "skips"), [(0, True, True), (1, True, False), (0, False, False)]
)
def test_a_used_staple_settles_the_leaf_only(index: int, used: bool, skips: bool) -> None:
    assert stapled_skips(index, staple_used=used) is skips


_DEAD = Wait(Purpose.CRL, "http://crl.test/a.crl", FetchOutcome.TIMEOUT, None, 15.0, True, True)


def test_crl_first_is_in_the_basis_and_assumed() -> None:
    forecast = predict([_DEAD], CRL_FIRST).prediction
    basis = {b.rule: b.status.value for b in forecast.basis}
    assert basis["crl-before-ocsp"] == "documented"
    assert "ee619783" in rule("crl-before-ocsp").source
    assert CRL_FIRST_ASSUMPTION in forecast.assumptions
    default = predict([_DEAD], OCSP_FIRST).prediction
    assert "crl-before-ocsp" not in {b.rule for b in default.basis}
    assert CRL_FIRST_ASSUMPTION not in default.assumptions


def test_the_staple_is_part_of_the_prediction() -> None:
    used = StapleUse(True, "good (OCSP, signed by the issuer)")
    forecast = predict([], OCSP_FIRST, staple=used).prediction
    assert forecast.stapled_ocsp == used
    assert "stapled-ocsp" in {b.rule for b in forecast.basis}
    assert staple_text(used).startswith("stapled OCSP answer used (documented order)")
    stale = StapleUse(False, "OCSP answer is out of date")
    assert staple_text(stale) == "stapled OCSP answer not used: OCSP answer is out of date"
    assert predict([], OCSP_FIRST).prediction.stapled_ocsp is None


@pytest.fixture(scope="module")
def lab() -> tuple[LabCa, list[x509.Certificate]]:
    ca = LabCa.generate()
    host = make_host_credentials(CertKind.CA, ca=ca)
    return ca, [host.leaf, ca.intermediate, ca.root]


NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def _staple(ca: LabCa, path: list[x509.Certificate], made: dt.datetime = NOW) -> bytes:
    return ocsp_answer(ca, ocsp_request(path[0], path[1]), made)


def test_a_current_good_staple_is_used(lab: tuple[LabCa, list[x509.Certificate]]) -> None:
    ca, path = lab
    use = staple_use(_staple(ca, path), path, now=NOW)
    assert use is not None
    assert use.used
    assert not use.revoked


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("stale", "out of date"),
        ("future", "made in the future"),
        ("wrong-issuer", "another issuer"),
        ("no-issuer", "issuer is not known"),
        ("garbage", "not an OCSP response"),
    ],
)
def test_an_unusable_staple_is_not_used_and_says_why(
    lab: tuple[LabCa, list[x509.Certificate]], case: str, reason: str
) -> None:
    ca, path = lab
    staple, judged = _staple(ca, path), path
    if case == "stale":
        staple = _staple(ca, path, NOW - dt.timedelta(days=2))
    elif case == "future":
        staple = _staple(ca, path, NOW + dt.timedelta(days=2))
    elif case == "wrong-issuer":
        judged = [path[0], LabCa.generate().intermediate]
    elif case == "no-issuer":
        judged = path[:1]
    elif case == "garbage":
        staple = b"\x30\x03\x0a\x01\x00"
    use = staple_use(staple, judged, now=NOW)
    assert use is not None
    assert not use.used
    assert reason in use.detail


def test_a_revoked_staple_is_used_and_says_revoked(
    lab: tuple[LabCa, list[x509.Certificate]],
) -> None:
    ca, _ = lab
    other = make_host_credentials(CertKind.CA, ca=ca)
    ca.revoke(other.leaf.serial_number)
    chain = [other.leaf, ca.intermediate]
    use = staple_use(_staple(ca, chain), chain, now=NOW)
    assert use is not None
    assert use.used
    assert use.revoked
    assert staple_use(None, chain, now=NOW) is None
