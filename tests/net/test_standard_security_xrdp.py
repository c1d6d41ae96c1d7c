"""Standard RDP Security against Debian's xrdp, checked against nmap's rdp-enum-encryption.

xrdp chooses its method from ``crypt_level`` alone (low and medium: 40-bit, high:
128-bit, fips: FIPS) whatever the client offers, so one method is accepted per level.
nmap counts a method as accepted exactly as we do (the server selected the method
asked for), so the two must agree on methods, level and RDP version.

With TLS required, nmap 7.93's rdp-enum-encryption fails with a Lua error against xrdp
(see the test). nmap 7.93's "Security layer" section is not compared: it counts any RDP_NEG_RSP as
success without reading the selected protocol, and xrdp answers every request with
one (selecting RDP when TLS is not allowed), so nmap lists all five as SUCCESS.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fixtures.documents import probe_json
from fixtures.nmap import run_nmap_rdp
from fixtures.peers import XrdpServer
from rdptrust.model.target import Target
from rdptrust.net.probe import probe_host
from rdptrust.net.standard_security import probe_standard_security

pytestmark = pytest.mark.peer

EXPECTED = {
    "low": ({"40BIT"}, "LOW"),
    "high": ({"128BIT"}, "HIGH"),
    "fips": ({"FIPS"}, "FIPS"),
}


@pytest.mark.parametrize("level", ["low", "high", "fips"])
async def test_methods_and_level_match_config_and_nmap(
    xrdp_server: Callable[..., XrdpServer], level: str
) -> None:
    # Given xrdp speaking Standard RDP Security only, at one encryption level
    server = xrdp_server(security_layer="rdp", crypt_level=level)
    # When we enumerate the methods (one connection each), and nmap does the same
    result = await probe_standard_security(Target("127.0.0.1", server.port), timeout=5)
    nmap = run_nmap_rdp(server.port)
    # Then the accepted methods and the level are what the configuration says
    methods, level_name = EXPECTED[level]
    assert set(result.accepted_methods) == methods
    assert result.encryption_level == level_name
    assert all(m.error is None and m.refused is None for m in result.methods)
    assert result.rdp_version == 0x00080004
    assert result.certificate_type == "proprietary"
    assert result.certificate_key_bits in (512, 2048)
    # and nmap saw the same
    assert not nmap.script_error, nmap.output
    assert nmap.methods == set(result.accepted_methods), nmap.output
    assert nmap.encryption_level == result.encryption_level, nmap.output
    assert nmap.rdp_version == result.rdp_version, nmap.output


async def test_probe_reports_standard_security_and_findings(
    xrdp_server: Callable[..., XrdpServer],
) -> None:
    # Given xrdp accepting both TLS and Standard RDP Security at the low level
    server = xrdp_server(security_layer="negotiate", crypt_level="low")
    # When we probe it
    result = await probe_host(Target("127.0.0.1", server.port), timeout=5)
    doc = probe_json(result)
    # Then the JSON has the Standard RDP Security answer and the findings it implies
    std = doc["standard_security"]
    assert std["accepted_methods"] == ["40BIT"]
    assert std["methods"]["128BIT"] == {
        "accepted": False,
        "selected": "40BIT",
        "encryption_level": "LOW",
        "refused": None,
        "error": None,
    }
    assert std["rdp_version"] == "0x00080004"
    ids = [f["code"] for f in doc["findings"]]
    assert ids[:2] == ["standard-rdp-security-allowed", "weak-encryption-methods"]
    assert "nla-not-required" in ids
    assert "self-signed-certificate" in ids
    assert "fips-offered-not-required" not in ids
    # xrdp 0.9 does not speak CredSSP, so no NTLM CHALLENGE was asked for
    assert doc["ntlm"] is None


async def test_tls_only_host_has_no_standard_security(
    xrdp_server: Callable[..., XrdpServer],
) -> None:
    # Given xrdp requiring TLS
    server = xrdp_server(security_layer="tls")
    target = Target("127.0.0.1", server.port)
    # When we ask for Standard RDP Security
    direct = await probe_standard_security(target, timeout=5)
    result = await probe_host(target, timeout=5, enumerate_tls_versions=False)
    # Then every attempt was refused at the X.224 step, and the probe reports null
    assert direct.refused
    assert {m.refused for m in direct.methods} == {"SSL_REQUIRED_BY_SERVER"}
    assert direct.accepted_methods == ()
    assert result.standard_security is None
    # nmap 7.93 agrees that no method is accepted, but only by failing: xrdp answers its
    # request without RDP_NEG_REQ with a bare Connection Confirm and an MCS Disconnect
    # Provider Ultimatum, which rdp.lua parses as a Connect-Response and dies on
    # ("ERROR: Script execution failed"). We report SSL_REQUIRED_BY_SERVER instead.
    nmap = run_nmap_rdp(server.port)
    assert nmap.methods == set(), nmap.output
    assert nmap.encryption_level is None, nmap.output
    doc = probe_json(result)
    assert doc["standard_security"] is None
    ids = [f["code"] for f in doc["findings"]]
    assert "standard-rdp-security-allowed" not in ids
    assert "nla-not-required" in ids  # SSL without CredSSP is accepted
