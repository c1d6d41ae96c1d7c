"""The lab's hostile RDP modes: answers that break the protocol, for robustness tests.

What each mode puts on the wire is tabled in :mod:`rdptrust.lab.rdp`.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Awaitable, Callable
from enum import StrEnum

GARBAGE = b"\x17\xfe rdptrust lab: this is not a TPKT packet \x00\xff" * 4
#: A TLS record: alert, TLS 1.2, length 2, fatal (2), handshake_failure (40).
TLS_ALERT = bytes.fromhex("15030300020228")
ENDLESS_CHUNK = 4096
#: Upper bound of the ``endless`` stream, bytes per second.
ENDLESS_RATE = 256 * 1024
#: Largest first flight (ClientHello) read in ``tls-alert`` mode before answering.
_MAX_CLIENT_HELLO = 16 * 1024
_DISCARD_CHUNK = 4096
_TRUNCATED_AT = 11
_LENGTH_LIE = 8

#: Sends bytes to the client (after the lab's latency).
Respond = Callable[[bytes], Awaitable[None]]


class HostileMode(StrEnum):
    """How a hostile endpoint misbehaves (see the module docstring)."""

    GARBAGE = "garbage"
    LENGTH_TOO_LARGE = "length-too-large"
    LENGTH_TOO_SMALL = "length-too-small"
    TRUNCATED = "truncated"
    RESET = "reset"
    SLOW_DRIP = "slow-drip"
    TLS_ALERT = "tls-alert"
    ENDLESS = "endless"
    SILENCE = "silence"


async def replace_confirm(
    mode: HostileMode,
    pdu: bytes,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    respond: Respond,
    *,
    latency_s: float,
    timeout: float,
) -> bool:
    """Send what *mode* sends instead of the Connection Confirm *pdu*.

    True when the connection ends here; False when *mode* does not replace the Confirm.
    """
    if mode is HostileMode.GARBAGE:
        await respond(GARBAGE)
        return True
    if mode is HostileMode.LENGTH_TOO_LARGE:
        lied = struct.pack(">BBH", 3, 0, len(pdu) + _LENGTH_LIE) + pdu[4:]
        await respond(lied + bytes(_LENGTH_LIE))
        await discard_until_closed(reader, timeout)
        return True
    if mode is HostileMode.LENGTH_TOO_SMALL:
        lied = struct.pack(">BBH", 3, 0, len(pdu) - _LENGTH_LIE) + pdu[4:]
        await respond(lied)
        await discard_until_closed(reader, timeout)
        return True
    if mode is HostileMode.TRUNCATED:
        await respond(pdu[:_TRUNCATED_AT])
        return True
    if mode is HostileMode.ENDLESS:
        await endless(reader, writer, latency_s)
        return True
    return False


async def slow_drip(writer: asyncio.StreamWriter, pdu: bytes, latency_s: float) -> None:
    """Send *pdu* one byte per second."""
    if latency_s:
        await asyncio.sleep(latency_s)
    for index in range(len(pdu)):
        if index:
            await asyncio.sleep(1.0)
        writer.write(pdu[index : index + 1])
        await writer.drain()


async def tls_alert(reader: asyncio.StreamReader, respond: Respond, timeout: float) -> None:
    """Read the ClientHello and answer it with a fatal handshake_failure alert."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await reader.read(_MAX_CLIENT_HELLO)
    await respond(TLS_ALERT)


async def endless(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, latency_s: float
) -> None:
    """Send TPKT-looking bytes at :data:`ENDLESS_RATE` until the client closes."""
    chunk = (b"\x03\x00\xff\xff" + b"rdptrust lab endless " * 256)[:ENDLESS_CHUNK]
    pause = ENDLESS_CHUNK / ENDLESS_RATE
    watcher = asyncio.ensure_future(discard_until_closed(reader))
    try:
        if latency_s:
            await asyncio.sleep(latency_s)
        while not watcher.done():
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(pause)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, OSError):
            await watcher


async def wait_for_data(reader: asyncio.StreamReader, timeout: float) -> None:
    """Wait until the client sends something, closes, or *timeout* passes."""
    with contextlib.suppress(TimeoutError, OSError):
        async with asyncio.timeout(timeout):
            await reader.read(_DISCARD_CHUNK)


async def discard_until_closed(reader: asyncio.StreamReader, timeout: float | None = None) -> None:
    """Read and drop what the client sends until it closes (or *timeout* passes)."""
    with contextlib.suppress(TimeoutError, OSError):
        async with asyncio.timeout(timeout):
            while await reader.read(_DISCARD_CHUNK):
                pass
