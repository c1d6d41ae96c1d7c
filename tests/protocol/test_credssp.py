"""CredSSP TSRequest codec: nmap's request, streaming, round trips, DER edge cases, bad input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fixtures.vectors import load_hex
from rdptrust.errors import LocalProtocolError, RemoteProtocolError
from rdptrust.protocol.credssp import (
    MAX_TS_REQUEST_LENGTH,
    STATUS_LOGON_FAILURE,
    TSRequest,
    negotiate_request,
    parse_challenge_reply,
    parse_ts_request,
)
from rdptrust.protocol.ntlm import ChallengeMessage, TargetInfo, Version, parse_negotiate

NMAP = load_hex("credssp/tsrequest_nmap_negotiate.hex")
SPEC_CHALLENGE = load_hex("ntlm/challenge_ntlmv2_spec.hex")


def test_nmap_request_whole() -> None:
    request, consumed = parse_ts_request(NMAP) or pytest.fail("need more data")
    assert consumed == len(NMAP) == 57
    assert request.version == 0x60
    assert len(request.nego_tokens) == 1
    assert request.nego_tokens[0].startswith(b"NTLMSSP\x00\x01")
    assert request.auth_info is None
    assert request.pub_key_auth is None
    assert request.error_code is None
    assert request.to_bytes() == NMAP


def test_byte_by_byte_needs_more_until_the_last_byte() -> None:
    for end in range(len(NMAP)):
        assert parse_ts_request(NMAP[:end]) is None
    assert parse_ts_request(NMAP) is not None


def test_trailing_bytes_are_left_alone() -> None:
    request, consumed = parse_ts_request(NMAP + b"\x30\x03") or pytest.fail("need more data")
    assert consumed == len(NMAP)
    assert request.version == 0x60


def test_our_negotiate_request() -> None:
    data = negotiate_request()
    request, consumed = parse_ts_request(data) or pytest.fail("need more data")
    assert consumed == len(data)
    assert request.version == 6
    negotiate = parse_negotiate(request.nego_tokens[0])
    assert negotiate.domain_name is None
    assert negotiate.workstation is None
    assert negotiate.version is not None


def test_every_field_round_trips_with_long_form_lengths() -> None:
    request = TSRequest(
        version=6,
        nego_tokens=(b"\x01" * 300, b"second"),
        auth_info=b"a" * 130,
        pub_key_auth=b"p" * 1000,
        error_code=STATUS_LOGON_FAILURE,
        client_nonce=bytes(range(32)),
    )
    data = request.to_bytes()
    assert data[1] == 0x82  # two length bytes
    assert parse_ts_request(data) == (request, len(data))


def test_error_code_is_a_signed_integer_on_the_wire() -> None:
    data = TSRequest(version=6, error_code=STATUS_LOGON_FAILURE).to_bytes()
    assert data == bytes.fromhex("300d a003020106 a4060204c000006d")
    parsed, _ = parse_ts_request(data) or pytest.fail("need more data")
    assert parsed.error_code == 0xC000006D


def test_non_minimal_length_is_accepted() -> None:
    # BER senders may write 0x81 0x37 where DER says 0x37.
    data = b"\x30\x81" + NMAP[1:]
    request, consumed = parse_ts_request(data) or pytest.fail("need more data")
    assert consumed == len(data)
    assert request.version == 0x60


def test_challenge_reply() -> None:
    reply = TSRequest(version=6, nego_tokens=(SPEC_CHALLENGE,)).to_bytes()
    for end in range(len(reply)):
        assert parse_challenge_reply(reply[:end]) is None
    challenge = parse_challenge_reply(reply)
    assert challenge is not None
    assert challenge.netbios_computer_name == "Server"
    assert challenge.netbios_domain_name == "Domain"


def test_challenge_reply_refusals() -> None:
    with pytest.raises(RemoteProtocolError, match="errorCode 0xc000006d"):
        parse_challenge_reply(TSRequest(error_code=STATUS_LOGON_FAILURE).to_bytes())
    with pytest.raises(RemoteProtocolError, match="no negoToken"):
        parse_challenge_reply(TSRequest().to_bytes())
    reply = TSRequest(nego_tokens=(SPEC_CHALLENGE,)).to_bytes()
    with pytest.raises(RemoteProtocolError, match="unexpected bytes"):
        parse_challenge_reply(reply + b"\x00")


def test_lab_challenge_inside_ts_request() -> None:
    message = ChallengeMessage(
        server_challenge=bytes(8),
        target_name="LAB",
        target_info=TargetInfo.from_names(netbios_computer_name="WIN-LAB01"),
        version=Version(10, 0, 20348),
    )
    parsed = parse_challenge_reply(TSRequest(nego_tokens=(message.to_bytes(),)).to_bytes())
    assert parsed == message


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"\x31\x00", "must start with 0x30"),
        (b"\x04", "must start with 0x30"),
        (b"\x30\x80", "indefinite"),
        (b"\x30\x85\x00\x00\x00\x00\x01", "too long"),
        (b"\x30\x83\x01\x00\x00", "more than"),
        (b"\x30\x00", "no version"),
        (b"\x30\x01\xa0", "runs past"),
        (b"\x30\x07\xa0\x05\x02\x04\x00\x00\x00", "announces 4"),
        (b"\x30\x05\xa1\x03\x02\x01\x06", "no version"),
        (b"\x30\x0a\xa0\x03\x02\x01\x06\xa0\x03\x02\x01\x06", "out of order"),
        (b"\x30\x05\xa7\x03\x02\x01\x06", "unknown TSRequest field"),
        (b"\x30\x05\xa0\x03\x04\x01\x06", "expected tag 0x02"),
        (b"\x30\x04\xa0\x02\x02\x00", "INTEGER of 0 bytes"),
        (b"\x30\x09\xa0\x07\x02\x05\xff\x00\x00\x00\x00", "negative"),
        (b"\x30\x0a\xa0\x08\x02\x06\x00\x00\x00\x00\x00\x01", "INTEGER of 6"),
        (bytes.fromhex("300c a003020106 a105 3003 3001a0"), "runs past"),
        (bytes.fromhex("300d a003020106 a106 3004 3002a005"), "announces 5"),
        (bytes.fromhex("3010 a003020106 a109 3007 3005 a002 0400 00"), "bytes after a negoToken"),
        (bytes.fromhex("300c a003020106 a105 3003 a0010400"), "expected tag 0x30"),
        (bytes.fromhex("300c a003020106 a505 0403 000102"), "clientNonce of 3"),
        (bytes.fromhex("3005 1f8101 0000"), "multi-byte"),
    ],
)
def test_malformed_ts_request(data: bytes, words: str) -> None:
    with pytest.raises(RemoteProtocolError, match=words) as info:
        parse_ts_request(data)
    assert info.value.offset is not None


def test_size_limit_is_checked_from_the_header() -> None:
    header = b"\x30\x83" + (MAX_TS_REQUEST_LENGTH).to_bytes(3, "big")
    with pytest.raises(RemoteProtocolError, match="more than"):
        parse_ts_request(header)


@pytest.mark.parametrize(
    "build",
    [
        lambda: TSRequest(version=-1),
        lambda: TSRequest(error_code=1 << 32),
        lambda: TSRequest(client_nonce=b"short"),
        lambda: TSRequest(nego_tokens=(bytes(MAX_TS_REQUEST_LENGTH),)).to_bytes(),
    ],
)
def test_builder_refuses_invalid_requests(build: object) -> None:
    with pytest.raises(LocalProtocolError):
        build()  # type: ignore[operator]


@given(st.binary(max_size=120))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    try:
        parse_ts_request(b"\x30" + data)
    except RemoteProtocolError:
        pass


@given(
    version=st.integers(0, 2**31 - 1),
    tokens=st.lists(st.binary(max_size=300), max_size=3),
    error=st.none() | st.integers(0, 2**32 - 1),
)
def test_round_trip(version: int, tokens: list[bytes], error: int | None) -> None:
    request = TSRequest(version=version, nego_tokens=tuple(tokens), error_code=error)
    data = request.to_bytes()
    assert parse_ts_request(data) == (request, len(data))
