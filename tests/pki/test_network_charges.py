"""What Windows pays for a retrieval's connects (rdptrust.pki.network), table-tested.

The expected figures come from WINDOWS.md §6, not from the code: a refused or reset
connect costs about 2 s per address on Windows (libuv PR 2896: 2002-2011 ms measured),
a silent one min(URL time-out, 21 s) (KB 2786464); the whole is cut at the URL time-out.
"""

from __future__ import annotations

import pytest

from rdptrust.model.retrieval import ConnectAttempt, ConnectOutcome, FetchOutcome, Purpose
from rdptrust.model.windows import Basis, WindowsSettings
from rdptrust.pki.network import connect_charge, network_wait
from rdptrust.pki.prediction import Wait, predict
from rdptrust.pki.rules import rule

WIN = WindowsSettings()
REFUSED_ON_WINDOWS_S = 2.0  # WINDOWS.md §6: libuv PR 2896
TCP_GIVE_UP_S = 21.0  # WINDOWS.md §6: KB 2786464
URL_TIMEOUT_S = 15.0  # WINDOWS.md §3


def _a(outcome: ConnectOutcome, ms: float, port: int = 80) -> ConnectAttempt:
    return ConnectAttempt("192.0.2.1", port, outcome, ms)


C, R, X, T, U = (
    ConnectOutcome.CONNECTED,
    ConnectOutcome.REFUSED,
    ConnectOutcome.RESET,
    ConnectOutcome.TIMEOUT,
    ConnectOutcome.UNREACHABLE,
)


@pytest.mark.parametrize(
    ("outcome", "elapsed_ms", "settings", "seconds", "rule_id", "basis"),
    [
        (R, 0.2, WIN, REFUSED_ON_WINDOWS_S, "tcp-refused-retry", Basis.OBSERVED),
        (X, 1.0, WIN, REFUSED_ON_WINDOWS_S, "tcp-refused-retry", Basis.OBSERVED),
        (T, 15_000, WIN, min(URL_TIMEOUT_S, TCP_GIVE_UP_S), "tcp-connect-giveup", Basis.DOCUMENTED),
        (
            T,
            500,
            WindowsSettings(url_timeout_s=60.0),
            min(60.0, TCP_GIVE_UP_S),
            "tcp-connect-giveup",
            Basis.DOCUMENTED,
        ),
        (C, 12.0, WIN, 0.012, "observed-figure", Basis.OBSERVED),
        (U, 3.0, WIN, 0.003, "observed-figure", Basis.ASSUMED),
    ],
)
def test_one_connect_costs_the_windows_figure(
    outcome: ConnectOutcome,
    elapsed_ms: float,
    settings: WindowsSettings,
    seconds: float,
    rule_id: str,
    basis: Basis,
) -> None:
    charge = connect_charge(outcome, elapsed_ms, settings)
    assert charge.seconds == pytest.approx(seconds)
    assert (charge.rule, charge.basis) == (rule_id, basis)
    assert charge.source
    assert rule(rule_id)  # every rule id is in the rules table


@pytest.mark.parametrize(
    ("row", "outcome", "elapsed_ms", "attempts", "seconds", "rule_id"),
    [
        # no failed connect: the per-URL rules alone (observed)
        ("fast answer", FetchOutcome.OK, 40, [_a(C, 1)], 0.04, None),
        # one address, refused: 2 s on Windows though ~0 s here
        ("one refused", FetchOutcome.REFUSED, 0.5, [_a(R, 0.4)], 2.0, "tcp-refused-retry"),
        # two addresses (IPv6 then IPv4), both refused: 2 s each, in order
        (
            "two refused",
            FetchOutcome.REFUSED,
            1.0,
            [_a(R, 0.4), _a(R, 0.4)],
            4.0,
            "tcp-refused-retry",
        ),
        # refused then answered: 2 s for the first, what was observed after it
        (
            "refused then ok",
            FetchOutcome.OK,
            100.5,
            [_a(R, 0.5), _a(C, 10)],
            2.1,
            "tcp-refused-retry",
        ),
        # eight refusing addresses: cut at the URL time-out
        (
            "many refused",
            FetchOutcome.REFUSED,
            3,
            [_a(R, 0.3)] * 8,
            URL_TIMEOUT_S,
            "tcp-refused-retry",
        ),
        # a black hole first: min(15, 21) = 15 s, the second address never reached
        (
            "black hole first",
            FetchOutcome.TIMEOUT,
            2000,
            [_a(T, 2000)],
            URL_TIMEOUT_S,
            "tcp-connect-giveup",
        ),
        # connected, then no answer: the URL time-out
        (
            "silent server",
            FetchOutcome.TIMEOUT,
            2000,
            [_a(R, 0.3), _a(C, 1)],
            URL_TIMEOUT_S,
            "tcp-refused-retry",
        ),
    ],
)
def test_a_retrieval_is_charged_per_address(
    row: str,
    outcome: FetchOutcome,
    elapsed_ms: float,
    attempts: list[ConnectAttempt],
    seconds: float,
    rule_id: str | None,
) -> None:
    wait = network_wait(outcome, elapsed_ms, attempts, WIN)
    assert wait.seconds == pytest.approx(seconds, abs=1e-3), row
    assert wait.rule == rule_id, row
    if rule_id is not None:
        assert wait.modelled, row
        assert "measured here" in wait.note, row


def test_a_longer_url_time_out_lets_tcp_give_up_first() -> None:
    # URL time-out 60 s: the black hole costs 21 s, then the second address answers.
    settings = WindowsSettings(url_timeout_s=60.0)
    wait = network_wait(FetchOutcome.OK, 450, [_a(T, 400), _a(C, 5)], settings)
    assert wait.seconds == pytest.approx(TCP_GIVE_UP_S + 0.05, abs=1e-3)
    assert (wait.rule, wait.basis) == ("tcp-connect-giveup", Basis.DOCUMENTED)


def test_the_prediction_uses_the_windows_charge_and_says_so() -> None:
    # Given an OCSP responder whose only address refused here in half a millisecond,
    charge = network_wait(FetchOutcome.REFUSED, 0.5, [_a(R, 0.5)], WIN)
    wait = Wait(
        Purpose.OCSP,
        "http://ocsp.example.test/",
        FetchOutcome.REFUSED,
        None,
        charge.seconds,
        charge.modelled,
        rule=charge.rule,
        basis=charge.basis,
        note=charge.note,
    )
    result = predict([wait], WIN)
    # then both connections wait 2 s (Windows' figure), not 0.0005 s,
    assert result.prediction.first_connection.high_s == pytest.approx(2.0)
    assert result.prediction.later_connections.high_s == pytest.approx(2.0)
    # and the cause, the basis and the assumptions say what the figure rests on.
    (cause,) = result.causes
    assert cause.rule == "tcp-refused-retry"
    assert cause.basis == Basis.OBSERVED
    assert "Windows retries a refused connect" in cause.text
    assert "measured here 0.0 s" in cause.text
    ids = {b.rule for b in result.prediction.basis}
    assert {"tcp-refused-retry", "addresses-in-order"} <= ids
    assert any("not as measured here" in a for a in result.prediction.assumptions)
