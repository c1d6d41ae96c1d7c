"""MCS Connect-Initial/Response (BER) and Disconnect Provider Ultimatum on their own:
streaming, the integers Windows writes, refusals of impossible values."""

from __future__ import annotations

import pytest

from fixtures.vectors import load_hex
from rdptrust.errors import LocalProtocolError, RemoteProtocolError
from rdptrust.protocol.gcc import MCS_OFFSET
from rdptrust.protocol.mcs import (
    ConnectInitial,
    ConnectResponse,
    DisconnectProviderUltimatum,
    DisconnectReason,
    is_disconnect_provider_ultimatum,
    parse_connect_initial,
    parse_connect_response,
)

INITIAL = "mcs/connect_initial_spec.hex"
RESPONSE = "mcs/connect_response_spec.hex"


def test_connect_response_streaming_at_mcs_level() -> None:
    payload = load_hex(RESPONSE)[MCS_OFFSET:]
    for end in range(len(payload)):
        assert parse_connect_response(payload[:end]) is None
    assert parse_connect_response(payload) is not None


def test_connect_initial_whole_and_with_trailing_bytes() -> None:
    payload = load_hex(INITIAL)[MCS_OFFSET:]
    pdu, consumed = parse_connect_initial(payload + b"\x00") or pytest.fail("need more data")
    assert consumed == len(payload)
    assert pdu.to_bytes() == payload
    for end in range(len(payload)):
        assert parse_connect_initial(payload[:end]) is None


def test_unsigned_integers_as_the_windows_client_writes_them() -> None:
    # MS-RDPBCGR 4.1.3: maxMCSPDUsize 65535 is 02 02 ff ff, which DER would read as -1.
    built = ConnectInitial(b"gcc").to_bytes()
    assert bytes.fromhex("0202ffff") in built
    pdu, _ = parse_connect_initial(built) or pytest.fail("need more data")
    assert pdu.maximum_parameters.max_mcspdu_size == 65535


@pytest.mark.parametrize(
    ("data", "words", "offset"),
    [
        (bytes.fromhex("7f6680"), "indefinite", 2),
        (bytes.fromhex("7f6683000000"), "too long", 2),
        (bytes.fromhex("7f66080a01000201003000"), "value 0 missing", 11),
        (bytes.fromhex("7f6603020100"), "BER tag 0x0a", 3),
        (bytes.fromhex("7f66030a0200"), "announces 2", 3),
    ],
)
def test_bad_connect_response(data: bytes, words: str, offset: int) -> None:
    with pytest.raises(RemoteProtocolError, match=words) as excinfo:
        parse_connect_response(data, base=MCS_OFFSET)
    assert excinfo.value.offset == MCS_OFFSET + offset


def test_a_value_over_32_bits_is_the_peer_s_fault() -> None:
    # Five octets leave room for a leading zero; a value past 32 bits is the peer's error,
    # not a DomainParameters we refuse to build.
    params = bytes.fromhex("02050100000000") + bytes.fromhex("020101") * 7
    body = bytes.fromhex("0a0100 020100") + bytes([0x30, len(params)]) + params + b"\x04\x00"
    data = bytes([0x7F, 0x66, len(body)]) + body
    with pytest.raises(RemoteProtocolError, match="does not fit 32 bits") as excinfo:
        parse_connect_response(data)
    assert excinfo.value.offset == 11
    fits = data.replace(bytes.fromhex("02050100000000"), bytes.fromhex("020500ffffffff"))
    pdu, _ = parse_connect_response(fits) or pytest.fail("need more data")
    assert pdu.domain_parameters is not None
    assert pdu.domain_parameters.max_channel_ids == 0xFFFFFFFF


def test_disconnect_provider_ultimatum_is_recognised() -> None:
    packet = DisconnectProviderUltimatum(DisconnectReason.USER_REQUESTED).to_bytes()
    assert is_disconnect_provider_ultimatum(packet[MCS_OFFSET:])
    assert not is_disconnect_provider_ultimatum(b"")
    assert not is_disconnect_provider_ultimatum(load_hex(RESPONSE)[MCS_OFFSET:])


def test_builders_refuse_impossible_values() -> None:
    with pytest.raises(LocalProtocolError):
        ConnectResponse(result=300)
    with pytest.raises(LocalProtocolError):
        ConnectResponse(called_connect_id=-1)
