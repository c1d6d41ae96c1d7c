"""Each hostile mode of the lab's RDP endpoint, as a raw socket and as RdpConnection see it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time

import pytest

from fixtures.lab import LabFactory
from rdptrust.errors import ConnectError, RemoteProtocolError, TlsError, TransportTimeout
from rdptrust.lab.rdp import ENDLESS_RATE, GARBAGE, TLS_ALERT
from rdptrust.model.target import Target
from rdptrust.model.wire import SecurityProtocol
from rdptrust.net.connection import RdpConnection
from rdptrust.protocol.x224 import (
    ConnectionConfirm,
    ConnectionRequest,
    NegotiationRequest,
    NegotiationResponse,
)

REQUEST = ConnectionRequest(
    cookie="test", negotiation=NegotiationRequest(SecurityProtocol.SSL)
).to_bytes()


async def _open(target: Target) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(target.host, target.port)
    writer.write(REQUEST)
    await writer.drain()
    return reader, writer


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def _read_all(reader: asyncio.StreamReader, limit: int = 1 << 16) -> bytes:
    data = b""
    async with asyncio.timeout(5):
        while chunk := await reader.read(4096):
            data += chunk
            assert len(data) <= limit
    return data


async def _negotiate(target: Target, timeout: float = 5.0) -> object:
    deadline = time.monotonic() + timeout
    conn = await RdpConnection.open(target, deadline)
    try:
        return await conn.negotiate(
            ConnectionRequest(negotiation=NegotiationRequest(SecurityProtocol.SSL)), deadline
        )
    finally:
        await conn.close()


async def test_garbage(lab_factory: LabFactory) -> None:
    lab = await lab_factory(hostile="garbage")
    reader, writer = await _open(lab.target)
    try:
        assert await _read_all(reader) == GARBAGE
    finally:
        await _close(writer)
    with pytest.raises(RemoteProtocolError, match="TPKT version"):
        await _negotiate(lab.target)


@pytest.mark.parametrize(
    ("mode", "announced", "sent", "words"),
    [
        ("length-too-large", 27, 27, "length indicator 14"),
        ("length-too-small", 11, 19, "length indicator 14"),
    ],
)
async def test_length_lies(
    lab_factory: LabFactory, mode: str, announced: int, sent: int, words: str
) -> None:
    lab = await lab_factory(hostile=mode)
    reader, writer = await _open(lab.target)
    try:
        async with asyncio.timeout(5):
            data = await reader.readexactly(sent)
        assert struct.unpack(">H", data[2:4])[0] == announced
        assert data[4] == 14  # the X.224 length indicator of a Confirm with RDP_NEG_RSP
    finally:
        await _close(writer)
    with pytest.raises(RemoteProtocolError, match=words):
        await _negotiate(lab.target)


async def test_truncated(lab_factory: LabFactory) -> None:
    lab = await lab_factory(hostile="truncated")
    reader, writer = await _open(lab.target)
    try:
        data = await _read_all(reader)
    finally:
        await _close(writer)
    assert len(data) == 11
    assert data[:4] == bytes.fromhex("03000013")
    with pytest.raises(ConnectError, match="after 11 bytes"):
        await _negotiate(lab.target)


def _recv_after_request(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(REQUEST)
        return sock.recv(4096)


async def test_reset(lab_factory: LabFactory) -> None:
    lab = await lab_factory(hostile="reset")
    with pytest.raises(ConnectionResetError):
        await asyncio.to_thread(_recv_after_request, lab.target.port)
    with pytest.raises(ConnectError, match="reset"):
        await _negotiate(lab.target)


async def test_slow_drip(lab_factory: LabFactory) -> None:
    lab = await lab_factory(hostile="slow-drip")
    reader, writer = await _open(lab.target)
    try:
        start = time.monotonic()
        arrivals = []
        async with asyncio.timeout(5):
            for _ in range(3):
                assert len(await reader.read(4096)) == 1
                arrivals.append(time.monotonic() - start)
    finally:
        await _close(writer)
    assert arrivals[0] < 0.5
    assert 0.8 < arrivals[1] - arrivals[0] < 1.5
    assert 0.8 < arrivals[2] - arrivals[1] < 1.5


async def test_tls_alert(lab_factory: LabFactory) -> None:
    lab = await lab_factory(hostile="tls-alert")
    deadline = time.monotonic() + 5
    conn = await RdpConnection.open(lab.target, deadline)
    try:
        confirm = await conn.negotiate(
            ConnectionRequest(negotiation=NegotiationRequest(SecurityProtocol.SSL)), deadline
        )
        assert isinstance(confirm, ConnectionConfirm)
        assert isinstance(confirm.negotiation, NegotiationResponse)
        with pytest.raises(TlsError, match="handshake failure"):
            await conn.start_tls(deadline)
    finally:
        await conn.close()
    # On the wire: the 19-byte Confirm, then exactly the alert record.
    reader, writer = await _open(lab.target)
    try:
        async with asyncio.timeout(5):
            await reader.readexactly(19)
        writer.write(b"\x16\x03\x01\x00\x05hello")  # stands in for a ClientHello
        assert await _read_all(reader) == TLS_ALERT
    finally:
        await _close(writer)


async def test_endless(lab_factory: LabFactory) -> None:
    lab = await lab_factory(hostile="endless")
    reader, writer = await _open(lab.target)
    received = 0
    try:
        start = time.monotonic()
        async with asyncio.timeout(5):
            while received <= ENDLESS_RATE // 2:
                chunk = await reader.read(65536)
                assert chunk, "the endless stream ended"
                received += len(chunk)
        elapsed = time.monotonic() - start
    finally:
        await _close(writer)
    # Bounded rate: no faster than the configured rate allows (plus socket buffers).
    assert received <= ENDLESS_RATE * (elapsed + 1) + (1 << 20)
    # A client with a bounded buffer gives up with a parser error, not a hang.
    with pytest.raises(RemoteProtocolError):
        await _negotiate(lab.target)


async def test_silence(lab_factory: LabFactory) -> None:
    lab = await lab_factory(hostile="silence")
    with pytest.raises(TransportTimeout, match="no answer"):
        await _negotiate(lab.target, timeout=0.5)


async def test_stop_ends_held_connections(lab_factory: LabFactory) -> None:
    # Given a silent lab holding a connection
    lab = await lab_factory(hostile="silence")
    reader, writer = await _open(lab.target)
    await asyncio.sleep(0.1)
    # When the lab stops
    await lab.stop()
    # Then the client sees the connection end, and nothing is left behind
    try:
        assert await _read_all(reader) == b""
    finally:
        await _close(writer)
    assert not lab.endpoints
