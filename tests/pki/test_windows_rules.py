"""The chain engine's arithmetic and gating, rule by rule, as tables (WINDOWS.md §2-§5)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from pki.judgements import CHAIN, TRUSTED, judge
from rdptrust.model.retrieval import FetchOutcome, Purpose
from rdptrust.model.windows import Basis, ClientProfile, RevocationRegime, WindowsSettings
from rdptrust.pki.judge import DISTRUSTED_ASSUMPTION
from rdptrust.pki.prediction import (
    DIRECT_ASSUMPTION,
    LISTS_ASSUMPTION,
    SEQUENCE_ASSUMPTION,
    Wait,
    predict,
)
from rdptrust.pki.rules import NOT_MEASURED
from rdptrust.pki.windows import (
    RevocationEntry,
    accumulative_waits,
    ctl_directory,
    ctl_syncs,
    ctl_url,
    per_url_waits,
    regimes,
    revocation_waits,
)

DEAD = RevocationEntry(0.5, dead=True)

# -- §3: revocation regimes ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("dead", "per_url", "accumulative"),
    [
        (0, 0.0, 0.0),
        (1, 15.0, 10.0),  # WINDOWS.md §3: 1/2/4 dead URLs = 15/30/60 s or 10/15/18.75 s
        (2, 30.0, 15.0),
        (3, 45.0, 17.5),
        (4, 60.0, 18.75),
    ],
)
def test_dead_urls_in_both_regimes(dead: int, per_url: float, accumulative: float) -> None:
    entries = [DEAD] * dead
    assert sum(per_url_waits(entries, 15.0)) == per_url
    assert sum(accumulative_waits(entries, 20.0)) == accumulative


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        # a quick answer costs what it took and leaves the rest of the budget
        ([RevocationEntry(2.0, dead=False), DEAD], (2.0, 9.0)),
        # a slow answer beyond its share times out at the share
        ([RevocationEntry(12.0, dead=False)], (10.0,)),
        ([DEAD, RevocationEntry(3.0, dead=False), DEAD], (10.0, 3.0, 3.5)),
    ],
)
def test_accumulative_shares(entries: list[RevocationEntry], expected: tuple[float, ...]) -> None:
    assert accumulative_waits(entries, 20.0) == pytest.approx(expected)


def test_accumulative_shares_are_halves_of_the_budget_whatever_the_url_time_out() -> None:
    # "each URL tested will timeout after half of the remaining cumulative balance":
    # with the flag the per-URL time-out plays no part (a 60 s budget gives 30 s first)
    assert accumulative_waits([DEAD], 60.0) == (30.0,)
    assert accumulative_waits([DEAD] * 4, 20.0) == (10.0, 5.0, 2.5, 1.25)
    short = WindowsSettings(url_timeout_s=5.0, revocation_timeout_s=20.0)
    assert revocation_waits([DEAD] * 4, RevocationRegime.ACCUMULATIVE, short) == (
        10.0,
        5.0,
        2.5,
        1.25,
    )
    assert revocation_waits([DEAD] * 4, RevocationRegime.PER_URL, short) == (5.0,) * 4


def test_per_url_cuts_slow_answers_at_the_url_time_out() -> None:
    assert per_url_waits([RevocationEntry(20.0, dead=False)], 15.0) == (15.0,)


@pytest.mark.parametrize(
    ("regime", "expected"),
    [
        (RevocationRegime.BOTH, (RevocationRegime.ACCUMULATIVE, RevocationRegime.PER_URL)),
        (RevocationRegime.PER_URL, (RevocationRegime.PER_URL,)),
        (RevocationRegime.ACCUMULATIVE, (RevocationRegime.ACCUMULATIVE,)),
    ],
)
def test_regimes_modelled(regime: RevocationRegime, expected: tuple[RevocationRegime, ...]) -> None:
    assert regimes(WindowsSettings(revocation_timeouts=regime)) == expected


# -- §2, §7: which lists are synced -------------------------------------------------------

R, D, P = Purpose.ROOT_LIST, Purpose.DISALLOWED_LIST, Purpose.PIN_RULES
W7, W81, W10 = ClientProfile.WIN7, ClientProfile.WIN81, ClientProfile.WIN10


@pytest.mark.parametrize(
    ("trusted", "client", "root_update", "disallowed_update", "due", "expected"),
    [
        (False, W10, True, True, True, (R, D, P)),
        (True, W10, True, True, True, (D, P)),  # trusted chains sync the disallowed list
        (False, W10, False, True, True, (D, P)),  # Method 2: the trusted list only
        (False, W10, True, False, True, (R,)),  # EnableDisallowedCertAutoUpdate=0
        (False, W10, False, False, True, ()),
        (False, W10, True, True, False, ()),  # the cached lists are fresh
        (False, W81, True, True, True, (R, D)),  # no pin rules before Windows 10
        (False, W81, False, True, True, (D,)),
        (False, W7, True, True, True, (R, D)),
        (False, W7, False, True, True, ()),  # on Windows 7 Method 2 is the whole fix
        (True, W7, True, False, True, (D,)),  # the 8.1 switch does not exist on 7
    ],
)
def test_list_syncs(
    trusted: bool,
    client: ClientProfile,
    root_update: bool,
    disallowed_update: bool,
    due: bool,
    expected: tuple[Purpose, ...],
) -> None:
    settings = WindowsSettings(
        root_update=root_update, disallowed_update=disallowed_update, ctl_due=due, client=client
    )
    assert ctl_syncs(anchored=trusted, pinned=False, settings=settings) == expected
    # a pinned certificate is in the Root store (Method 1): the same as an anchor
    if trusted:
        assert ctl_syncs(anchored=False, pinned=True, settings=settings) == expected


def test_list_urls_carry_a_random_query_string() -> None:
    base = "http://ctldl.windowsupdate.com/msdownload/update/v3/static/trustedr/en/"
    assert ctl_url(base, "authrootstl.cab", "556e6917") == base + "authrootstl.cab?556e6917"
    assert ctl_url(base.rstrip("/"), "authrootseq.txt", "") == base + "authrootseq.txt"


@pytest.mark.parametrize(
    ("root_list_url", "root_dir_url", "expected"),
    [
        ("http://h/x/en/authrootstl.cab", None, "http://h/x/en/"),
        ("http://h/x/en/", None, "http://h/x/en/"),
        ("http://h/x/en", None, "http://h/x/en/"),
        ("http://h/x/en/authrootstl.cab", "http://mirror/ctl", "http://mirror/ctl/"),
    ],
)
def test_list_folder(root_list_url: str, root_dir_url: str | None, expected: str) -> None:
    assert ctl_directory(root_list_url, root_dir_url) == expected


# -- §5: the first connection and the later ones ------------------------------------------


def _wait(purpose: Purpose, seconds: float, *, dead: bool, cached: bool) -> Wait:
    outcome = FetchOutcome.TIMEOUT if dead else FetchOutcome.OK
    return Wait(purpose, f"http://h/{purpose.value}", outcome, None, seconds, dead, dead, cached)


@pytest.mark.parametrize(
    ("waits", "first", "later"),
    [
        # a slow but answering CRL: the first connection only
        ([_wait(Purpose.CRL, 3.0, dead=False, cached=True)], (3.0, 3.0), (0.0, 0.0)),
        # a black-holed CRL: every connection, in both regimes
        ([_wait(Purpose.CRL, 15.0, dead=True, cached=False)], (10.0, 15.0), (10.0, 15.0)),
        # a failing list sync: every connection
        ([_wait(Purpose.DISALLOWED_LIST, 15.0, dead=True, cached=False)], (15.0,) * 2, (15.0,) * 2),
        # an issuer fetched slowly over AIA: cached
        ([_wait(Purpose.AIA, 2.0, dead=False, cached=True)], (2.0, 2.0), (0.0, 0.0)),
    ],
)
def test_first_and_later_connections(
    waits: list[Wait], first: tuple[float, float], later: tuple[float, float]
) -> None:
    prediction = predict(waits, WindowsSettings()).prediction
    assert (prediction.first_connection.low_s, prediction.first_connection.high_s) == first
    assert (prediction.later_connections.low_s, prediction.later_connections.high_s) == later


def test_every_prediction_says_what_it_does_not_measure() -> None:
    prediction = predict([], WindowsSettings()).prediction
    assert any("CredSSP" in t for t in prediction.not_measured)
    assert any("DNS" in t for t in prediction.not_measured)
    assert "scope-credssp" in {b.rule for b in prediction.basis}


def test_a_black_holed_list_rests_on_an_assumption() -> None:
    waits = [_wait(Purpose.ROOT_LIST, 15.0, dead=True, cached=False)]
    result = predict(waits, WindowsSettings())
    (cause,) = result.causes
    assert (cause.rule, cause.basis.value, cause.later) == ("ctl-fetch-wait", "assumed", True)
    basis = {b.rule: b.status.value for b in result.prediction.basis}
    assert basis["ctl-fetch-wait"] == "assumed"
    assert basis["ctl-trusted-list"] == "documented"


def test_a_silent_list_host_rests_on_the_list_assumption_not_on_the_tcp_give_up() -> None:
    # A list host that drops the SYN: the network rule charges the silent connect, but the
    # figure is the list wait (the give-up, 21 s, is longer), which no document gives
    silent = Wait(
        Purpose.ROOT_LIST,
        "http://h/authrootseq.txt",
        FetchOutcome.TIMEOUT,
        None,
        15.0,
        True,
        True,
        False,
        rule="tcp-connect-giveup",
        basis=Basis.DOCUMENTED,
        note="1 address silent",
    )
    (cause,) = predict([silent], WindowsSettings()).causes
    assert (cause.rule, cause.basis.value) == ("ctl-fetch-wait", "assumed")
    assert "the assumed wait of a blocked list fetch" in cause.text
    # a silent CRL host keeps the documented give-up
    crl = replace(silent, purpose=Purpose.CRL, url="http://h/x.crl")
    (cause,) = predict([crl], WindowsSettings()).causes
    assert (cause.rule, cause.basis.value) == ("tcp-connect-giveup", "documented")


def test_the_unknown_regime_is_an_assumption() -> None:
    (cause,) = predict(
        [_wait(Purpose.OCSP, 15.0, dead=True, cached=False)], WindowsSettings()
    ).causes
    assert (cause.rule, cause.basis.value) == ("revocation-regime-unknown", "assumed")
    chosen = WindowsSettings(revocation_timeouts=RevocationRegime.PER_URL)
    (cause,) = predict([_wait(Purpose.OCSP, 15.0, dead=True, cached=False)], chosen).causes
    assert (cause.rule, cause.basis.value) == ("revocation-per-url", "documented")


def test_pinned_says_it_assumes_method_1() -> None:
    prediction = predict([], WindowsSettings(), pinned=True).prediction
    assert any("Method 1 deployed on the clients" in a for a in prediction.assumptions)
    assert "pin-as-root" in {b.rule for b in prediction.basis}


def test_both_regimes_say_why_there_are_two_figures() -> None:
    waits = [_wait(Purpose.OCSP, 15.0, dead=True, cached=False)]
    prediction = predict(waits, WindowsSettings()).prediction
    assert any("not documented" in a for a in prediction.assumptions)
    one = predict(waits, WindowsSettings(revocation_timeouts=RevocationRegime.PER_URL))
    assert not any("not documented" in a for a in one.prediction.assumptions)


def test_several_list_syncs_added_up_say_so() -> None:
    lists = [
        _wait(Purpose.ROOT_LIST, 15.0, dead=True, cached=False),
        _wait(Purpose.DISALLOWED_LIST, 15.0, dead=True, cached=False),
    ]
    prediction = predict(lists, WindowsSettings()).prediction
    assert prediction.first_connection.high_s == 30.0
    assert LISTS_ASSUMPTION in prediction.assumptions
    one = predict(lists[:1], WindowsSettings()).prediction
    assert LISTS_ASSUMPTION not in one.assumptions


def test_a_direct_path_is_said_to_be_assumed() -> None:
    waits = [_wait(Purpose.CRL, 3.0, dead=False, cached=True)]
    assert (
        DIRECT_ASSUMPTION in predict(waits, WindowsSettings(), direct=True).prediction.assumptions
    )
    assert DIRECT_ASSUMPTION not in predict(waits, WindowsSettings()).prediction.assumptions
    # nothing fetched: nothing to say about the path
    assert (
        DIRECT_ASSUMPTION not in predict([], WindowsSettings(), direct=True).prediction.assumptions
    )


def test_a_host_with_no_certificate_still_says_what_is_not_measured() -> None:
    # WINDOWS.md §1: a prediction of 0 s must say that phase 3 (CredSSP) is not measured
    diagnosed = judge([], retrievals=[])
    assert diagnosed.predicted_stall_s == 0.0
    assert diagnosed.prediction.not_measured == NOT_MEASURED
    assert judge([]).prediction.not_measured == ()


def test_a_distrusted_chain_says_its_waits_are_modelled_anyway() -> None:
    leaf = CHAIN.leaf.cert
    served = [leaf, CHAIN.intermediate.cert]
    distrusted = judge(
        served,
        anchors=TRUSTED,
        retrievals=[],
        disallowed=frozenset({CHAIN.intermediate.cert.public_bytes(Encoding.DER)}),
    )
    assert distrusted.trusted is False
    assert DISTRUSTED_ASSUMPTION in distrusted.prediction.assumptions
    plain = judge(served, anchors=TRUSTED, retrievals=[])
    assert DISTRUSTED_ASSUMPTION not in plain.prediction.assumptions


def test_counting_the_trusted_cab_says_the_sequence_is_assumed_changed() -> None:
    seq = replace(
        _wait(Purpose.ROOT_LIST, 0.1, dead=False, cached=True), url="http://h/authrootseq.txt"
    )
    cab = replace(
        _wait(Purpose.ROOT_LIST, 15.0, dead=True, cached=False), url="http://h/authrootstl.cab?1a2b"
    )
    both = predict([seq, cab], WindowsSettings()).prediction
    assert SEQUENCE_ASSUMPTION in both.assumptions
    alone = predict([seq], WindowsSettings()).prediction
    assert SEQUENCE_ASSUMPTION not in alone.assumptions
