"""The lab answers like Windows: NTLM names and version, Standard RDP Security methods,
level and RDP version; our probe and nmap's rdp-ntlm-info / rdp-enum-encryption agree.

The lab's X.509 server certificate makes SC_SECURITY longer than 511 bytes; nmap 7.93
reads the PER length of the GCC user data as a BER length and then misses the blocks,
so that case is checked with our probe only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from fixtures.documents import assert_valid, probe_json
from fixtures.lab import LabFactory
from fixtures.nmap import run_nmap_rdp
from fixtures.peers import self_signed
from rdptrust.lab.rdp import NtlmIdentity, RdpEndpoint, RdpPolicy, server_context
from rdptrust.lab.standard_security import StandardSecurityPolicy, parse_level, parse_methods
from rdptrust.model.wire import SecurityProtocol
from rdptrust.net.ntlm_info import get_ntlm_info
from rdptrust.net.probe import probe_host
from rdptrust.net.standard_security import probe_standard_security
from rdptrust.protocol.gcc import EncryptionLevel, EncryptionMethod
from rdptrust.protocol.ntlm import Version
from rdptrust.report.lab import lab_document

M = EncryptionMethod
Serve = Callable[[RdpPolicy], AbstractAsyncContextManager[RdpEndpoint]]
IDENTITY = NtlmIdentity(
    computer="WIN-NMAP07",
    domain="CONTOSO",
    dns_domain="contoso.test",
    version=Version(10, 0, 17763),
)


@pytest.fixture
def lab_endpoint(tmp_path: Path) -> Serve:
    """``async with lab_endpoint(policy) as endpoint`` serves *policy* with a test certificate."""
    cert, key = self_signed("WIN-NMAP07")
    chain_file, key_file = tmp_path / "chain.pem", tmp_path / "key.pem"
    chain_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)

    @asynccontextmanager
    async def serve(policy: RdpPolicy) -> AsyncIterator[RdpEndpoint]:
        context = server_context(chain_file, key_file)
        async with RdpEndpoint(policy, context, request_timeout_s=5) as endpoint:
            yield endpoint

    return serve


@pytest.mark.peer
async def test_lab_matches_nmap(lab_endpoint: Serve) -> None:
    # Given a lab offering everything, 40/128-bit and FIPS at the client-compatible level
    policy = RdpPolicy(
        ntlm=IDENTITY,
        standard_security=StandardSecurityPolicy(
            M.BIT_40 | M.BIT_128 | M.FIPS, EncryptionLevel.CLIENT_COMPATIBLE, 0x0008000C
        ),
    )
    async with lab_endpoint(policy) as endpoint:
        port = endpoint.port
        # When we probe it, and nmap runs both scripts against it
        result = await probe_host(endpoint.target, timeout=5, enumerate_tls_versions=False)
        nmap = await asyncio.to_thread(run_nmap_rdp, port)
    doc = probe_json(result)
    assert_valid(doc)
    # Then the Standard RDP Security answers are what the lab was told
    std = doc["standard_security"]
    assert std["accepted_methods"] == ["40BIT", "128BIT", "FIPS"]
    assert std["methods"]["56BIT"]["accepted"] is False  # the lab dropped the connection
    assert std["methods"]["56BIT"]["selected"] is None
    assert std["encryption_level"] == "CLIENT_COMPATIBLE"
    assert std["rdp_version"] == "0x0008000c"
    assert std["certificate_type"] == "proprietary"
    assert std["certificate_key_bits"] == 2048
    # and the NTLM names and version too
    ntlm = doc["ntlm"]
    assert ntlm["error"] is None
    assert ntlm["netbios_computer_name"] == "WIN-NMAP07"
    assert ntlm["netbios_domain_name"] == "CONTOSO"
    assert ntlm["dns_computer_name"] == "win-nmap07.contoso.test"
    assert ntlm["dns_domain_name"] == ntlm["dns_tree_name"] == "contoso.test"
    assert ntlm["os_version"] == "10.0.17763"
    server_time = dt.datetime.fromisoformat(ntlm["server_time"])
    assert abs((server_time - dt.datetime.now(dt.UTC)).total_seconds()) < 30
    # and nmap read the same from the same endpoint
    assert not nmap.script_error, nmap.output
    assert nmap.methods == set(std["accepted_methods"]), nmap.output
    assert nmap.encryption_level == std["encryption_level"], nmap.output
    assert nmap.rdp_version == 0x0008000C, nmap.output
    assert nmap.ntlm == {
        "Target_Name": "CONTOSO",
        "NetBIOS_Domain_Name": "CONTOSO",
        "NetBIOS_Computer_Name": "WIN-NMAP07",
        "DNS_Domain_Name": "contoso.test",
        "DNS_Computer_Name": "win-nmap07.contoso.test",
        "DNS_Tree_Name": "contoso.test",
        "Product_Version": "10.0.17763",
        "System_Time": nmap.ntlm.get("System_Time", "missing"),
    }, nmap.output
    # and the findings follow from them
    ids = [f["code"] for f in doc["findings"]]
    assert ids[:2] == ["standard-rdp-security-allowed", "weak-encryption-methods"]
    assert "fips-offered-not-required" in ids


@pytest.mark.parametrize(
    ("level", "methods", "accepted"),
    [
        (EncryptionLevel.HIGH, M.BIT_40 | M.BIT_128, ("128BIT",)),
        (EncryptionLevel.FIPS, M.BIT_128 | M.FIPS, ("FIPS",)),
        (EncryptionLevel.LOW, M.BIT_56, ("56BIT",)),
    ],
)
async def test_lab_levels(
    lab_endpoint: Serve,
    level: EncryptionLevel,
    methods: EncryptionMethod,
    accepted: tuple[str, ...],
) -> None:
    policy = RdpPolicy(standard_security=StandardSecurityPolicy(methods, level))
    async with lab_endpoint(policy) as endpoint:
        result = await probe_standard_security(endpoint.target, timeout=5)
    assert result.accepted_methods == accepted
    assert result.encryption_level == level.name


async def test_lab_x509_server_certificate(lab_endpoint: Serve) -> None:
    cert, _ = self_signed("WIN-X509")
    der = cert.public_bytes(serialization.Encoding.DER)
    policy = RdpPolicy(
        standard_security=StandardSecurityPolicy(
            M.BIT_128, EncryptionLevel.HIGH, certificate="x509", x509_chain=(der,), temporary=True
        )
    )
    async with lab_endpoint(policy) as endpoint:
        result = await probe_standard_security(endpoint.target, timeout=5)
    assert result.certificate_type == "x509"
    assert result.certificate_temporary is True
    assert result.x509_chain == (der,)


async def test_tls_only_lab_has_no_standard_security_but_ntlm(
    lab_endpoint: Serve,
) -> None:
    policy = RdpPolicy(
        protocols=frozenset({SecurityProtocol.SSL, SecurityProtocol.HYBRID}), ntlm=IDENTITY
    )
    async with lab_endpoint(policy) as endpoint:
        result = await probe_host(endpoint.target, timeout=5, enumerate_tls_versions=False)
        records = list(endpoint.connections)
    assert result.standard_security is None
    assert result.ntlm is not None
    assert result.ntlm.netbios_computer_name == "WIN-NMAP07"
    # and no connection ever went past the NTLM NEGOTIATE: nothing was authenticated
    assert any(r.ntlm_negotiate for r in records)
    assert not any(r.authenticate for r in records)


async def test_lab_config_serves_standard_security(lab_factory: LabFactory) -> None:
    # Given a lab started as ``rdptrust lab --rdp-methods 56BIT,128BIT --rdp-level high``
    lab = await lab_factory(
        rdp_methods=parse_methods("56BIT,128BIT"), rdp_level=parse_level("high")
    )
    # When we probe it
    result = await probe_standard_security(lab.target, timeout=5)
    # Then only 128-bit is accepted at the high level, as the lab's info says
    assert result.accepted_methods == ("128BIT",)
    assert result.encryption_level == "HIGH"
    std = lab_document(lab.info())["standard_security"]
    assert std == {"accepted_methods": ["128BIT", "56BIT"], "encryption_level": "HIGH"}


@pytest.mark.parametrize(
    ("hostile", "kind"),
    [
        ("garbage", "remote_protocol"),
        ("truncated", "connect"),
        ("reset", "connect"),
        ("silence", "timeout"),
        ("length-too-large", "remote_protocol"),
    ],
)
async def test_hostile_lab_gives_typed_failures(
    lab_factory: LabFactory, hostile: str, kind: str
) -> None:
    # Given a lab that misbehaves right after the Connection Request
    lab = await lab_factory(hostile=hostile, request_timeout_s=2)
    # When we ask for Standard RDP Security and for the NTLM CHALLENGE
    std = await probe_standard_security(lab.target, timeout=0.5)
    ntlm = await get_ntlm_info(lab.target, timeout=0.5)
    # Then every attempt ends in a typed failure, none raises
    assert {m.error.kind for m in std.methods if m.error} == {kind}
    assert all(m.accepted is None for m in std.methods)
    assert std.encryption_level is None
    assert ntlm.error is not None
    assert ntlm.netbios_computer_name is None


async def test_tls_alert_lab_fails_ntlm_with_tls_error(lab_factory: LabFactory) -> None:
    lab = await lab_factory(hostile="tls-alert", request_timeout_s=2)
    ntlm = await get_ntlm_info(lab.target, timeout=2)
    assert ntlm.error is not None
    assert ntlm.error.kind == "tls"
