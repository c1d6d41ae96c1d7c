"""GCC Conference Create (rdptrust.protocol.gcc.conference): the H.221 key with its
offset, PER lengths, and the connectPDU length Windows writes."""

from __future__ import annotations

import pytest

from fixtures.vectors import load_hex
from rdptrust.errors import LocalProtocolError, RemoteProtocolError
from rdptrust.protocol.gcc import (
    DEFAULT_NODE_ID,
    WINDOWS_CONNECT_PDU_LENGTH,
    ClientSecurityData,
    ConferenceCreateRequest,
    ConferenceCreateResponse,
    EncryptionLevel,
    EncryptionMethod,
    ServerCertificate,
    ServerConnectResponse,
    ServerCoreData,
    ServerSecurityData,
    parse_conference_create_request,
    parse_conference_create_response,
    parse_server_connect_response,
    per_length,
)

RESPONSE = "mcs/connect_response_spec.hex"


def test_conference_round_trips_on_their_own() -> None:
    request = ConferenceCreateRequest((ClientSecurityData(EncryptionMethod.BIT_128).to_block(),))
    assert parse_conference_create_request(request.to_bytes()) == request
    response = ConferenceCreateResponse((ServerCoreData(0x00080004).to_block(),), tag=0x1234)
    parsed = parse_conference_create_response(response.to_bytes(), base=21)
    assert parsed == ConferenceCreateResponse(
        response.blocks, DEFAULT_NODE_ID, 0x1234, 0, len(response.to_bytes()) - 8
    )


def test_wrong_h221_key_names_its_offset() -> None:
    data = bytearray(load_hex(RESPONSE))
    at = bytes(data).index(b"McDn")
    data[at : at + 4] = b"XXXX"
    with pytest.raises(RemoteProtocolError, match="4d 63 44 6e") as excinfo:
        parse_server_connect_response(bytes(data))
    assert excinfo.value.offset == at


def test_per_encodings() -> None:
    assert per_length(0x2A) == b"\x2a"
    assert per_length(0x108) == b"\x81\x08"
    with pytest.raises(LocalProtocolError):
        per_length(0x4000)


def test_windows_connect_pdu_length_is_one_octet_and_ignored() -> None:
    # Given a Connect-Response written the way Windows writes it (connectPDU length 0x2a)
    security = ServerSecurityData(
        EncryptionMethod.BIT_128,
        EncryptionLevel.HIGH,
        bytes(32),
        ServerCertificate(x509_chain=(b"\x30\x00",)),
    )
    built = ServerConnectResponse.build(
        ServerCoreData(0x00080004), security, connect_pdu_length=WINDOWS_CONNECT_PDU_LENGTH
    ).to_bytes()
    key = bytes.fromhex("0005 0014 7c00 01")
    at = built.index(key) + len(key)
    # Then the length is the single octet nmap's fixed offsets expect, and we read past it
    assert built[at] == 0x2A
    pdu, _ = parse_server_connect_response(built) or pytest.fail("need more data")
    assert pdu.conference is not None
    assert pdu.conference.security == security
