"""TLS reach: a real Windows Server 2008 R2 host's recorded bytes replayed on loopback.

The server side of ``tests/vectors/pcap/zeek-rdp-to-ssl.pcap`` (Zeek's test trace; see
``tests/vectors/README.md``) is sent back to the probe as the host sent it: its X.224
Connection Confirm, then, for our ClientHello, its ServerHello (TLS 1.0, no extensions:
the host predates RFC 5746), Certificate and ServerHelloDone, then its ChangeCipherSpec
and Finished. The recorded Finished cannot match our session, so the handshake fails
there; the probe must have read the certificate by then and say so.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import pytest_asyncio
from OpenSSL import SSL
from rich.console import Console

from fixtures.documents import assert_valid, probe_json
from fixtures.peers import self_signed
from fixtures.vectors import load_hex
from rdptrust.errors import TlsError
from rdptrust.model.target import Target
from rdptrust.model.wire import SecurityProtocol
from rdptrust.net.connection import CLIENT_CIPHERS, RdpConnection, _client_context
from rdptrust.net.probe import probe_host
from rdptrust.protocol.x224 import (
    ConnectionConfirm,
    ConnectionRequest,
    NegotiationRequest,
    NegotiationResponse,
)
from rdptrust.report.probe import render_probe


@dataclass(frozen=True)
class Recording:
    """The server side of one recorded connection, and what Zeek's baseline says of it."""

    confirm: bytes
    flight: bytes
    finished: bytes
    #: Zeek's baseline ssl.log for the trace: the certificate's SHA-256.
    leaf_sha256: str


WIN2008R2 = Recording(
    load_hex("x224/connection_confirm_win2008r2.hex"),
    load_hex("tls/server_flight_win2008r2.hex"),
    load_hex("tls/server_finished_win2008r2.hex"),
    "a5b05d2ae076130aa41060f53ecd72bdf864ea0179250e927549c94d5ab2499a",
)
WIN_TLS12 = Recording(
    load_hex("x224/connection_confirm_win_hybrid_ex.hex"),
    load_hex("tls/server_flight_win_tls12.hex"),
    load_hex("tls/server_finished_win_tls12.hex"),
    "2f24fa5efe1c62447b32aa41af38c4176d03a62ca9c3c8d491946ed283b86cca",
)
FLIGHT = WIN2008R2.flight
LEAF_SHA256 = WIN2008R2.leaf_sha256
STATUS_REQUEST = 5
TLS_RSA_WITH_AES_128_CBC_SHA = 0x002F


@dataclass
class Replay:
    """The recorded host on loopback, and what each client sent it."""

    port: int
    client_bytes: list[bytes] = field(default_factory=list)

    @property
    def target(self) -> Target:
        return Target("127.0.0.1", self.port)


async def _read_record_bytes(reader: asyncio.StreamReader) -> bytes:
    """One whole TLS record (or b'' when the client closed), bounded by the test."""
    async with asyncio.timeout(5):
        header = await reader.readexactly(5)
        return header + await reader.readexactly(int.from_bytes(header[3:5], "big"))


@contextlib.asynccontextmanager
async def replaying(recording: Recording) -> AsyncIterator[Replay]:
    """Serve *recording*'s server side to every connection on a loopback port."""
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        sent = bytearray()
        try:
            async with asyncio.timeout(5):
                header = await reader.readexactly(4)
                await reader.readexactly(int.from_bytes(header[2:4], "big") - 4)
            writer.write(recording.confirm)
            sent += await _read_record_bytes(reader)  # the ClientHello
            writer.write(recording.flight)
            sent += await _read_record_bytes(reader)  # ClientKeyExchange
            writer.write(recording.finished)
            async with asyncio.timeout(5):
                while data := await reader.read(4096):
                    sent += data
        except (asyncio.IncompleteReadError, TimeoutError, OSError):
            pass
        finally:
            state.client_bytes.append(bytes(sent))
            writer.close()
            tasks.discard(task)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    state = Replay(server.sockets[0].getsockname()[1])
    try:
        yield state
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await server.wait_closed()


@pytest_asyncio.fixture
async def replay() -> AsyncIterator[Replay]:
    async with replaying(WIN2008R2) as state:
        yield state


def _client_hello(data: bytes) -> tuple[list[int], list[int]]:
    """The cipher suites and extension types of the ClientHello at the start of *data*."""
    body = data[9:]
    offset = 35 + body[34]
    count = int.from_bytes(body[offset : offset + 2], "big")
    suites = [
        int.from_bytes(body[offset + 2 + i : offset + 4 + i], "big") for i in range(0, count, 2)
    ]
    offset += 2 + count
    offset += 1 + body[offset]
    end = offset + 2 + int.from_bytes(body[offset : offset + 2], "big")
    offset += 2
    extensions = []
    while offset < end:
        extensions.append(int.from_bytes(body[offset : offset + 2], "big"))
        offset += 4 + int.from_bytes(body[offset + 2 : offset + 4], "big")
    return suites, extensions


async def test_probe_reports_the_certificate_of_a_recorded_windows_2008_r2_host(
    replay: Replay,
) -> None:
    # When the probe runs against the recorded host (TLS version enumeration included)
    result = await probe_host(
        replay.target, timeout=5, enumerate_protocols=False, standard_security=False
    )
    # Then the host was probed, and its certificate read from the handshake
    assert result.error is None
    tls = result.tls
    assert tls is not None
    assert not tls.completed
    assert tls.failure is not None
    assert "TLS handshake failed" in tls.failure
    assert (tls.version, tls.cipher) == ("TLSv1.0", "AES128-SHA")
    assert tls.secure_renegotiation is False
    assert [hashlib.sha256(der).hexdigest() for der in tls.chain] == [LEAF_SHA256]
    assert tls.stapled_ocsp is None
    # and the per-version connections say the host speaks TLS 1.0 only
    assert {v.version: v.accepted for v in result.tls_versions} == {
        "TLSv1.0": True,
        "TLSv1.1": False,
        "TLSv1.2": False,
        "TLSv1.3": False,
    }
    # The client went past the ServerHello without renegotiation_info: it sent its key
    # exchange (handshake type 16) after a ClientHello that asked for a staple.
    main = replay.client_bytes[0]
    suites, extensions = _client_hello(main)
    assert TLS_RSA_WITH_AES_128_CBC_SHA in suites
    assert STATUS_REQUEST in extensions
    second = main[5 + int.from_bytes(main[3:5], "big") :]
    assert second[0] == 22
    assert second[5] == 16
    # The JSON says it, against its schema
    document = probe_json(result)
    assert_valid(document)
    assert document["tls"] == {
        "version": "TLSv1.0",
        "cipher": "AES128-SHA",
        "completed": False,
        "failure": tls.failure,
        "secure_renegotiation": False,
        "ocsp_stapled": False,
        "ocsp_status": None,
    }
    assert document["certificate"]["sha256"] == LEAF_SHA256
    # and so does the terminal view
    out = io.StringIO()
    render_probe(result, Console(file=out, width=200, color_system=None))
    text = out.getvalue()
    assert "TLS handshake did not complete; the certificate below was read" in text
    assert "predates RFC 5746" in text
    assert "WIN2K8R2.awakecoding.ath.cx" in text


async def test_probe_reports_a_recorded_tls12_windows_host_with_rfc5746() -> None:
    # A later Windows host (HYBRID_EX, TLS 1.2, RSA key exchange with AES-256-GCM) signals
    # RFC 5746 and extended master secret; its certificate is read the same way.
    async with replaying(WIN_TLS12) as replay:
        result = await probe_host(
            replay.target, timeout=5, enumerate_protocols=False, standard_security=False
        )
    assert result.error is None
    assert result.negotiation is not None
    assert result.negotiation.selected == SecurityProtocol.HYBRID_EX
    tls = result.tls
    assert tls is not None
    assert not tls.completed
    assert (tls.version, tls.cipher) == ("TLSv1.2", "AES256-GCM-SHA384")
    assert tls.secure_renegotiation is True
    assert [hashlib.sha256(der).hexdigest() for der in tls.chain] == [WIN_TLS12.leaf_sha256]
    assert {v.version: v.accepted for v in result.tls_versions} == {
        "TLSv1.0": False,
        "TLSv1.1": False,
        "TLSv1.2": True,
        "TLSv1.3": False,
    }
    assert_valid(probe_json(result))


async def test_connection_without_partial_raises_a_clear_tls_error(replay: Replay) -> None:
    conn = await RdpConnection.open(replay.target, time.monotonic() + 5)
    try:
        await conn.negotiate(
            ConnectionRequest(negotiation=NegotiationRequest(3)), time.monotonic() + 5
        )
        with pytest.raises(TlsError, match="TLS handshake failed"):
            await conn.start_tls(time.monotonic() + 5)
    finally:
        await conn.close()


def _handshake_against_the_recording(ctx: SSL.Context) -> str | None:
    """Feed the recorded flight to a client on *ctx*; OpenSSL's refusal, if any."""
    conn = SSL.Connection(ctx, None)
    conn.set_connect_state()
    with contextlib.suppress(SSL.WantReadError):
        conn.do_handshake()
    conn.bio_write(FLIGHT)
    try:
        conn.do_handshake()
    except SSL.WantReadError:
        return None  # it accepted the ServerHello and waits for the server's Finished
    except SSL.Error as exc:
        return str(exc)
    return None  # pragma: no cover - the recorded Finished was not sent yet


def test_openssl_refuses_the_recording_without_legacy_server_connect() -> None:
    # Given OpenSSL's defaults plus everything else the probe sets, but not the option
    plain = SSL.Context(SSL.TLS_CLIENT_METHOD)
    plain.set_min_proto_version(SSL.TLS1_VERSION)
    plain.set_cipher_list(CLIENT_CIPHERS)
    refusal = _handshake_against_the_recording(plain)
    assert refusal is not None
    assert "unsafe legacy renegotiation disabled" in refusal
    # The probe's context goes on
    assert _handshake_against_the_recording(_client_context("TLSv1.0", "TLSv1.3")) is None


async def _pump_handshake(
    conn: SSL.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    for _ in range(20):  # a handshake is a few round trips
        try:
            conn.do_handshake()
        except SSL.WantReadError:
            pass
        else:
            _flush(conn, writer)
            return
        _flush(conn, writer)
        async with asyncio.timeout(5):
            data = await reader.read(16384)
        if not data:
            raise ConnectionResetError("the client left")
        conn.bio_write(data)
    raise AssertionError("the handshake did not end")


def _flush(conn: SSL.Connection, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(SSL.WantReadError):
        while chunk := conn.bio_read(16384):
            writer.write(chunk)


async def test_a_server_hello_request_is_refused() -> None:
    # Given a TLS 1.2 host that asks for a renegotiation (HelloRequest) after its handshake
    cert, key = self_signed("WIN-RENEGO")
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.set_max_proto_version(SSL.TLS1_2_VERSION)
    ctx.use_certificate(cert)
    ctx.use_privatekey(key)
    seen: dict[str, object] = {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = SSL.Connection(ctx, None)
        conn.set_accept_state()
        try:
            async with asyncio.timeout(5):
                header = await reader.readexactly(4)
                await reader.readexactly(int.from_bytes(header[2:4], "big") - 4)
            confirm = ConnectionConfirm(NegotiationResponse(SecurityProtocol.SSL))
            writer.write(confirm.to_bytes())
            await _pump_handshake(conn, reader, writer)
            conn.renegotiate()
            with contextlib.suppress(SSL.WantReadError):
                conn.do_handshake()
            conn.sendall(b"after the HelloRequest")
            _flush(conn, writer)
            async with asyncio.timeout(5):
                data = await reader.read(16384)
            seen["answer"] = data
            if data:
                conn.bio_write(data)
                try:
                    conn.recv(16384)
                except SSL.Error as exc:
                    seen["server"] = str(exc)
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            seen["server"] = repr(exc)
        finally:
            seen["done"] = True
            _flush(conn, writer)
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    deadline = time.monotonic() + 5
    conn = await RdpConnection.open(Target("127.0.0.1", port), deadline)
    try:
        await conn.negotiate(
            ConnectionRequest(negotiation=NegotiationRequest(SecurityProtocol.SSL)), deadline
        )
        session = await conn.start_tls(deadline)
        assert session.version == "TLSv1.2"
        # When the client reads what the host sent after its HelloRequest
        data = await conn.recv_tls(deadline)
    finally:
        await conn.close()
        server.close()
        await server.wait_closed()
    # Then it read the data, refused the renegotiation, and none took place
    assert data == b"after the HelloRequest"
    for _ in range(100):
        if "done" in seen:
            break
        await asyncio.sleep(0.02)
    assert "no renegotiation" in str(seen.get("server")), seen
