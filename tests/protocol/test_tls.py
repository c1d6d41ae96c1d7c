"""The server-flight reader (rdptrust.protocol.tls) over a real Windows host's bytes."""

from __future__ import annotations

import hashlib

import pytest

from fixtures.pcap import server_side
from fixtures.vectors import VECTORS, load_hex
from rdptrust.errors import RemoteProtocolError
from rdptrust.protocol.tls import (
    RENEGOTIATION_INFO,
    ServerFlightReader,
    parse_certificate_message,
    parse_certificate_status,
    parse_server_hello,
)

FLIGHT = "tls/server_flight_win2008r2.hex"
#: Zeek's own baseline for this trace (ssl.log cert_chain_fps): the leaf's SHA-256.
LEAF_SHA256 = "a5b05d2ae076130aa41060f53ecd72bdf864ea0179250e927549c94d5ab2499a"


def test_vectors_are_the_capture_s_server_side() -> None:
    segments = server_side(VECTORS / "pcap" / "zeek-rdp-to-ssl.pcap", client_port=49206)
    assert segments[0] == load_hex("x224/connection_confirm_win2008r2.hex")
    assert segments[1] == load_hex(FLIGHT)
    assert segments[2] == load_hex("tls/server_finished_win2008r2.hex")
    segments = server_side(VECTORS / "pcap" / "zeek-rdp-no-cookie-mstshash.pcap", client_port=50204)
    assert segments[0] == load_hex("x224/connection_confirm_win_hybrid_ex.hex")
    assert segments[1] == load_hex("tls/server_flight_win_tls12.hex")
    assert segments[2] == load_hex("tls/server_finished_win_tls12.hex")


def test_tls12_windows_flight_signals_rfc5746() -> None:
    reader = _read([load_hex("tls/server_flight_win_tls12.hex")])
    assert reader.finished
    hello = reader.server_hello
    assert hello is not None
    assert (hello.version, hello.cipher_suite) == (0x0303, 0x009D)  # RSA AES-256-GCM
    assert hello.extensions == (0x0017, RENEGOTIATION_INFO)  # extended master secret
    assert hello.secure_renegotiation
    assert reader.certificates is not None
    assert hashlib.sha256(reader.certificates[0]).hexdigest() == (
        "2f24fa5efe1c62447b32aa41af38c4176d03a62ca9c3c8d491946ed283b86cca"
    )


def _read(chunks: list[bytes]) -> ServerFlightReader:
    reader = ServerFlightReader()
    for chunk in chunks:
        reader.feed(chunk)
    return reader


@pytest.mark.parametrize("mode", ["whole", "bytewise", "trailing"])
def test_windows_2008_r2_flight(mode: str) -> None:
    data = load_hex(FLIGHT)
    if mode == "whole":
        chunks = [data]
    elif mode == "bytewise":
        chunks = [data[i : i + 1] for i in range(len(data))]
    else:
        chunks = [data + load_hex("tls/server_finished_win2008r2.hex")]
    reader = _read(chunks)
    assert reader.finished
    hello = reader.server_hello
    assert hello is not None
    assert hello.version == 0x0301
    assert hello.cipher_suite == 0x002F  # TLS_RSA_WITH_AES_128_CBC_SHA
    assert hello.extensions == ()
    assert not hello.secure_renegotiation
    assert reader.certificates is not None
    assert len(reader.certificates) == 1
    assert hashlib.sha256(reader.certificates[0]).hexdigest() == LEAF_SHA256
    assert reader.ocsp_response is None


def test_nothing_read_before_the_record_is_whole() -> None:
    data = load_hex(FLIGHT)
    reader = _read([data[:-1]])
    assert reader.server_hello is None
    assert not reader.finished


def test_not_finished_before_server_hello_done() -> None:
    # Given the same messages split into two records, the last (ServerHelloDone) missing
    data = load_hex(FLIGHT)[5:-4]
    record = b"\x16\x03\x01" + len(data).to_bytes(2, "big") + data
    reader = _read([record])
    assert reader.server_hello is not None
    assert reader.certificates is not None
    assert not reader.finished


def _hello(extensions: bytes) -> bytes:
    body = b"\x03\x03" + bytes(32) + b"\x00" + b"\xc0\x2f\x00"
    return body + len(extensions).to_bytes(2, "big") + extensions


def test_server_hello_with_renegotiation_info() -> None:
    hello = parse_server_hello(_hello(b"\xff\x01\x00\x01\x00" + b"\x00\x0b\x00\x02\x01\x00"))
    assert hello.extensions == (RENEGOTIATION_INFO, 0x000B)
    assert hello.secure_renegotiation


def test_tls13_server_hello_stops_the_reader() -> None:
    body = _hello(b"\x00\x2b\x00\x02\x03\x04")
    record = b"\x16\x03\x03" + (len(body) + 4).to_bytes(2, "big")
    reader = _read([record + b"\x02" + len(body).to_bytes(3, "big") + body])
    assert reader.finished
    assert reader.certificates is None


@pytest.mark.parametrize(
    "body",
    [
        b"\x03\x01" + bytes(10),  # too short
        b"\x03\x01" + bytes(32) + b"\x21" + bytes(40),  # session id over 32 bytes
        _hello(b"\xff\x01\x00\x05\x00"),  # extension overruns
        _hello(b"")[:-1],  # extensions length truncated
    ],
)
def test_bad_server_hello(body: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_server_hello(body)


def test_certificate_message_bounds() -> None:
    assert parse_certificate_message(b"\x00\x00\x05\x00\x00\x02ab") == (b"ab",)
    with pytest.raises(RemoteProtocolError):
        parse_certificate_message(b"\x00\x00\x05\x00\x00\x09ab")
    with pytest.raises(RemoteProtocolError):
        parse_certificate_message(b"\x00\x00\x09\x00\x00\x02ab")


def test_certificate_status() -> None:
    assert parse_certificate_status(b"\x01\x00\x00\x03xyz") == b"xyz"
    assert parse_certificate_status(b"\x02\x00\x00\x03xyz") is None
    with pytest.raises(RemoteProtocolError):
        parse_certificate_status(b"\x01\x00\x00\x09xyz")


def test_oversized_record_refused() -> None:
    with pytest.raises(RemoteProtocolError):
        ServerFlightReader().feed(b"\x16\x03\x01\xff\xff")


def test_unknown_record_type_refused() -> None:
    with pytest.raises(RemoteProtocolError):
        ServerFlightReader().feed(b"\x63\x03\x01\x00\x01\x00")
