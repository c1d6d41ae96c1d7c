"""X.224 Connection Request/Confirm codec: spec vectors, streaming, round trips, bad input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fixtures.vectors import load_hex
from rdptrust.errors import LocalProtocolError, RemoteProtocolError
from rdptrust.model.wire import SecurityProtocol
from rdptrust.protocol import (
    ConnectionConfirm,
    ConnectionRequest,
    CorrelationInfo,
    FailureCode,
    NegotiationFailure,
    NegotiationRequest,
    NegotiationRequestFlags,
    NegotiationResponse,
    NegotiationResponseFlags,
    failure_name,
    parse_connection_confirm,
    parse_connection_request,
)

REQUEST_VECTORS = ["x224/connection_request_spec.hex", "x224/connection_request_nocookie.hex"]
CONFIRM_VECTORS = [
    "x224/connection_confirm_spec.hex",
    "x224/connection_confirm_failure.hex",
    "x224/connection_confirm_legacy.hex",
]


def test_spec_connection_request() -> None:
    data = load_hex("x224/connection_request_spec.hex")
    request, consumed = parse_connection_request(data) or pytest.fail("need more data")
    assert consumed == len(data) == 44
    assert request.cookie == "eltons"
    assert request.negotiation == NegotiationRequest(SecurityProtocol.RDP)
    assert request.correlation is None
    built = ConnectionRequest(
        cookie="eltons", negotiation=NegotiationRequest(SecurityProtocol.RDP)
    ).to_bytes()
    assert built == data


def test_spec_connection_confirm() -> None:
    data = load_hex("x224/connection_confirm_spec.hex")
    confirm, consumed = parse_connection_confirm(data) or pytest.fail("need more data")
    assert consumed == 19
    assert confirm.negotiation == NegotiationResponse(SecurityProtocol.RDP)
    assert confirm.src_ref == 0x1234
    assert confirm.to_bytes() == data


def test_failure_and_legacy_confirms() -> None:
    failure, _ = parse_connection_confirm(load_hex("x224/connection_confirm_failure.hex")) or (
        pytest.fail("need more data")
    )
    assert isinstance(failure.negotiation, NegotiationFailure)
    assert failure.negotiation.name == "SSL_NOT_ALLOWED_BY_SERVER"
    legacy, _ = parse_connection_confirm(load_hex("x224/connection_confirm_legacy.hex")) or (
        pytest.fail("need more data")
    )
    assert legacy.negotiation is None


@pytest.mark.parametrize("name", REQUEST_VECTORS)
def test_request_byte_by_byte_and_trailing(name: str) -> None:
    data = load_hex(name)
    for cut in range(len(data)):
        assert parse_connection_request(data[:cut]) is None
    parsed = parse_connection_request(data + b"\x03\x00trailing")
    assert parsed is not None
    assert parsed[1] == len(data)
    assert parsed[0].to_bytes() == data


@pytest.mark.parametrize("name", CONFIRM_VECTORS)
def test_confirm_byte_by_byte_and_trailing(name: str) -> None:
    data = load_hex(name)
    for cut in range(len(data)):
        assert parse_connection_confirm(data[:cut]) is None
    parsed = parse_connection_confirm(data + b"\xff" * 7)
    assert parsed is not None
    assert parsed[1] == len(data)
    assert parsed[0].to_bytes() == data


def test_request_with_correlation_info_round_trip() -> None:
    request = ConnectionRequest(
        routing_token=b"3640205228.15629.0000",
        negotiation=NegotiationRequest(
            SecurityProtocol.SSL | SecurityProtocol.HYBRID,
            NegotiationRequestFlags.CORRELATION_INFO_PRESENT,
        ),
        correlation=CorrelationInfo(bytes(range(1, 13)) + b"\x0e\x0f\x10\x11"),
    )
    data = request.to_bytes()
    assert parse_connection_request(data) == (request, len(data))


@pytest.mark.parametrize(
    ("data", "offset", "fragment"),
    [
        (bytes.fromhex("04 00 00 13"), 0, "TPKT version"),
        (bytes.fromhex("03 00 00 02"), 2, "shorter than its own header"),
        (bytes.fromhex("03 00 00 0b 05 d0 00 00 12 34 00"), 4, "length indicator"),
        (bytes.fromhex("03 00 00 0b 06 e0 00 00 12 34 00"), 5, "expected X.224 code 0xd0"),
        (bytes.fromhex("03 00 00 0c 05 d0 00 00 12 34 00 00"), 4, "length indicator"),
        (bytes.fromhex("03 00 00 07 02 d0 00"), 4, "shorter than an X.224 header"),
        (
            bytes.fromhex("03 00 00 13 0e d0 00 00 12 34 00 07 00 08 00 00 00 00 00"),
            11,
            "got type 7",
        ),
        (
            bytes.fromhex("03 00 00 13 0e d0 00 00 12 34 00 02 00 09 00 00 00 00 00"),
            13,
            "length must be 8",
        ),
        (bytes.fromhex("03 00 00 0f 0a d0 00 00 12 34 00 02 00 08 00"), 11, "truncated"),
        (
            bytes.fromhex("03 00 00 14 0f d0 00 00 12 34 00 02 00 08 00 00 00 00 00 99"),
            19,
            "unexpected bytes",
        ),
    ],
)
def test_malformed_confirm_names_offset(data: bytes, offset: int, fragment: str) -> None:
    with pytest.raises(RemoteProtocolError, match=fragment) as info:
        parse_connection_confirm(data)
    assert info.value.offset == offset
    assert f"offset {offset}" in str(info.value)


@pytest.mark.parametrize(
    "data",
    [
        bytes.fromhex("03 00 00 11 0c e0 00 00 00 00 00") + b"Cookie: x",
        bytes.fromhex("03 00 00 13 0e e0 00 00 00 00 00") + b"Cookie: y\r\n",
        bytes.fromhex("03 00 00 13 0e e0 00 00 00 00 00 02 00 08 00 03 00 00 00"),
        bytes.fromhex("03 00 00 13 0e e0 00 00 00 00 00 01 08 08 00 03 00 00 00"),
    ],
)
def test_malformed_request(data: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_connection_request(data)


def test_builders_refuse_what_the_spec_forbids() -> None:
    with pytest.raises(LocalProtocolError):
        ConnectionRequest(cookie="a", routing_token=b"b")
    with pytest.raises(LocalProtocolError):
        ConnectionRequest(cookie="bad\r\nname")
    with pytest.raises(LocalProtocolError):
        ConnectionRequest(cookie="x" * 300).to_bytes()
    with pytest.raises(LocalProtocolError):
        ConnectionRequest(correlation=CorrelationInfo(b"\x01" * 16))
    with pytest.raises(LocalProtocolError):
        CorrelationInfo(b"\x00" * 16)
    with pytest.raises(LocalProtocolError):
        NegotiationFailure(-1)


def test_failure_names() -> None:
    assert failure_name(5) == FailureCode.HYBRID_REQUIRED_BY_SERVER.name
    assert failure_name(0x99) == "UNKNOWN_0x00000099"


protocols = st.integers(0, 0x1F).map(SecurityProtocol)


@given(
    cookie=st.none() | st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40),
    requested=st.none() | protocols,
    flags=st.sampled_from([0, 1, 2, 3]),
)
def test_request_round_trip(
    cookie: str | None, requested: SecurityProtocol | None, flags: int
) -> None:
    neg = (
        None if requested is None else NegotiationRequest(requested, NegotiationRequestFlags(flags))
    )
    request = ConnectionRequest(cookie=cookie, negotiation=neg)
    data = request.to_bytes()
    assert parse_connection_request(data) == (request, len(data))


@given(
    kind=st.sampled_from(["rsp", "fail", "none"]),
    value=st.integers(0, 0xFFFFFFFF),
    flags=st.integers(0, 0x1F),
)
def test_confirm_round_trip(kind: str, value: int, flags: int) -> None:
    neg: NegotiationResponse | NegotiationFailure | None = None
    if kind == "rsp":
        neg = NegotiationResponse(SecurityProtocol(value), NegotiationResponseFlags(flags))
    elif kind == "fail":
        neg = NegotiationFailure(value)
    confirm = ConnectionConfirm(negotiation=neg)
    data = confirm.to_bytes()
    assert parse_connection_confirm(data) == (confirm, len(data))


@given(st.binary(max_size=64))
def test_random_bytes_never_raise_anything_else(data: bytes) -> None:
    for parse in (parse_connection_confirm, parse_connection_request):
        try:
            parse(data)
        except RemoteProtocolError:
            pass
