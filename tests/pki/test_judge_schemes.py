"""file:// and ldap:/// retrievals rdptrust does not make, as the judgement counts them.

The expected figures come from WINDOWS.md's rules, not from the model: a retrieval that
is not made stands for a dead URL (rules ``file-url``, ``ldap-dc-locate``: assumed),
so under §3 it waits 15 s per URL without the accumulative flag and half the remaining
20 s budget with it; a failure is not cached (§5), so later connections pay it again.
"""

from __future__ import annotations

import pytest

from pki.judgements import CHAIN, TRUSTED, judge
from rdptrust.model.retrieval import Fetched, FetchOutcome, HttpResult, Purpose, RevocationStatus
from rdptrust.model.windows import Basis

PER_URL_S = 15.0  # WINDOWS.md §3, dwUrlRetrievalTimeout
BUDGET_S = 20.0  # WINDOWS.md §3, ChainRevAccumulativeUrlRetrievalTimeoutMilliseconds


def _crl(url: str, outcome: FetchOutcome, cert_index: int, *, ms: float = 0.0) -> Fetched:
    good = outcome is FetchOutcome.OK
    result = HttpResult(url, outcome, None, ms, None, None if good else "not made")
    return Fetched(
        Purpose.CRL,
        url,
        result,
        cert_index,
        RevocationStatus.GOOD if good else None,
        None,
        f"certificate {cert_index}",
    )


@pytest.mark.parametrize(
    ("url", "rule", "note"),
    [
        ("file://fs01/pki/issuing.crl", "file-url", "rdptrust does not open file URLs"),
        ("file:///C:/pki/issuing.crl", "file-url", "waits on SMB"),
        ("ldap:///CN=Issuing,CN=CDP,CN=Public Key Services,DC=corp", "ldap-dc-locate", "--domain"),
    ],
)
def test_not_made_is_an_assumed_dead_url(url: str, rule: str, note: str) -> None:
    # Given a trusted chain whose intermediate's CRL answers in 0 s and whose leaf's only
    # CRL is a URL rdptrust does not open
    served = [CHAIN.leaf.cert, CHAIN.intermediate.cert]
    retrievals = [
        _crl("http://127.0.0.1:9/root.crl", FetchOutcome.OK, 1),
        _crl(url, FetchOutcome.SKIPPED, 0),
    ]
    # When it is judged
    judged = judge(served, anchors=TRUSTED, retrievals=retrievals)
    # Then the leaf's CRL counts as a dead URL under both regimes, every connection
    accumulative = min((BUDGET_S - 0.0) / 2, PER_URL_S)
    first = judged.prediction.first_connection
    assert (first.low_s, first.high_s) == (accumulative, PER_URL_S)
    later = judged.prediction.later_connections
    assert (later.low_s, later.high_s) == (accumulative, PER_URL_S)
    (cause,) = judged.causes
    assert cause.rule == rule
    assert cause.basis == Basis.ASSUMED
    assert cause.later is True
    assert note in cause.text
    assert rule in {b.rule for b in judged.prediction.basis}
    (made,) = [r for r in judged.retrievals if r.url == url]
    assert made.modelled is True
    assert made.wait_s == PER_URL_S


def test_a_file_url_after_one_that_answers_is_not_tried() -> None:
    # CDP URLs are tried in order and the first answer ends the certificate's check
    served = [CHAIN.leaf.cert, CHAIN.intermediate.cert]
    retrievals = [
        _crl("http://127.0.0.1:9/root.crl", FetchOutcome.OK, 1),
        _crl("http://127.0.0.1:9/leaf.crl", FetchOutcome.OK, 0, ms=200.0),
        _crl("file://fs01/pki/issuing.crl", FetchOutcome.SKIPPED, 0),
    ]
    judged = judge(served, anchors=TRUSTED, retrievals=retrievals)
    assert judged.prediction.first_connection.high_s == pytest.approx(0.2)
    (made,) = [r for r in judged.retrievals if r.url.startswith("file:")]
    assert made.counted is False


def test_measured_ldap_keeps_its_observed_figure() -> None:
    # an ldap:/// URL measured through --domain is no assumption: what was seen counts
    served = [CHAIN.leaf.cert, CHAIN.intermediate.cert]
    url = "ldap:///CN=Issuing,CN=CDP,CN=Public Key Services,DC=corp"
    retrievals = [
        _crl("http://127.0.0.1:9/root.crl", FetchOutcome.OK, 1),
        _crl(url, FetchOutcome.REFUSED, 0, ms=40.0),
    ]
    judged = judge(served, anchors=TRUSTED, retrievals=retrievals)
    assert judged.prediction.first_connection.high_s == pytest.approx(0.04)
    assert "ldap-url" in {b.rule for b in judged.prediction.basis}
    assert all(c.rule != "ldap-dc-locate" for c in judged.causes)


def test_an_unparsable_ldap_url_is_judged_not_raised() -> None:
    served = [CHAIN.leaf.cert, CHAIN.intermediate.cert]
    url = "ldap://[bad/cn=x"
    retrievals = [
        _crl("http://127.0.0.1:9/root.crl", FetchOutcome.OK, 1),
        _crl(url, FetchOutcome.INVALID, 0),
    ]
    judged = judge(served, anchors=TRUSTED, retrievals=retrievals)
    (cause,) = [c for c in judged.causes if c.url == url]
    assert "sent unusable data" in cause.text
