"""Windows' retrieval limits as a pure model: which URLs are tried and what is reported."""

from __future__ import annotations

import pytest

from rdptrust.model.problems import Severity
from rdptrust.model.retrieval import Purpose
from rdptrust.pki.limits import (
    NO_HTTPS_AIA,
    WINDOWS_LIMITS,
    RetrievalLimits,
    aia_attempts_left,
    aia_over_chain_limit,
    aia_urls,
    body_limit,
    omission_problems,
    revocation_certificates,
    revocation_urls,
)


def test_windows_defaults_are_the_sdk_values() -> None:
    # WINDOWS.md §3: MaxUrlRetrievalByteCount, MaxAIAUrlRetrievalByteCount,
    # MaxAIAUrlCountInCert, MaxAIAUrlRetrievalCountPerChain.
    assert WINDOWS_LIMITS.url_bytes == 100 * 1024 * 1024
    assert WINDOWS_LIMITS.aia_bytes == 100_000
    assert WINDOWS_LIMITS.aia_urls_per_cert == 5
    assert WINDOWS_LIMITS.aia_retrievals_per_chain == 3


@pytest.mark.parametrize(
    ("urls", "kept", "rules"),
    [
        (["http://a/1.crt"], ["http://a/1.crt"], []),
        (["https://a/1.crt", "http://a/2.crt"], ["http://a/2.crt"], [NO_HTTPS_AIA]),
        # CryptRetrieveObjectByUrl also takes ldap and file (WINDOWS.md §4); not ftp
        (
            ["ldap:///CN=x", "ftp://a/1.crt", "file://fs/ca.crt", "HTTP://a/2.crt"],
            ["ldap:///CN=x", "file://fs/ca.crt", "HTTP://a/2.crt"],
            [],
        ),
        (
            [f"http://a/{n}.crt" for n in range(7)],
            [f"http://a/{n}.crt" for n in range(5)],
            ["MaxAIAUrlCountInCert"],
        ),
    ],
)
def test_aia_urls(urls: list[str], kept: list[str], rules: list[str]) -> None:
    got, omitted = aia_urls(urls, "leaf", WINDOWS_LIMITS)
    assert list(got) == kept
    assert [o.rule for o in omitted] == rules
    assert all(o.purpose == Purpose.AIA and o.certificate == "leaf" for o in omitted)


def test_aia_chain_count() -> None:
    assert [aia_attempts_left(n, WINDOWS_LIMITS) for n in range(5)] == [
        True,
        True,
        True,
        False,
        False,
    ]
    assert aia_over_chain_limit([], WINDOWS_LIMITS) is None
    over = aia_over_chain_limit(["http://a/4", "http://a/5"], WINDOWS_LIMITS)
    assert over is not None
    assert "2 more" in over.detail


def test_revocation_urls_keep_windows_schemes_and_cap() -> None:
    limits = RetrievalLimits(revocation_urls_per_cert=3)
    urls = ["ldap:///x", "ftp://a/0.crl", "http://a/1.crl", "https://a/2.crl", "file://f/3.crl"]
    kept, omitted = revocation_urls(Purpose.CRL, urls, "leaf", limits)
    assert kept == ("ldap:///x", "http://a/1.crl", "https://a/2.crl")
    (o,) = omitted
    assert "1 of 4 CRL URLs" in o.detail
    # OCSP is HTTP only
    assert revocation_urls(Purpose.OCSP, urls, "leaf", limits)[0] == (
        "http://a/1.crl",
        "https://a/2.crl",
    )


def test_revocation_certificates_cap() -> None:
    assert revocation_certificates(8, WINDOWS_LIMITS) == (8, None)
    count, over = revocation_certificates(69, WINDOWS_LIMITS)
    assert count == 8
    assert over is not None
    assert "61 of 69" in over.detail


def test_body_limits_by_purpose() -> None:
    assert body_limit(Purpose.AIA, WINDOWS_LIMITS) == 100_000
    assert body_limit(Purpose.CRL, WINDOWS_LIMITS) == 100 * 1024 * 1024
    assert body_limit(Purpose.ROOT_LIST, WINDOWS_LIMITS) == 100 * 1024 * 1024
    assert body_limit(Purpose.OCSP, WINDOWS_LIMITS) == 256 * 1024


def test_limits_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="aia_bytes"):
        RetrievalLimits(aia_bytes=0)


def test_omissions_become_catalogued_warnings() -> None:
    urls = ["https://a/1"] + [f"http://a/{n}" for n in range(5)]
    _, omitted = aia_urls(urls, "leaf", WINDOWS_LIMITS)
    problems = omission_problems(omitted)
    assert [p.code for p in problems] == ["retrieval-limit", "aia-over-https"]
    assert all(p.severity == Severity.WARNING for p in problems)
    assert "(leaf)" in problems[1].message
