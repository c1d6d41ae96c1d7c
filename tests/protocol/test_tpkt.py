from __future__ import annotations

import pytest

from rdptrust.errors import LocalProtocolError, RemoteProtocolError
from rdptrust.protocol.tpkt import build_tpkt, packet_length, parse_tpkt


def test_round_trip_and_streaming() -> None:
    packet = build_tpkt(b"\x02\xf0\x80hello")
    assert packet[:4] == b"\x03\x00\x00\x0c"
    for cut in range(len(packet)):
        assert parse_tpkt(packet[:cut]) is None
    assert parse_tpkt(packet + b"\x03") == (b"\x02\xf0\x80hello", 12)
    assert packet_length(packet) == 12


def test_offset() -> None:
    data = b"xx" + build_tpkt(b"ab")
    assert parse_tpkt(data, 2) == (b"ab", 6)


def test_errors() -> None:
    with pytest.raises(RemoteProtocolError, match="offset 0"):
        packet_length(b"\x16\x03")
    with pytest.raises(RemoteProtocolError, match="offset 2"):
        packet_length(b"\x03\x00\x00\x01")
    with pytest.raises(LocalProtocolError):
        build_tpkt(b"\x00" * 0xFFFC)
