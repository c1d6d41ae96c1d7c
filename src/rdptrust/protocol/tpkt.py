"""TPKT framing (RFC 1006 section 6, as used by MS-RDPBCGR 2.2.1.1).

A TPKT packet is ``03 00 LEN_hi LEN_lo`` followed by its payload; the length is
big-endian and counts the whole packet, header included.
"""

from __future__ import annotations

import struct

from rdptrust.errors import LocalProtocolError, RemoteProtocolError

TPKT_VERSION = 3
TPKT_HEADER_LENGTH = 4
#: The length field is 16 bits wide: no packet is longer than this.
TPKT_MAX_LENGTH = 0xFFFF


def build_tpkt(payload: bytes) -> bytes:
    """Return *payload* wrapped in a TPKT header."""
    total = TPKT_HEADER_LENGTH + len(payload)
    if total > TPKT_MAX_LENGTH:
        raise LocalProtocolError(f"TPKT payload of {len(payload)} bytes does not fit 16 bits")
    return struct.pack(">BBH", TPKT_VERSION, 0, total) + payload


def packet_length(data: bytes, offset: int = 0) -> int | None:
    """Return the total length announced by the TPKT header at *offset*.

    ``None`` means fewer than four bytes are available yet. A header that cannot be
    TPKT (wrong version, or a length shorter than the header itself) raises
    :class:`RemoteProtocolError`.
    """
    if len(data) - offset < TPKT_HEADER_LENGTH:
        if len(data) > offset and data[offset] != TPKT_VERSION:
            raise RemoteProtocolError(f"expected TPKT version 3, got 0x{data[offset]:02x}", offset)
        return None
    version, _reserved, length = struct.unpack_from(">BBH", data, offset)
    if version != TPKT_VERSION:
        raise RemoteProtocolError(f"expected TPKT version 3, got 0x{version:02x}", offset)
    if length < TPKT_HEADER_LENGTH:
        raise RemoteProtocolError(
            f"TPKT length {length} is shorter than its own header", offset + 2
        )
    return int(length)


def parse_tpkt(data: bytes, offset: int = 0) -> tuple[bytes, int] | None:
    """Split one TPKT packet off *data* at *offset*.

    Returns ``(payload, consumed)`` where *consumed* counts the whole packet, or
    ``None`` when more bytes are needed. Bytes after the packet are left alone.
    """
    length = packet_length(data, offset)
    if length is None or len(data) - offset < length:
        return None
    return bytes(data[offset + TPKT_HEADER_LENGTH : offset + length]), length
