"""The Windows chain-engine model: what each retrieval costs and how waits add up."""

from __future__ import annotations

import pytest

from rdptrust.model.retrieval import FetchOutcome, Purpose
from rdptrust.model.windows import DEFAULT_ROOT_LIST_URL, WindowsSettings
from rdptrust.pki.prediction import Wait, describe, predict
from rdptrust.pki.windows import (
    RevocationAttempt,
    counted_revocation,
    retrieval_wait,
    wants_revocation,
    wants_root_list,
)

DEFAULTS = WindowsSettings()


def test_defaults_are_the_sdk_defaults() -> None:
    assert DEFAULTS.url_timeout_s == 15.0
    assert DEFAULTS.revocation_timeout_s == 20.0
    assert DEFAULTS.root_update is True
    assert DEFAULTS.ocsp_first is True
    assert DEFAULT_ROOT_LIST_URL.startswith("http://ctldl.windowsupdate.com/")
    assert DEFAULT_ROOT_LIST_URL.endswith("/authrootstl.cab")


def test_our_short_time_out_is_modelled_as_a_full_windows_time_out() -> None:
    assert retrieval_wait(FetchOutcome.TIMEOUT, 1002.0, DEFAULTS) == (15.0, True)
    custom = WindowsSettings(url_timeout_s=5.0)
    assert retrieval_wait(FetchOutcome.TIMEOUT, 1002.0, custom) == (5.0, True)


@pytest.mark.parametrize(
    "outcome", [FetchOutcome.REFUSED, FetchOutcome.DNS_ERROR, FetchOutcome.HTTP_ERROR]
)
def test_fast_failures_cost_what_was_observed(outcome: FetchOutcome) -> None:
    seconds, modelled = retrieval_wait(outcome, 35.0, DEFAULTS)
    assert seconds == pytest.approx(0.035)
    assert modelled is False


def test_a_slow_answer_beyond_the_windows_time_out_is_cut_at_it() -> None:
    seconds, modelled = retrieval_wait(FetchOutcome.OK, 18_000.0, DEFAULTS)
    assert seconds == 15.0
    assert modelled is True
    assert retrieval_wait(FetchOutcome.OK, 2_500.0, DEFAULTS) == (2.5, False)


def _wait(purpose: Purpose, seconds: float, outcome: FetchOutcome = FetchOutcome.TIMEOUT) -> Wait:
    url = f"http://pki.example.test/{purpose.value}"
    return Wait(purpose, url, outcome, None, seconds, outcome == FetchOutcome.TIMEOUT)


def test_root_list_time_out_is_the_whole_stall_and_named() -> None:
    root_list = Wait(
        Purpose.ROOT_LIST, DEFAULT_ROOT_LIST_URL, FetchOutcome.TIMEOUT, None, 15.0, True
    )
    prediction = predict([root_list], DEFAULTS)
    assert prediction.seconds == 15.0
    assert prediction.revocation_capped is False
    (cause,) = prediction.causes
    assert cause.purpose == Purpose.ROOT_LIST
    assert cause.modelled is True
    assert cause.text.startswith("root list at ctldl.windowsupdate.com did not answer: about 15 s")
    assert "modelled" in cause.text


def test_three_dead_revocation_urls_give_a_range_over_both_regimes() -> None:
    # WINDOWS.md §3: per URL 3 x 15 s, no cap; accumulative 10 + 5 + 2.5 s of 20 s.
    waits = [_wait(Purpose.OCSP, 15.0), _wait(Purpose.CRL, 15.0), _wait(Purpose.CRL, 15.0)]
    prediction = predict(waits, DEFAULTS)
    assert prediction.seconds == 45.0
    first = prediction.prediction.first_connection
    assert (first.low_s, first.high_s) == (17.5, 45.0)
    assert prediction.revocation_capped is True
    smaller = predict(waits, WindowsSettings(revocation_timeout_s=8.0))
    assert smaller.prediction.first_connection.low_s == 4.0 + 2.0 + 1.0


def test_root_list_is_not_part_of_the_revocation_budget() -> None:
    waits = [
        _wait(Purpose.ROOT_LIST, 15.0),
        _wait(Purpose.AIA, 15.0),
        _wait(Purpose.OCSP, 15.0),
        _wait(Purpose.CRL, 15.0),
    ]
    first = predict(waits, DEFAULTS).prediction.first_connection
    assert (first.low_s, first.high_s) == (15.0 + 15.0 + 10.0 + 5.0, 15.0 + 15.0 + 30.0)


def test_one_dead_revocation_url_is_ten_to_fifteen_seconds() -> None:
    prediction = predict([_wait(Purpose.CRL, 15.0)], DEFAULTS)
    assert prediction.seconds == 15.0
    assert prediction.prediction.first_connection.low_s == 10.0
    assert prediction.revocation_capped is True
    assert prediction.causes[0].text.startswith("CRL at pki.example.test did not answer")


def test_quick_successes_are_no_cause_and_no_stall() -> None:
    waits = [
        _wait(Purpose.OCSP, 0.004, FetchOutcome.OK),
        _wait(Purpose.CRL, 0.003, FetchOutcome.OK),
    ]
    prediction = predict(waits, DEFAULTS)
    assert prediction.seconds == pytest.approx(0.007)
    assert prediction.causes == ()


def test_fast_failures_are_named_with_the_observed_time() -> None:
    prediction = predict([_wait(Purpose.AIA, 0.012, FetchOutcome.REFUSED)], DEFAULTS)
    (cause,) = prediction.causes
    assert cause.modelled is False
    assert (
        cause.text == "issuer certificate (AIA) at pki.example.test refused the connection: 0.0 s"
    )


def test_causes_are_sorted_longest_first() -> None:
    waits = [
        _wait(Purpose.AIA, 0.02, FetchOutcome.DNS_ERROR),
        _wait(Purpose.ROOT_LIST, 15.0),
        _wait(Purpose.CRL, 3.0, FetchOutcome.OK),
    ]
    prediction = predict(waits, DEFAULTS)
    assert [c.purpose for c in prediction.causes] == [
        Purpose.ROOT_LIST,
        Purpose.CRL,
        Purpose.AIA,
    ]
    assert prediction.causes[1].text == "CRL at pki.example.test answered slowly: 3.0 s"


@pytest.mark.parametrize(
    ("outcome", "status", "words"),
    [
        (FetchOutcome.TIMEOUT, None, "did not answer"),
        (FetchOutcome.REFUSED, None, "refused the connection"),
        (FetchOutcome.DNS_ERROR, None, "could not be resolved"),
        (FetchOutcome.HTTP_ERROR, 404, "answered HTTP 404"),
        (FetchOutcome.INVALID, 200, "sent unusable data"),
    ],
)
def test_describe_says_what_happened(outcome: FetchOutcome, status: int | None, words: str) -> None:
    text = describe(Purpose.OCSP, "http://ocsp.example.test/x", outcome, status, 0.5, False)
    assert text == f"OCSP responder at ocsp.example.test {words}: 0.5 s"


@pytest.mark.parametrize(
    ("anchored", "pinned", "root_update", "expected"),
    [
        (False, False, True, True),  # untrusted root, update on: the root list is fetched
        (False, False, False, False),  # Method 2 deployed
        (False, True, True, False),  # pinned (Method 1): in the Root store
        (True, False, True, False),  # ends in a trust anchor
    ],
)
def test_root_list_only_for_an_untrusted_root_with_root_update_on(
    anchored: bool, pinned: bool, root_update: bool, expected: bool
) -> None:
    settings = WindowsSettings(root_update=root_update)
    assert wants_root_list(anchored=anchored, pinned=pinned, settings=settings) is expected


def test_revocation_only_for_a_trusted_chain() -> None:
    assert wants_revocation(anchored=True, pinned=False) is True
    assert wants_revocation(anchored=False, pinned=True) is True
    assert wants_revocation(anchored=False, pinned=False) is False


def _attempts() -> list[RevocationAttempt]:
    return [
        RevocationAttempt(0, Purpose.CRL, answered=False),  # 0: host CRL, no answer
        RevocationAttempt(0, Purpose.OCSP, answered=True),  # 1: host OCSP, good
        RevocationAttempt(1, Purpose.CRL, answered=True),  # 2: intermediate CRL
        RevocationAttempt(0, Purpose.CRL, answered=True),  # 3: host's second CRL URL
    ]


def test_ocsp_first_stops_at_the_first_answer() -> None:
    assert counted_revocation(_attempts(), WindowsSettings(ocsp_first=True)) == {1, 2}


def test_crl_first_tries_crls_in_order_until_one_answers() -> None:
    assert counted_revocation(_attempts(), WindowsSettings(ocsp_first=False)) == {0, 3, 2}


def test_nothing_answers_means_every_url_is_tried() -> None:
    attempts = [
        RevocationAttempt(0, Purpose.OCSP, answered=False),
        RevocationAttempt(0, Purpose.CRL, answered=False),
    ]
    assert counted_revocation(attempts, WindowsSettings()) == {0, 1}
    assert counted_revocation([], WindowsSettings()) == frozenset()


def test_revocation_order_is_top_down_ocsp_first() -> None:
    # ee619754: the chain is checked from the root down; per certificate OCSP, then CRL.
    from rdptrust.pki.windows import revocation_order

    attempts = [
        RevocationAttempt(0, Purpose.CRL, answered=False),
        RevocationAttempt(0, Purpose.OCSP, answered=False),
        RevocationAttempt(1, Purpose.CRL, answered=True),
    ]
    assert revocation_order(attempts, DEFAULTS) == (2, 1, 0)


def test_a_retrieval_not_made_here_is_said_not_measured() -> None:
    # Given a CRL the destination policy kept the exporter from fetching
    skipped = Wait(Purpose.CRL, "http://10.0.0.7/ca.crl", FetchOutcome.SKIPPED, None, 0.0, False)
    answered = Wait(Purpose.OCSP, "http://ocsp.test/", FetchOutcome.OK, 200, 0.05, False)
    # When the waits are added up
    prediction = predict([answered, skipped], WindowsSettings()).prediction
    # Then the figure does not pretend it was measured: not_measured names it
    notes = [n for n in prediction.not_measured if "10.0.0.7" in n]
    assert len(notes) == 1
    assert "destination policy" in notes[0]
    assert "CredSSP/NLA" in prediction.not_measured[0]
    # and a file:// URL, skipped by its scheme and counted as an assumed dead URL, is not
    file_url = Wait(
        Purpose.CRL,
        "file://pki.corp/ca.crl",
        FetchOutcome.SKIPPED,
        None,
        15.0,
        True,
        dead=True,
        rule="file-url",
        own_text=True,
        note="rdptrust does not open file URLs",
    )
    with_file = predict([answered, file_url], WindowsSettings()).prediction
    assert not any("destination policy" in n for n in with_file.not_measured)
    # and a prediction with nothing skipped lists only the standing scope
    plain = predict([answered], WindowsSettings()).prediction
    assert not any("destination policy" in n for n in plain.not_measured)
