"""A host that leaves out its intermediate: the issuer comes over AIA, the path is rebuilt,
the revocation retrievals it reveals still finish within one URL time-out."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from fixtures.lab import LabFactory
from rdptrust.engine import AssessOptions, assess
from rdptrust.fix.advice import fixes_for
from rdptrust.model.retrieval import FetchOutcome, Purpose

URL_TIMEOUT = 1.0
AIA_DELAY = 0.7


@dataclass
class Responders:
    """An AIA server answering after ``AIA_DELAY`` and a black hole, both on loopback."""

    aia_base: str
    hole_base: str
    aia_requests: list[str]
    set_issuer: Callable[[bytes], None]


@pytest_asyncio.fixture
async def responders() -> AsyncIterator[Responders]:
    issuer_der = b""
    requests: list[str] = []
    held: list[asyncio.StreamWriter] = []

    def set_issuer(der: bytes) -> None:
        nonlocal issuer_der
        issuer_der = der

    async def aia(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            requests.append(head.split(b" ")[1].decode())
            await asyncio.sleep(AIA_DELAY)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/pkix-cert\r\n"
                + f"Content-Length: {len(issuer_der)}\r\nConnection: close\r\n\r\n".encode()
                + issuer_der
            )
            await writer.drain()
        finally:
            writer.close()

    async def hole(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    servers = [
        await asyncio.start_server(aia, "127.0.0.1", 0),
        await asyncio.start_server(hole, "127.0.0.1", 0),
    ]
    ports = [s.sockets[0].getsockname()[1] for s in servers]
    try:
        yield Responders(
            f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}", requests, set_issuer
        )
    finally:
        for writer in held:
            writer.close()
        for server in servers:
            server.close()
            await server.wait_closed()


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _builder(subject: str, issuer: str, key: ec.EllipticCurvePrivateKey) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=60))
    )


def _crl_dp(url: str) -> x509.CRLDistributionPoints:
    return x509.CRLDistributionPoints(
        [x509.DistributionPoint([x509.UniformResourceIdentifier(url)], None, None, None)]
    )


def _chain(tmp_path: Path, responders: Responders) -> tuple[Path, Path, Path, x509.Certificate]:
    """Root (written as the trusted CA file), intermediate (AIA only), leaf (served)."""
    root_key, inter_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = x509.BasicConstraints(ca=True, path_length=None)
    root = _builder("AIA Root", "AIA Root", root_key).add_extension(ca, True)
    root_cert = root.sign(root_key, hashes.SHA256())
    inter_cert = (
        _builder("AIA Issuing CA", "AIA Root", inter_key)
        .add_extension(ca, True)
        .add_extension(_crl_dp(f"{responders.hole_base}/root.crl"), False)
        .sign(root_key, hashes.SHA256())
    )
    leaf_cert = (
        _builder("127.0.0.1", "AIA Issuing CA", leaf_key)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            False,
        )
        .add_extension(_crl_dp(f"{responders.hole_base}/issuing.crl"), False)
        .add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.CA_ISSUERS,
                        x509.UniformResourceIdentifier(f"{responders.aia_base}/issuing.crt"),
                    )
                ]
            ),
            False,
        )
        .sign(inter_key, hashes.SHA256())
    )
    responders.set_issuer(inter_cert.public_bytes(serialization.Encoding.DER))
    ca_file = tmp_path / "root.pem"
    ca_file.write_bytes(root_cert.public_bytes(serialization.Encoding.PEM))
    leaf_file = tmp_path / "leaf.pem"
    leaf_file.write_bytes(leaf_cert.public_bytes(serialization.Encoding.PEM))
    key_file = tmp_path / "leaf-key.pem"
    key_file.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_file, leaf_file, key_file, inter_cert


async def test_missing_intermediate_fetched_over_aia_then_revocation_with_its_own_time_out(
    lab_factory: LabFactory, responders: Responders, tmp_path: Path
) -> None:
    # Given a host that sends only its leaf, an AIA URL that answers after 0.7 s and
    # revocation URLs (leaf and intermediate) that never answer
    ca_file, leaf_file, key_file, inter = _chain(tmp_path, responders)
    lab = await lab_factory(cert_file=leaf_file, key_file=key_file)
    options = AssessOptions(
        fetch_timeout_s=URL_TIMEOUT,
        probe_timeout_s=5.0,
        root_list_url=lab.root_list_url,
        known_hosts=tmp_path / "known_hosts.json",
        system_trust=False,
        ca_files=(ca_file,),
    )
    # When diagnosing
    start = time.monotonic()
    result = await assess(lab.target, options)
    wall = time.monotonic() - start
    # Then the issuer came over AIA and the path reaches the trusted root
    assert responders.aia_requests == ["/issuing.crt"]
    assert result.trusted is True
    assert result.path_subjects == (
        "CN=127.0.0.1",
        inter.subject.rfc4514_string(),
        "CN=AIA Root",
    )
    (aia,) = [r for r in result.retrievals if r.purpose == Purpose.AIA]
    assert aia.outcome == FetchOutcome.OK
    assert aia.counted is True
    assert aia.elapsed_ms >= AIA_DELAY * 1000 * 0.9
    # and both revocation URLs the rebuilt path reveals were tried and timed out
    crls = sorted(r.url.rsplit("/", 1)[1] for r in result.retrievals if r.purpose == Purpose.CRL)
    assert crls == ["issuing.crl", "root.crl"]
    assert all(
        r.outcome == FetchOutcome.TIMEOUT and r.modelled
        for r in result.retrievals
        if r.purpose == Purpose.CRL
    )
    # and each was given its whole time-out, as Windows gives each URL its own (a slow
    # AIA answer does not shorten the revocation fetches after it)
    for crl in (r for r in result.retrievals if r.purpose == Purpose.CRL):
        assert crl.elapsed_ms >= URL_TIMEOUT * 1000 * 0.9, crl
        assert "what the assessment's deadline left" not in (crl.detail or "")
    # and the wall time is the AIA answer, then one round of revocation (plus the probe)
    probe_s = result.probe.timings.total_ms / 1000.0
    assert wall - probe_s < AIA_DELAY + URL_TIMEOUT + 0.5, (wall, probe_s)
    # while the model counts two dead revocation URLs (WINDOWS.md §3: 15 + 15 s per URL,
    # 10 + 5 s accumulative) plus the AIA wait, which later connections find cached (§5)
    assert result.revocation_capped is True
    assert result.predicted_stall_s == pytest.approx(30.0 + AIA_DELAY, abs=1.0)
    first = result.prediction.first_connection
    assert first.low_s == pytest.approx(15.0 + AIA_DELAY, abs=1.0)
    later = result.prediction.later_connections
    assert (later.low_s, later.high_s) == (15.0, 30.0)
    assert result.verdict == "critical"
    assert "revocation-unavailable" in {p.code for p in result.problems}


async def test_aia_black_holed_is_a_modelled_wait_and_the_chain_stays_incomplete(
    lab_factory: LabFactory, responders: Responders, tmp_path: Path
) -> None:
    # Given the same kind of host whose AIA URL points at the black hole
    broken = Responders(responders.hole_base, responders.hole_base, [], lambda der: None)
    ca_file, leaf_file, key_file, _ = _chain(tmp_path, broken)
    lab = await lab_factory(cert_file=leaf_file, key_file=key_file)
    options = AssessOptions(
        fetch_timeout_s=URL_TIMEOUT,
        probe_timeout_s=5.0,
        root_list_url=lab.root_list_url,
        known_hosts=tmp_path / "known_hosts.json",
        system_trust=False,
        ca_files=(ca_file,),
    )
    # When diagnosing
    result = await assess(lab.target, options)
    # Then the AIA retrieval timed out, is modelled as Windows' 15 s and is the cause
    (aia,) = [r for r in result.retrievals if r.purpose == Purpose.AIA]
    assert aia.outcome == FetchOutcome.TIMEOUT
    assert aia.modelled is True
    assert result.trusted is False
    # (the lab's root list answers at once: the AIA wait is the whole stall)
    assert result.predicted_stall_s == pytest.approx(15.0, abs=1.0)
    assert any(c.purpose == Purpose.AIA and c.modelled for c in result.causes)
    assert "send-full-chain" in {f.id for f in fixes_for(result)}
