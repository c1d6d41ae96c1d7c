"""The lab's TLS modes: a host that predates RFC 5746, and a host that staples OCSP."""

from __future__ import annotations

import asyncio
import contextlib
import io
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from OpenSSL import SSL
from rich.console import Console

from fixtures.documents import assert_valid, probe_json
from fixtures.lab import LabFactory, lab_config
from fixtures.peers import Display, run_xfreerdp
from fixtures.vectors import load_hex
from rdptrust.errors import UsageError
from rdptrust.lab.rdp import LegacyTlsServer, StaplingTlsServer
from rdptrust.lab.rdp.legacy_tls import prf10
from rdptrust.model.retrieval import RevocationStatus
from rdptrust.net.probe import probe_host
from rdptrust.pki.stapling import check_stapled_ocsp
from rdptrust.protocol.tls import ServerFlightReader
from rdptrust.report.probe import render_probe


def test_tls10_prf_streams_and_depends_on_the_secret() -> None:
    # The PRF is checked for real against OpenSSL's TLS 1.0 key derivation by the
    # handshakes below (they complete only when both sides derive the same keys).
    out = prf10(b"abc", b"label", b"seed", 20)
    assert len(out) == 20
    assert out != prf10(b"abd", b"label", b"seed", 20)
    assert prf10(b"abc", b"label", b"seed", 40)[:20] == out


async def test_probe_completes_with_the_legacy_host(lab_factory: LabFactory) -> None:
    # Given a lab host that predates RFC 5746 and offers TLS and CredSSP
    lab = await lab_factory(tls_mode="legacy", protocols="SSL,HYBRID")
    # When the probe runs
    result = await probe_host(lab.target, timeout=5, standard_security=False)
    # Then TLS completed, on TLS 1.0 with RSA key exchange, without renegotiation_info
    assert result.error is None
    tls = result.tls
    assert tls is not None
    assert tls.completed
    assert (tls.version, tls.cipher) == ("TLSv1.0", "AES128-SHA")
    assert tls.secure_renegotiation is False
    assert result.leaf == lab.credentials.leaf.public_bytes(Encoding.DER)
    assert {v.version: v.accepted for v in result.tls_versions} == {
        "TLSv1.0": True,
        "TLSv1.1": False,
        "TLSv1.2": False,
        "TLSv1.3": False,
    }
    # though the client signalled RFC 5746 (the host ignored it, as old hosts did)
    server = lab.endpoints[0].tls_server
    assert isinstance(server, LegacyTlsServer)
    assert server.client_signalled_rfc5746
    # and the CredSSP answer came over the hand-written TLS session, timed
    assert result.ntlm is not None
    assert result.ntlm.error is None
    assert result.ntlm.netbios_computer_name == "WIN-LAB01"
    assert result.ntlm.challenge_ms is not None
    assert 0 < result.ntlm.challenge_ms <= result.ntlm.elapsed_ms
    document = probe_json(result)
    assert_valid(document)
    assert document["tls"]["secure_renegotiation"] is False
    assert document["ntlm"]["challenge_ms"] == result.ntlm.challenge_ms
    out = io.StringIO()
    render_probe(result, Console(file=out, width=200, color_system=None))
    assert "predates RFC 5746" in out.getvalue()
    assert "NEGOTIATE to CHALLENGE" in out.getvalue()


async def _first_flight(port: int) -> bytes:
    """What the lab host sends for OpenSSL's ClientHello (read raw, never completed)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(bytes.fromhex("030000130ee000000000000100080003000000"))
        async with asyncio.timeout(5):
            await reader.readexactly(19)
        ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
        ctx.set_cipher_list(b"AES128-SHA:@SECLEVEL=0")
        ctx.set_min_proto_version(SSL.TLS1_VERSION)
        conn = SSL.Connection(ctx, None)
        conn.set_connect_state()
        with contextlib.suppress(SSL.WantReadError):
            conn.do_handshake()
        writer.write(conn.bio_read(16384))
        flight = ServerFlightReader()
        data = b""
        async with asyncio.timeout(5):
            while not flight.finished:
                chunk = await reader.read(16384)
                assert chunk
                data += chunk
                flight.feed(chunk)
        return data
    finally:
        writer.close()


async def test_legacy_host_answers_like_the_recorded_windows_2008_r2(
    lab_factory: LabFactory,
) -> None:
    lab = await lab_factory(tls_mode="legacy", protocols="SSL")
    ours, recorded = ServerFlightReader(), ServerFlightReader()
    ours.feed(await _first_flight(lab.target.port))
    recorded.feed(load_hex("tls/server_flight_win2008r2.hex"))
    assert ours.server_hello is not None
    assert recorded.server_hello is not None
    for reader in (ours, recorded):
        hello = reader.server_hello
        assert hello is not None
        assert (hello.version, hello.cipher_suite, hello.extensions) == (0x0301, 0x002F, ())
        assert reader.certificates is not None
        assert len(reader.certificates) == 1


async def test_openssl_without_legacy_server_connect_refuses_the_legacy_host(
    lab_factory: LabFactory,
) -> None:
    # An OpenSSL client with default options aborts on the lab host exactly as on the
    # recorded one: the lab reproduces what the field sees.
    lab = await lab_factory(tls_mode="legacy", protocols="SSL")
    reader, writer = await asyncio.open_connection("127.0.0.1", lab.target.port)
    try:
        writer.write(bytes.fromhex("030000130ee000000000000100080001000000"))
        async with asyncio.timeout(5):
            await reader.readexactly(19)
        ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
        ctx.set_cipher_list(b"ALL:@SECLEVEL=0")
        ctx.set_min_proto_version(SSL.TLS1_VERSION)
        conn = SSL.Connection(ctx, None)
        conn.set_connect_state()
        with contextlib.suppress(SSL.WantReadError):
            conn.do_handshake()
        writer.write(conn.bio_read(16384))
        error = ""
        async with asyncio.timeout(5):
            while not error:
                conn.bio_write(await reader.read(16384))
                try:
                    conn.do_handshake()
                except SSL.WantReadError:
                    continue
                except SSL.Error as exc:
                    error = str(exc)
        assert "unsafe legacy renegotiation disabled" in error
        with contextlib.suppress(SSL.WantReadError):
            writer.write(conn.bio_read(16384))  # the alert
        await writer.drain()
        server = lab.endpoints[0].tls_server
        assert isinstance(server, LegacyTlsServer)
        for _ in range(100):
            if server.last_failure:
                break
            await asyncio.sleep(0.02)
        assert server.last_failure == "the client sent alert 2.40"
    finally:
        writer.close()


@pytest.mark.peer
async def test_freerdp_fails_on_the_legacy_host_as_on_the_real_one(
    lab_factory: LabFactory, xvfb_display: Display, tmp_path: Path
) -> None:
    # FreeRDP 2 on OpenSSL 3 (Debian 12) does not set OP_LEGACY_SERVER_CONNECT: it aborts
    # right after the ServerHello with a handshake_failure alert, the alert OpenSSL sends
    # for "unsafe legacy renegotiation disabled". The probe completes on the same host.
    lab = await lab_factory(tls_mode="legacy", protocols="SSL")
    done = await asyncio.to_thread(
        run_xfreerdp,
        xvfb_display,
        tmp_path,
        lab.target.port,
        "/cert:ignore",
        "/sec:tls",
        "/tls-seclevel:0",
    )
    assert done.returncode != 0
    assert "ERRCONNECT_TLS_CONNECT_FAILED" in done.stdout + done.stderr
    server = lab.endpoints[0].tls_server
    assert isinstance(server, LegacyTlsServer)
    assert server.client_signalled_rfc5746
    assert server.last_failure == "the client sent alert 2.40"
    result = await probe_host(lab.target, timeout=5, enumerate_tls_versions=False)
    assert result.tls is not None
    assert result.tls.completed


async def test_stapling_host_staples_and_the_probe_keeps_it(lab_factory: LabFactory) -> None:
    # Given a CA-issued host that staples the lab OCSP responder's answer
    lab = await lab_factory(cert="ca", tls_mode="stapled")
    result = await probe_host(lab.target, timeout=5, standard_security=False)
    # Then the probe asked for a staple, got it, and kept it as the host sent it
    assert result.error is None
    assert result.tls is not None
    assert result.tls.completed
    staple = result.stapled_ocsp
    assert staple is not None
    answer = ocsp.load_der_ocsp_response(staple)
    assert answer.serial_number == lab.credentials.leaf.serial_number
    server = lab.endpoints[0].tls_server
    assert isinstance(server, StaplingTlsServer)
    assert server.requested >= 1
    assert server.stapled == server.requested
    document = probe_json(result)
    assert_valid(document)
    assert document["tls"]["ocsp_stapled"] is True
    assert document["tls"]["ocsp_status"] == "good"
    out = io.StringIO()
    render_probe(result, Console(file=out, width=200, color_system=None))
    assert "OCSP stapled: yes (good" in out.getvalue()
    # and the judgement can use it: a good answer for the leaf, signed by its issuer
    check = check_stapled_ocsp(staple, result.chain)
    assert check is not None
    assert check.status is RevocationStatus.GOOD
    # The CredSSP answer runs over this TLS server too
    assert result.ntlm is not None
    assert result.ntlm.error is None


async def test_stapled_tls12_and_revoked(lab_factory: LabFactory) -> None:
    lab = await lab_factory(cert="ca", tls_mode="stapled", tls_max="TLSv1.2")
    assert lab.ca is not None
    lab.ca.revoke(lab.credentials.leaf.serial_number)
    result = await probe_host(lab.target, timeout=5, enumerate_tls_versions=False, ntlm=False)
    assert result.tls is not None
    assert result.tls.version == "TLSv1.2"
    assert probe_json(result)["tls"]["ocsp_status"] == "revoked"
    check = check_stapled_ocsp(result.stapled_ocsp, result.chain)
    assert check is not None
    assert check.status is RevocationStatus.REVOKED
    # A staple judged against a chain without its issuer says nothing
    assert check_stapled_ocsp(result.stapled_ocsp, result.chain[:1]) is None


async def test_standard_host_staples_nothing(lab_factory: LabFactory) -> None:
    lab = await lab_factory(cert="ca")
    result = await probe_host(lab.target, timeout=5, enumerate_tls_versions=False, ntlm=False)
    assert result.tls is not None
    assert result.stapled_ocsp is None
    assert probe_json(result)["tls"]["ocsp_stapled"] is False


def test_stapling_needs_the_lab_ca() -> None:
    with pytest.raises(UsageError, match="needs the lab CA"):
        lab_config(tls_mode="stapled")
