"""The Windows chain-engine model at its edges: observed figures fed through
:func:`retrieval_wait` into :func:`predict`, with the boundaries of both time-outs."""

from __future__ import annotations

import pytest

from rdptrust.model.retrieval import FetchOutcome, Purpose
from rdptrust.model.windows import RevocationRegime, WaitRange, WindowsSettings
from rdptrust.pki.prediction import Wait, describe, predict
from rdptrust.pki.windows import (
    NOTABLE_WAIT_S,
    RevocationAttempt,
    counted_revocation,
    retrieval_wait,
    wants_revocation,
    wants_root_list,
)

DEFAULTS = WindowsSettings()
CRL_URL = "http://crl.example.test:8080/issuing.crl"
OCSP_URL = "http://ocsp.example.test/"
ROOT_URL = "http://roots.example.test/authrootstl.cab"
AIA_URL = "http://aia.example.test/issuing.crt"


def observed(
    purpose: Purpose,
    url: str,
    outcome: FetchOutcome,
    elapsed_ms: float,
    settings: WindowsSettings = DEFAULTS,
    status: int | None = None,
) -> Wait:
    """A counted wait built from an observation, as diagnose builds it."""
    seconds, modelled = retrieval_wait(outcome, elapsed_ms, settings)
    return Wait(purpose, url, outcome, status, seconds, modelled)


# -- retrieval_wait ----------------------------------------------------------------------------


def test_refused_after_three_milliseconds_costs_three_milliseconds() -> None:
    seconds, modelled = retrieval_wait(FetchOutcome.REFUSED, 3.0, DEFAULTS)
    assert seconds == pytest.approx(0.003)
    assert modelled is False


def test_invalid_data_costs_what_was_observed() -> None:
    seconds, modelled = retrieval_wait(FetchOutcome.INVALID, 250.0, DEFAULTS)
    assert seconds == pytest.approx(0.25)
    assert modelled is False


def test_observed_twenty_seconds_is_cut_at_fifteen_and_modelled() -> None:
    assert retrieval_wait(FetchOutcome.OK, 20_000.0, DEFAULTS) == (15.0, True)


def test_timeout_observed_for_exactly_the_windows_time_is_not_modelled() -> None:
    # When our own observation time-out was as long as Windows', the figure is what we saw.
    assert retrieval_wait(FetchOutcome.TIMEOUT, 15_000.0, DEFAULTS) == (15.0, False)


def test_answer_just_under_the_windows_time_out_is_observed() -> None:
    seconds, modelled = retrieval_wait(FetchOutcome.OK, 14_999.0, DEFAULTS)
    assert seconds == pytest.approx(14.999)
    assert modelled is False


def test_other_url_timeout_cuts_and_stretches() -> None:
    settings = WindowsSettings(url_timeout_s=5.0)
    assert retrieval_wait(FetchOutcome.OK, 7000.0, settings) == (5.0, True)
    seconds, modelled = retrieval_wait(FetchOutcome.OK, 4000.0, settings)
    assert seconds == pytest.approx(4.0)
    assert modelled is False


# -- describe ----------------------------------------------------------------------------------


def test_describe_modelled_timeout_names_host_with_port() -> None:
    text = describe(Purpose.CRL, CRL_URL, FetchOutcome.TIMEOUT, None, 15.0, True)
    assert text == (
        "CRL at crl.example.test:8080 did not answer: about 15 s (modelled: Windows' time-out)"
    )


@pytest.mark.parametrize(
    ("purpose", "label"),
    [
        (Purpose.ROOT_LIST, "root list"),
        (Purpose.AIA, "issuer certificate (AIA)"),
        (Purpose.CRL, "CRL"),
        (Purpose.OCSP, "OCSP responder"),
    ],
)
def test_describe_labels_each_purpose(purpose: Purpose, label: str) -> None:
    text = describe(purpose, "http://h.example.test/x", FetchOutcome.REFUSED, None, 0.01, False)
    assert text == f"{label} at h.example.test refused the connection: 0.0 s"


def test_describe_http_error_without_status() -> None:
    text = describe(Purpose.AIA, AIA_URL, FetchOutcome.HTTP_ERROR, None, 0.2, False)
    assert text == "issuer certificate (AIA) at aia.example.test answered with an error: 0.2 s"


def test_describe_url_without_host_shows_the_url() -> None:
    text = describe(Purpose.AIA, "issuing.crt", FetchOutcome.INVALID, None, 0.0, False)
    assert text == "issuer certificate (AIA) at issuing.crt sent unusable data: 0.0 s"


# -- predict -----------------------------------------------------------------------------------


def test_no_waits_no_stall() -> None:
    prediction = predict([], DEFAULTS)
    assert (prediction.seconds, prediction.causes, prediction.revocation_capped) == (
        0.0,
        (),
        False,
    )


def test_observed_timeout_predicts_fifteen_seconds_named_and_modelled() -> None:
    prediction = predict(
        [observed(Purpose.ROOT_LIST, ROOT_URL, FetchOutcome.TIMEOUT, 1000)], DEFAULTS
    )
    assert prediction.seconds == 15.0
    (cause,) = prediction.causes
    assert (cause.purpose, cause.url, cause.seconds, cause.modelled) == (
        Purpose.ROOT_LIST,
        ROOT_URL,
        15.0,
        True,
    )
    assert "roots.example.test" in cause.text
    assert "modelled" in cause.text


def test_observed_refusal_is_named_but_not_modelled() -> None:
    prediction = predict([observed(Purpose.AIA, AIA_URL, FetchOutcome.REFUSED, 3.0)], DEFAULTS)
    assert prediction.seconds == pytest.approx(0.003)
    (cause,) = prediction.causes
    assert cause.modelled is False
    assert "aia.example.test refused the connection" in cause.text
    assert "modelled" not in cause.text


def test_observed_twenty_second_answer_counts_fifteen_and_says_modelled() -> None:
    wait = observed(Purpose.AIA, AIA_URL, FetchOutcome.OK, 20_000.0, status=200)
    prediction = predict([wait], DEFAULTS)
    assert prediction.seconds == 15.0
    assert prediction.causes[0].seconds == 15.0
    assert "modelled" in prediction.causes[0].text


def test_success_at_the_notable_threshold_is_a_cause_just_below_is_not() -> None:
    below = observed(Purpose.CRL, CRL_URL, FetchOutcome.OK, NOTABLE_WAIT_S * 1000 - 1, status=200)
    at = observed(Purpose.OCSP, OCSP_URL, FetchOutcome.OK, NOTABLE_WAIT_S * 1000, status=200)
    prediction = predict([below, at], DEFAULTS)
    assert [c.purpose for c in prediction.causes] == [Purpose.OCSP]
    assert prediction.seconds == pytest.approx(2 * NOTABLE_WAIT_S - 0.001)


def test_two_observed_revocation_timeouts_give_fifteen_to_thirty() -> None:
    # Given an OCSP responder and a CRL server that both never answer,
    waits = [
        observed(Purpose.OCSP, OCSP_URL, FetchOutcome.TIMEOUT, 1000.0),
        observed(Purpose.CRL, CRL_URL, FetchOutcome.TIMEOUT, 1000.0),
    ]
    # when the waits are added up,
    prediction = predict(waits, DEFAULTS)
    # then per URL it is 15 + 15 s, accumulative 10 + 5 s (WINDOWS.md §3), and each cause
    # carries the longer figure and says the accumulative one.
    first = prediction.prediction.first_connection
    assert (first.low_s, first.high_s) == (15.0, 30.0)
    assert prediction.seconds == 30.0
    assert prediction.revocation_capped is True
    assert [c.seconds for c in prediction.causes] == [15.0, 15.0]
    assert "10.0 s with the accumulative time-out" in prediction.causes[0].text
    assert {c.url for c in prediction.causes} == {OCSP_URL, CRL_URL}


def test_one_regime_chosen_gives_equal_ends() -> None:
    waits = [
        observed(Purpose.OCSP, OCSP_URL, FetchOutcome.TIMEOUT, 500.0),
        observed(Purpose.CRL, CRL_URL, FetchOutcome.TIMEOUT, 500.0),
    ]
    per_url = WindowsSettings(revocation_timeouts=RevocationRegime.PER_URL)
    accumulative = WindowsSettings(revocation_timeouts=RevocationRegime.ACCUMULATIVE)
    assert predict(waits, per_url).prediction.first_connection == WaitRange(30.0, 30.0)
    assert predict(waits, accumulative).prediction.first_connection == WaitRange(15.0, 15.0)


def test_root_list_and_aia_timeouts_add_up_without_a_cap() -> None:
    waits = [
        observed(Purpose.ROOT_LIST, ROOT_URL, FetchOutcome.TIMEOUT, 1000.0),
        observed(Purpose.AIA, AIA_URL, FetchOutcome.TIMEOUT, 1000.0),
    ]
    prediction = predict(waits, DEFAULTS)
    assert prediction.seconds == 30.0
    assert prediction.revocation_capped is False


def test_other_settings_change_every_figure() -> None:
    settings = WindowsSettings(url_timeout_s=4.0, revocation_timeout_s=6.0)
    waits = [
        observed(Purpose.ROOT_LIST, ROOT_URL, FetchOutcome.TIMEOUT, 900.0, settings),
        observed(Purpose.OCSP, OCSP_URL, FetchOutcome.TIMEOUT, 900.0, settings),
        observed(Purpose.CRL, CRL_URL, FetchOutcome.TIMEOUT, 900.0, settings),
    ]
    prediction = predict(waits, settings)
    first = prediction.prediction.first_connection
    # per URL: 4 + 4 + 4; accumulative: 4 + min(3, 4) + min(1.5, 4) of a 6 s budget
    assert (first.low_s, first.high_s) == (4.0 + 3.0 + 1.5, 12.0)
    assert prediction.revocation_capped is True
    texts = [c.text for c in prediction.causes]
    assert sum("about 4 s (modelled" in t for t in texts) == 3


def test_prediction_and_causes_are_rounded_to_milliseconds() -> None:
    prediction = predict([observed(Purpose.AIA, AIA_URL, FetchOutcome.REFUSED, 1.23456)], DEFAULTS)
    assert prediction.seconds == 0.001
    assert prediction.causes[0].seconds == 0.001


# -- what Windows fetches ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("anchored", "pinned", "root_update", "expected"),
    [
        (False, False, True, True),
        (False, False, False, False),
        (True, False, True, False),
        (False, True, True, False),
    ],
)
def test_root_list_only_for_an_untrusted_root_with_update_on(
    anchored: bool, pinned: bool, root_update: bool, expected: bool
) -> None:
    settings = WindowsSettings(root_update=root_update)
    assert wants_root_list(anchored=anchored, pinned=pinned, settings=settings) is expected


@pytest.mark.parametrize(
    ("anchored", "pinned", "expected"),
    [(False, False, False), (True, False, True), (False, True, True), (True, True, True)],
)
def test_revocation_only_for_a_trusted_chain(anchored: bool, pinned: bool, expected: bool) -> None:
    assert wants_revocation(anchored=anchored, pinned=pinned) is expected


def test_answered_ocsp_spares_the_crl() -> None:
    attempts = [
        RevocationAttempt(0, Purpose.CRL, answered=True),
        RevocationAttempt(0, Purpose.OCSP, answered=True),
    ]
    assert counted_revocation(attempts, DEFAULTS) == frozenset({1})


def test_unanswered_ocsp_falls_back_to_the_crl() -> None:
    attempts = [
        RevocationAttempt(0, Purpose.OCSP, answered=False),
        RevocationAttempt(0, Purpose.CRL, answered=True),
    ]
    assert counted_revocation(attempts, DEFAULTS) == frozenset({0, 1})


def test_crl_first_setting_reverses_the_order() -> None:
    attempts = [
        RevocationAttempt(0, Purpose.OCSP, answered=True),
        RevocationAttempt(0, Purpose.CRL, answered=True),
    ]
    crl_first = WindowsSettings(ocsp_first=False)
    assert counted_revocation(attempts, crl_first) == frozenset({1})
    assert counted_revocation(attempts, DEFAULTS) == frozenset({0})


def test_each_certificate_is_counted_on_its_own() -> None:
    attempts = [
        RevocationAttempt(0, Purpose.OCSP, answered=False),
        RevocationAttempt(1, Purpose.OCSP, answered=True),
        RevocationAttempt(0, Purpose.CRL, answered=False),
        RevocationAttempt(1, Purpose.CRL, answered=True),
        RevocationAttempt(0, Purpose.CRL, answered=True),
        RevocationAttempt(0, Purpose.CRL, answered=False),
    ]
    # Certificate 0: OCSP fails, both CRLs in order up to the one that answers; the one
    # after it is not made. Certificate 1: OCSP answers, its CRL is not made.
    assert counted_revocation(attempts, DEFAULTS) == frozenset({0, 2, 4, 1})


def test_no_attempts_nothing_counted() -> None:
    assert counted_revocation([], DEFAULTS) == frozenset()
