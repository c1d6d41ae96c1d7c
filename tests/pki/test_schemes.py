"""The ldap and file URL rules (WINDOWS.md §4), table-tested."""

from __future__ import annotations

import pytest

from rdptrust.model.retrieval import FetchOutcome, Purpose
from rdptrust.pki.rules import BY_ID, Status
from rdptrust.pki.schemes import (
    LdapUrl,
    assumed_rule,
    dc_srv_name,
    fetchable,
    modelled_note,
    parse_ldap_url,
    scheme,
)

AD_CS_CDP = (
    "ldap:///CN=Corp%20Issuing%20CA,CN=ca01,CN=CDP,CN=Public%20Key%20Services,CN=Services,"
    "CN=Configuration,DC=corp,DC=example?certificateRevocationList?base"
    "?objectClass=cRLDistributionPoint"
)


@pytest.mark.parametrize(
    ("purpose", "url", "expected"),
    [
        (Purpose.CRL, "http://a/x.crl", True),
        (Purpose.CRL, "https://a/x.crl", True),
        (Purpose.CRL, AD_CS_CDP, True),
        (Purpose.CRL, "file://fs01/pki/x.crl", True),
        (Purpose.CRL, "ftp://a/x.crl", False),
        (Purpose.AIA, "LDAP://dc01/CN=x?cACertificate", True),
        (Purpose.AIA, "file:///C:/pki/ca.crt", True),
        (Purpose.AIA, "https://a/ca.crt", False),
        (Purpose.OCSP, "ldap://dc01/CN=x", False),
        (Purpose.OCSP, "http://ocsp", True),
        (Purpose.CRL, "no-scheme", False),
    ],
)
def test_fetchable_schemes(purpose: Purpose, url: str, expected: bool) -> None:
    assert fetchable(purpose, url) is expected


@pytest.mark.parametrize(
    ("url", "purpose", "expected"),
    [
        (
            AD_CS_CDP,
            Purpose.CRL,
            LdapUrl(
                None,
                389,
                "CN=Corp Issuing CA,CN=ca01,CN=CDP,CN=Public Key Services,CN=Services,"
                "CN=Configuration,DC=corp,DC=example",
                ("certificateRevocationList;binary",),
                ("objectClass", "cRLDistributionPoint"),
            ),
        ),
        (
            "ldap://dc01.corp.example:3389/CN=ca,DC=corp",
            Purpose.AIA,
            LdapUrl("dc01.corp.example", 3389, "CN=ca,DC=corp", ("cACertificate;binary",), None),
        ),
        (
            "ldap://127.0.0.1/cn=x?cACertificate;binary??(|(a=b)(c=d))",
            Purpose.AIA,
            LdapUrl("127.0.0.1", 389, "cn=x", ("cACertificate;binary",), None),
        ),
        (
            "ldap://[::1]:1389/cn=x?description",
            Purpose.CRL,
            LdapUrl("::1", 1389, "cn=x", ("description",), None),
        ),
    ],
)
def test_parse_ldap_url(url: str, purpose: Purpose, expected: LdapUrl) -> None:
    assert parse_ldap_url(url, purpose) == expected


@pytest.mark.parametrize(
    "url", ["http://a/x", "ldap://a:99999/cn=x", "ldap://a:x/cn=x", "ldap://[bad/cn=x"]
)
def test_parse_ldap_url_refuses(url: str) -> None:
    with pytest.raises(ValueError, match=r"ldap|port"):
        parse_ldap_url(url, Purpose.CRL)


@pytest.mark.parametrize(
    ("url", "outcome", "rule"),
    [
        ("file://fs01/share/ca.crl", FetchOutcome.SKIPPED, "file-url"),
        ("file:///C:/pki/ca.crl", FetchOutcome.SKIPPED, "file-url"),
        (AD_CS_CDP, FetchOutcome.SKIPPED, "ldap-dc-locate"),
        # measured through --domain: what was observed counts
        (AD_CS_CDP, FetchOutcome.TIMEOUT, None),
        (AD_CS_CDP, FetchOutcome.OK, None),
        ("ldap://dc01/CN=x", FetchOutcome.SKIPPED, None),
        ("ldap://dc01/CN=x", FetchOutcome.REFUSED, None),
        ("http://a/x.crl", FetchOutcome.SKIPPED, None),
    ],
)
def test_assumed_rule(url: str, outcome: FetchOutcome, rule: str | None) -> None:
    assert assumed_rule(url, outcome) == rule
    if rule is not None:
        # a rule that stands in for a measurement is unverified: its seconds are assumed
        assert BY_ID[rule].status == Status.UNVERIFIED


def test_notes_say_what_is_assumed() -> None:
    file_note = modelled_note("file://fs01/share/ca.crl")
    assert file_note is not None
    assert "rdptrust does not open file URLs" in file_note
    assert "SMB for the file server fs01" in file_note
    ldap_note = modelled_note(AD_CS_CDP)
    assert ldap_note is not None
    assert "assumed" in ldap_note
    assert "--domain" in ldap_note
    assert modelled_note("ldap://dc01/CN=x") is None
    assert modelled_note("http://a/x") is None


def test_scheme_and_srv_name() -> None:
    assert scheme("LDAP:///x") == "ldap"
    assert scheme("c:\\x") == "c"  # a drive letter reads as a scheme; fetchable() refuses it
    assert scheme("nothing") == ""
    assert dc_srv_name("Corp.Example.") == "_ldap._tcp.dc._msdcs.corp.example"
    assert BY_ID["ldap-url"].status == Status.DOCUMENTED


@pytest.mark.parametrize(
    ("urls", "text"),
    [
        (["http://a/x.crl"], "allow HTTP to http://a/x.crl"),
        (["ldap://dc01:3268/CN=x"], "allow LDAP to dc01 port 3268 for ldap://dc01:3268/CN=x"),
        (["ldap:///CN=x"], "allow LDAP to a domain controller (port 389) for ldap:///CN=x"),
        (
            ["http://a/x.crl", "file://fs/x.crl"],
            "allow HTTP to http://a/x.crl; publish the CRL over HTTP too (file URLs need SMB"
            " to the file server): file://fs/x.crl",
        ),
    ],
)
def test_reach_text_names_the_protocol(urls: list[str], text: str) -> None:
    from rdptrust.pki.schemes import reach_text

    assert reach_text(urls) == text


def test_unreadable_hosts_never_raise() -> None:
    # a certificate can carry any text: the rules read it without raising
    from rdptrust.pki.schemes import reach_text

    bad = "ldap://[bad/cn=x"
    assert assumed_rule(bad, FetchOutcome.SKIPPED) == "ldap-dc-locate"
    assert modelled_note(bad) is not None
    assert "a domain controller" in reach_text([bad])
    assert "the local or mapped path" in (modelled_note("file://[x/y") or "")
