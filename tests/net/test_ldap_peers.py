"""LDAP retrievals and DC lookup against real peers: slapd and dnsmasq on loopback.

The peers are the lab's (:mod:`rdptrust.lab.ldap`): slapd serving the lab CA's CRL and
certificate from a throwaway configuration, a refused port, a listener that never
answers, and dnsmasq listing the lab domain's DCs. Debian packages slapd and dnsmasq.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from cryptography import x509

from rdptrust.engine.schemes import SchemeFetcher
from rdptrust.lab.certs import LabCa
from rdptrust.lab.ldap import AIA_DN, CDP_DN, LAB_DOMAIN, LdapLab, LdapMode
from rdptrust.model.retrieval import FetchOutcome, Purpose
from rdptrust.net.ldap import ldap_read
from rdptrust.net.srv import parse_nameserver, srv_targets
from rdptrust.pki.schemes import dc_srv_name

CRL_ATTR = ("certificateRevocationList;binary",)
LIMIT = 1 << 20


def _need(*programs: str) -> None:
    for name in programs:
        if shutil.which(name) is None and shutil.which(name, path="/usr/sbin:/sbin") is None:
            pytest.skip(f"{name} is not installed (Debian package {name}; .ci/run installs it)")


Start = Callable[[LdapMode], Awaitable[LdapLab]]


@pytest.fixture(scope="module")
def ca() -> LabCa:
    return LabCa.generate()


@pytest_asyncio.fixture
async def ldap_lab(ca: LabCa, tmp_path: Path) -> AsyncIterator[Start]:
    started: list[LdapLab] = []

    async def start(mode: LdapMode) -> LdapLab:
        if mode in (LdapMode.OK, LdapMode.DC):
            _need("slapd", "slapadd")
        if mode is LdapMode.DC:
            _need("dnsmasq")
        lab = LdapLab(mode, ca, tmp_path / f"ldap-{len(started)}")
        (tmp_path / f"ldap-{len(started)}").mkdir()
        started.append(lab)
        await lab.start()
        return lab

    yield start
    for lab in started:
        await lab.stop()


async def test_slapd_serves_the_crl_and_the_ca_certificate(ldap_lab: Start, ca: LabCa) -> None:
    lab = await ldap_lab(LdapMode.OK)
    url = f"ldap://127.0.0.1:{lab.port}/x"
    got = await ldap_read(url, "127.0.0.1", lab.port, CDP_DN, CRL_ATTR, timeout=5, max_bytes=LIMIT)
    assert got.outcome == FetchOutcome.OK, got.error
    assert got.status is None
    crl = x509.load_der_x509_crl(got.body or b"")
    assert crl.issuer == ca.intermediate.subject
    assert crl.is_signature_valid(ca.intermediate.public_key())  # type: ignore[arg-type]
    cert = await ldap_read(
        url,
        "127.0.0.1",
        lab.port,
        AIA_DN,
        ("cACertificate;binary",),
        timeout=5,
        max_bytes=LIMIT,
        equality=("objectClass", "certificationAuthority"),
    )
    assert x509.load_der_x509_certificate(cert.body or b"") == ca.intermediate
    # an entry that is not there: slapd's noSuchObject (32), fast
    missing = await ldap_read(
        url, "127.0.0.1", lab.port, "cn=none,dc=lab,dc=test", CRL_ATTR, timeout=5, max_bytes=LIMIT
    )
    assert missing.outcome == FetchOutcome.HTTP_ERROR
    assert missing.error is not None
    assert missing.error.startswith("LDAP result 32")
    # an answer larger than the body limit is refused, not buffered
    small = await ldap_read(url, "127.0.0.1", lab.port, CDP_DN, CRL_ATTR, timeout=5, max_bytes=64)
    assert small.outcome == FetchOutcome.INVALID


async def test_refused_and_black_holed(ldap_lab: Start) -> None:
    refused = await ldap_lab(LdapMode.REFUSE)
    got = await ldap_read(
        "ldap://r/", "127.0.0.1", refused.port, CDP_DN, CRL_ATTR, timeout=2, max_bytes=LIMIT
    )
    assert got.outcome == FetchOutcome.REFUSED
    assert got.elapsed_ms < 1000
    hole = await ldap_lab(LdapMode.BLACKHOLE)
    began = time.monotonic()
    got = await ldap_read(
        "ldap://h/", "127.0.0.1", hole.port, CDP_DN, CRL_ATTR, timeout=0.5, max_bytes=LIMIT
    )
    assert got.outcome == FetchOutcome.TIMEOUT
    assert 0.45 <= time.monotonic() - began < 2.0


async def test_not_ldap_and_not_admitted() -> None:
    async def http(_r: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(http, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        got = await ldap_read(
            "ldap://x/", "127.0.0.1", port, "cn=x", CRL_ATTR, timeout=2, max_bytes=LIMIT
        )
        assert got.outcome == FetchOutcome.INVALID
        assert "not an LDAP" in (got.error or "")
        denied = await ldap_read(
            "ldap://x/",
            "127.0.0.1",
            port,
            "cn=x",
            CRL_ATTR,
            timeout=2,
            max_bytes=LIMIT,
            admit=lambda _u, address, _p: f"{address} is denied",
        )
        assert denied.outcome == FetchOutcome.SKIPPED
        assert denied.error == "not fetched: 127.0.0.1 is denied"
    finally:
        server.close()
        await server.wait_closed()


async def test_domain_controllers_from_dnsmasq(ldap_lab: Start, ca: LabCa) -> None:
    lab = await ldap_lab(LdapMode.DC)
    assert lab.dns_server is not None
    dcs, why = await srv_targets(dc_srv_name(LAB_DOMAIN), timeout=2, nameserver=lab.dns_server)
    assert why is None
    # lowest priority first: the refusing DC, then slapd
    assert [dc.priority for dc in dcs] == [0, 10]
    assert dcs[1].port == lab.port
    none, why = await srv_targets(dc_srv_name("other.test"), timeout=2, nameserver=lab.dns_server)
    assert none == ()
    assert why is not None
    assert "_ldap._tcp.dc._msdcs.other.test" in why
    # the engine's fetch: DC after DC within one time-out, the CRL from the second
    fetcher = SchemeFetcher(domain=LAB_DOMAIN, nameserver=lab.dns_server)
    url = f"ldap:///{CDP_DN.replace(' ', '%20')}?certificateRevocationList"
    got = await fetcher.fetch(Purpose.CRL, url, 5.0, LIMIT)
    assert got.outcome == FetchOutcome.OK, got.error
    assert x509.load_der_x509_crl(got.body or b"").issuer == ca.intermediate.subject
    # without a domain nothing is fetched: the wait is modelled
    blind = await SchemeFetcher(domain=None, nameserver=None).fetch(Purpose.CRL, url, 5.0, LIMIT)
    assert blind.outcome == FetchOutcome.SKIPPED
    assert "--domain" in (blind.error or "")
    # a domain nobody lists: a DNS error naming the record
    lost = SchemeFetcher(domain="other.test", nameserver=lab.dns_server)
    got = await lost.fetch(Purpose.CRL, url, 2.0, LIMIT)
    assert got.outcome == FetchOutcome.DNS_ERROR


async def test_file_urls_are_never_opened(tmp_path: Path) -> None:
    crl = tmp_path / "x.crl"
    crl.write_bytes(b"not read")
    got = await SchemeFetcher(domain=None, nameserver=None).fetch(
        Purpose.CRL, crl.as_uri(), 5.0, LIMIT
    )
    assert got.outcome == FetchOutcome.SKIPPED
    assert got.body is None
    assert "rdptrust does not open file URLs" in (got.error or "")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("127.0.0.2:5353", ("127.0.0.2", 5353)),
        ("[::1]:5353", ("::1", 5353)),
        ("::1", ("::1", 53)),
    ],
)
def test_parse_nameserver(text: str, expected: tuple[str, int]) -> None:
    assert parse_nameserver(text) == expected


@pytest.mark.parametrize("text", ["dns.example", "127.0.0.1:0", "127.0.0.1:x", "[::1]x"])
def test_parse_nameserver_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="bad DNS server"):
        parse_nameserver(text)
