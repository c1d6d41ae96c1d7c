"""The lab's RDP endpoint on the wire: negotiation policies, TLS, the NTLM CHALLENGE, swaps."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import socket
import struct
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from fixtures.lab import LabFactory
from rdptrust.errors import TlsError, UsageError
from rdptrust.lab.certs import CertKind
from rdptrust.lab.rdp import RESPONSE_FLAGS
from rdptrust.lab.runner import LabConfig
from rdptrust.model.probe import TlsSessionInfo
from rdptrust.model.target import Target
from rdptrust.model.wire import SecurityProtocol
from rdptrust.net.connection import RdpConnection
from rdptrust.net.probe import probe_host
from rdptrust.net.standard_security import probe_standard_security
from rdptrust.protocol.credssp import (
    STATUS_LOGON_FAILURE,
    TSRequest,
    negotiate_request,
    parse_challenge_reply,
    parse_ts_request,
)
from rdptrust.protocol.gcc import ClientConnectInitial, ClientSecurityData, EncryptionMethod
from rdptrust.protocol.x224 import (
    ConnectionConfirm,
    ConnectionRequest,
    FailureCode,
    NegotiationFailure,
    NegotiationRequest,
    NegotiationResponse,
    parse_connection_confirm,
)
from rdptrust.report.lab import lab_document

P = SecurityProtocol
SSL_HYBRID_EX = P.SSL | P.HYBRID | P.HYBRID_EX


def _request(protocols: SecurityProtocol | None) -> ConnectionRequest:
    negotiation = None if protocols is None else NegotiationRequest(protocols)
    return ConnectionRequest(cookie="test", negotiation=negotiation)


async def _negotiate(target: Target, protocols: SecurityProtocol | None) -> ConnectionConfirm:
    deadline = time.monotonic() + 5
    conn = await RdpConnection.open(target, deadline)
    try:
        confirm = await conn.negotiate(_request(protocols), deadline)
    finally:
        await conn.close()
    assert isinstance(confirm, ConnectionConfirm)
    return confirm


# offered, required, requested -> selected protocol or failure code


async def test_policies_on_the_wire(lab_factory: LabFactory) -> None:
    # Given three labs with different policies
    windows = await lab_factory()
    tls_only = await lab_factory(protocols="RDP,SSL,HYBRID", require="SSL")
    nla = await lab_factory(protocols="SSL,HYBRID,HYBRID_EX", require="HYBRID")
    rdp_only = await lab_factory(protocols="RDP")
    # When clients ask, Then each answers as Windows with that policy does
    answers = await asyncio.gather(
        _negotiate(windows.target, SSL_HYBRID_EX),
        _negotiate(windows.target, P.SSL),
        _negotiate(tls_only.target, P.RDP),
        _negotiate(nla.target, P.SSL),
        _negotiate(rdp_only.target, P.SSL),
        _negotiate(rdp_only.target, P.RDP),
    )
    assert [a.negotiation for a in answers] == [
        NegotiationResponse(P.HYBRID_EX, RESPONSE_FLAGS),
        NegotiationResponse(P.SSL, RESPONSE_FLAGS),
        NegotiationFailure(FailureCode.SSL_REQUIRED_BY_SERVER),
        NegotiationFailure(FailureCode.HYBRID_REQUIRED_BY_SERVER),
        NegotiationFailure(FailureCode.SSL_NOT_ALLOWED_BY_SERVER),
        NegotiationResponse(P.RDP, RESPONSE_FLAGS),
    ]
    assert [r.request for r in windows.endpoints[0].connections] == [
        _request(SSL_HYBRID_EX),
        _request(P.SSL),
    ]


def _raw_exchange(port: int, request: bytes, *, until_close: bool = True) -> bytes:
    """What the lab sends for *request*: until it closes, or one TPKT packet."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        received = b""
        while True:
            if (
                not until_close
                and len(received) >= 4
                and len(received) >= received[2] << 8 | received[3]
            ):
                return received
            chunk = sock.recv(4096)
            if not chunk:
                return received
            received += chunk


async def test_raw_bytes_of_failure_and_legacy_confirms(lab_factory: LabFactory) -> None:
    tls_only = await lab_factory(protocols="SSL")
    old = await lab_factory(no_negotiation=True)
    request = _request(P.RDP).to_bytes()
    failure = await asyncio.to_thread(_raw_exchange, tls_only.target.port, request)
    # (the old host then waits for the client's MCS Connect-Initial, as Windows does)
    legacy = await asyncio.to_thread(
        functools.partial(_raw_exchange, until_close=False),
        old.target.port,
        _request(P.SSL).to_bytes(),
    )
    # MS-RDPBCGR 2.2.1.2.2: RDP_NEG_FAILURE SSL_REQUIRED_BY_SERVER, then the host closes.
    assert failure == bytes.fromhex("030000130ed000001234000300080001000000")
    # LI 6: no negotiation data at all, as an old host answers.
    assert legacy == bytes.fromhex("0300000b06d00000123400")
    confirm, _ = parse_connection_confirm(legacy) or pytest.fail("need more data")
    assert confirm.negotiation is None


async def test_no_rdp_neg_req_gets_no_rdp_neg_rsp(lab_factory: LabFactory) -> None:
    lab = await lab_factory()
    confirm = await _negotiate(lab.target, None)
    assert confirm.negotiation is None


async def test_probe_sees_the_offered_protocols(lab_factory: LabFactory) -> None:
    lab = await lab_factory(protocols="RDP,SSL,HYBRID")
    result = await probe_host(
        lab.target, timeout=5, enumerate_tls_versions=False, standard_security=False, ntlm=False
    )
    assert result.error is None
    assert result.negotiation is not None
    assert result.negotiation.selected == P.HYBRID
    accepted = {p.name: p.accepted for p in result.protocols}
    assert accepted == {
        "RDP": True,
        "SSL": True,
        "HYBRID": True,
        "HYBRID_EX": False,
        "RDSTLS": False,
        "RDSAAD": False,
    }
    assert result.tls is not None
    leaf = x509.load_der_x509_certificate(result.chain[0])
    assert leaf.fingerprint(hashes.SHA256()).hex() == lab.certificate_sha256


async def _tls(
    target: Target, *, min_version: str = "TLSv1.0", max_version: str = "TLSv1.3"
) -> TlsSessionInfo:
    deadline = time.monotonic() + 5
    conn = await RdpConnection.open(target, deadline)
    try:
        await conn.negotiate(_request(P.SSL), deadline)
        return await conn.start_tls(deadline, min_version=min_version, max_version=max_version)
    finally:
        await conn.close()


async def test_ca_chain_and_tls_versions(lab_factory: LabFactory) -> None:
    modern = await lab_factory(cert="ca")
    old = await lab_factory(tls_min="TLSv1.0", tls_max="TLSv1.0", cert="sha1")
    session = await _tls(modern.target)
    assert session.version == "TLSv1.3"
    assert len(session.chain) == 2
    assert modern.ca is not None
    assert modern.ca_cert_path is not None
    assert x509.load_der_x509_certificate(session.chain[1]) == modern.ca.intermediate
    with pytest.raises(TlsError):
        await _tls(modern.target, max_version="TLSv1.1")
    legacy = await _tls(old.target)
    assert legacy.version == "TLSv1.0"
    leaf = x509.load_der_x509_certificate(legacy.chain[0])
    assert leaf.signature_hash_algorithm is not None
    assert leaf.signature_hash_algorithm.name == "sha1"


async def _ntlm_exchange(target: Target) -> tuple[bytes, bytes]:
    deadline = time.monotonic() + 5
    conn = await RdpConnection.open(target, deadline)
    try:
        confirm = await conn.negotiate(_request(SSL_HYBRID_EX), deadline)
        assert isinstance(confirm, ConnectionConfirm)
        assert isinstance(confirm.negotiation, NegotiationResponse)
        await conn.start_tls(deadline)
        await conn.send_tls(negotiate_request(), deadline)
        reply = b""
        while parse_ts_request(reply) is None:
            chunk = await conn.recv_tls(deadline)
            assert chunk, "the lab closed before its CHALLENGE"
            reply += chunk
        # An AUTHENTICATE (any token will do: the lab never accepts one).
        await conn.send_tls(TSRequest(nego_tokens=(b"NTLMSSP\x00\x03",)).to_bytes(), deadline)
        refusal = b""
        while chunk := await conn.recv_tls(deadline):
            refusal += chunk
        return reply, refusal
    finally:
        await conn.close()


async def test_ntlm_challenge_names_and_version(lab_factory: LabFactory) -> None:
    # Given a lab configured with its own names and version
    lab = await lab_factory(
        protocols="SSL,HYBRID,HYBRID_EX",
        ntlm_computer="SRV-0042",
        ntlm_domain="CORP",
        ntlm_dns_domain="corp.example",
        ntlm_version="6.3.9600",
    )
    # When a client sends an anonymous NEGOTIATE and then an AUTHENTICATE
    before = dt.datetime.now(dt.UTC)
    reply, refusal = await _ntlm_exchange(lab.target)
    # Then the CHALLENGE names the host as configured
    challenge = parse_challenge_reply(reply)
    assert challenge is not None
    assert challenge.target_name == "CORP"
    assert challenge.netbios_computer_name == "SRV-0042"
    assert challenge.netbios_domain_name == "CORP"
    assert challenge.dns_computer_name == "srv-0042.corp.example"
    assert challenge.dns_domain_name == "corp.example"
    assert challenge.dns_tree_name == "corp.example"
    assert str(challenge.version) == "6.3.9600"
    assert challenge.timestamp is not None
    stamp = dt.datetime(1601, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
        microseconds=challenge.timestamp // 10
    )
    assert abs(stamp - before) < dt.timedelta(seconds=30)
    # And the logon is refused with STATUS_LOGON_FAILURE, then the connection closes
    answer, _ = parse_ts_request(refusal) or pytest.fail("no TSRequest after AUTHENTICATE")
    assert answer.error_code == STATUS_LOGON_FAILURE
    record = lab.endpoints[0].connections[-1]
    assert record.ntlm_negotiate
    assert record.authenticate


async def test_count_endpoints_on_separate_ports(lab_factory: LabFactory) -> None:
    lab = await lab_factory(count=3, protocols="SSL")
    ports = {target.port for target in lab.targets}
    assert len(ports) == 3
    confirms = await asyncio.gather(*(_negotiate(t, P.SSL) for t in lab.targets))
    assert all(isinstance(c.negotiation, NegotiationResponse) for c in confirms)
    assert lab_document(lab.info())["rdp"] == [f"127.0.0.1:{t.port}" for t in lab.targets]


async def test_distinct_certificates_per_endpoint(lab_factory: LabFactory) -> None:
    # Given three endpoints that each serve a certificate of their own
    lab = await lab_factory(count=3, distinct_certs=True)
    # When each is asked for its chain
    sessions = await asyncio.gather(*(_tls(t) for t in lab.targets))
    leaves = [x509.load_der_x509_certificate(s.chain[0]) for s in sessions]
    # Then the fingerprints differ, are the ones announced, and the subjects are numbered
    fingerprints = [leaf.fingerprint(hashes.SHA256()).hex() for leaf in leaves]
    assert fingerprints == lab_document(lab.info())["endpoint_sha256"]
    assert len(set(fingerprints)) == 3
    assert [leaf.subject.rfc4514_string() for leaf in leaves] == [
        "CN=WIN-LAB01",
        "CN=WIN-LAB01-2",
        "CN=WIN-LAB01-3",
    ]
    assert all(leaf.issuer == leaf.subject for leaf in leaves)
    with pytest.raises(UsageError, match="cannot regenerate"):
        lab.regenerate_certificate()


async def test_latency_delays_each_response(lab_factory: LabFactory) -> None:
    lab = await lab_factory(latency_ms=300)
    start = time.monotonic()
    await _negotiate(lab.target, P.SSL)
    assert time.monotonic() - start >= 0.3


async def test_regenerated_certificate_is_served(lab_factory: LabFactory) -> None:
    # Given a lab with the Windows-like self-signed certificate
    lab = await lab_factory()
    first = lab.credentials
    # When the certificate is recreated, as Windows does every six months
    second = lab.regenerate_certificate()
    # Then new connections see a new certificate with the same subject and a new key
    session = await _tls(lab.target)
    leaf = x509.load_der_x509_certificate(session.chain[0])
    assert leaf.fingerprint(hashes.SHA256()).hex() == second.sha256 == lab.certificate_sha256
    assert second.sha256 != first.sha256
    assert leaf.subject == first.leaf.subject
    assert leaf.public_key() != first.leaf.public_key()


async def test_oversized_ts_request_closes_the_connection(lab_factory: LabFactory) -> None:
    lab = await lab_factory(protocols="SSL,HYBRID")
    deadline = time.monotonic() + 5
    conn = await RdpConnection.open(lab.target, deadline)
    try:
        await conn.negotiate(_request(P.SSL | P.HYBRID), deadline)
        await conn.start_tls(deadline)
        # A header announcing 16 MiB: refused from the header, nothing is buffered.
        await conn.send_tls(b"\x30\x84" + struct.pack(">I", 16 << 20), deadline)
        assert await conn.recv_tls(deadline) == b""
    finally:
        await conn.close()


def test_config_usage_errors() -> None:
    with pytest.raises(UsageError, match="together"):
        LabConfig(cert_file=None, key_file=Path("k.pem"))
    with pytest.raises(UsageError, match="count"):
        LabConfig(count=0)
    with pytest.raises(UsageError, match="NetBIOS"):
        LabConfig(ntlm_computer="name.with.dots")
    with pytest.raises(UsageError, match="distinct certificates"):
        LabConfig(count=2, distinct_certs=True, cert=CertKind.CA)


async def test_ca_issued_variant_and_private_files(lab_factory: LabFactory) -> None:
    # Given an expired certificate issued by the lab CA
    lab = await lab_factory(cert="expired", issuer="ca", crl="blackhole")
    chain_path = lab.chain_path
    assert chain_path is not None
    directory = chain_path.parent.parent
    # Then the chain names the CA's URLs and the key is private
    assert lab.ca is not None
    assert len(lab.credentials.chain) == 2
    leaf = lab.credentials.leaf
    assert leaf.not_valid_after_utc < dt.datetime.now(dt.UTC)
    points = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert points[0].full_name is not None
    assert str(points[0].full_name[0].value).startswith(lab.pki_url)
    assert (chain_path.parent / "host-key.pem").stat().st_mode & 0o777 == 0o600
    assert lab_document(lab.info())["ca_cert"] == str(lab.ca_cert_path)
    # When the lab stops, Then its private directory is gone
    await lab.stop()
    assert not directory.exists()


def _connect_initial_then_close(port: int) -> tuple[bool, bytes]:
    """Confirm PROTOCOL_RDP, wait 0.3 s, send a Connect-Initial; whether the lab was still
    connected before it, and what it sent after it until it closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(_request(P.RDP).to_bytes())
        confirm = sock.recv(4096)
        assert parse_connection_confirm(confirm) is not None
        sock.settimeout(0.3)
        try:
            waited = sock.recv(4096) != b""
        except TimeoutError:
            waited = True
        sock.settimeout(5)
        sock.sendall(
            ClientConnectInitial.build(ClientSecurityData(EncryptionMethod.BIT_128)).to_bytes()
        )
        after = b""
        while chunk := sock.recv(4096):
            after += chunk
        return waited, after


async def test_a_lab_without_standard_security_reads_the_connect_initial_then_closes(
    lab_factory: LabFactory,
) -> None:
    # Given a lab that speaks no Standard RDP Security (no --standard-security policy)
    lab = await lab_factory()
    # When a client confirms PROTOCOL_RDP and sends its Connect-Initial 0.3 s later
    waited, after = await asyncio.to_thread(_connect_initial_then_close, lab.target.port)
    # Then the lab waited for it, and closed in order once it came, with nothing sent: a
    # close with the Connect-Initial arriving unread is a TCP reset or not, by timing
    # alone (ECONNRESET in one run, "closed the connection" in the next)
    assert waited
    assert after == b""
    # And the probe sees that close, for every method
    result = await probe_standard_security(lab.target, timeout=5)
    assert {(m.accepted, m.refused, m.error) for m in result.methods} == {(False, None, None)}
