"""Settings blocks (rdptrust.protocol.gcc.blocks): typed round trips, SC_SECURITY without
encryption, block type names, lengths that run past their data, builders' refusals."""

from __future__ import annotations

import struct

import pytest

from fixtures.vectors import load_hex
from rdptrust.errors import LocalProtocolError, RemoteProtocolError
from rdptrust.protocol.gcc import (
    IO_CHANNEL_ID,
    ChannelDef,
    ClientCoreData,
    ClientNetworkData,
    ClientSecurityData,
    ServerCoreData,
    ServerNetworkData,
    ServerSecurityData,
    UserDataBlock,
    UserDataType,
    parse_client_connect_initial,
    parse_server_connect_response,
    parse_user_data_blocks,
)

INITIAL = "mcs/connect_initial_spec.hex"
RESPONSE = "mcs/connect_response_spec.hex"


@pytest.mark.parametrize("name", [INITIAL, RESPONSE])
def test_typed_blocks_round_trip(name: str) -> None:
    data = load_hex(name)
    parser = parse_client_connect_initial if name == INITIAL else parse_server_connect_response
    pdu = (parser(data) or pytest.fail("need more data"))[0]
    assert pdu.conference is not None
    decoders = {
        UserDataType.CS_CORE: ClientCoreData.from_block,
        UserDataType.CS_SECURITY: ClientSecurityData.from_block,
        UserDataType.CS_NET: ClientNetworkData.from_block,
        UserDataType.SC_CORE: ServerCoreData.from_block,
        UserDataType.SC_SECURITY: ServerSecurityData.from_block,
        UserDataType.SC_NET: ServerNetworkData.from_block,
    }
    typed = 0
    for block in pdu.conference.blocks:
        decoder = decoders.get(UserDataType(block.type))
        if decoder is not None:
            assert decoder(block).to_block() == block
            typed += 1
    assert typed == 3


def test_blocks_split_and_join() -> None:
    blocks = (UserDataBlock(UserDataType.CS_CLUSTER, b"\x0d\x00\x00\x00"), UserDataBlock(7, b""))
    data = b"".join(b.to_bytes() for b in blocks)
    assert parse_user_data_blocks(data) == blocks
    with pytest.raises(RemoteProtocolError, match="header truncated") as excinfo:
        parse_user_data_blocks(data + b"\x01\xc0", base=100)
    assert excinfo.value.offset == 100 + len(data)


def test_no_encryption_sends_neither_random_nor_certificate() -> None:
    block = ServerSecurityData(0, 0).to_block()
    assert block.body == bytes(8)
    assert ServerSecurityData.from_block(block) == ServerSecurityData(0, 0)


def test_server_network_data_defaults_to_the_windows_io_channel() -> None:
    assert ServerNetworkData().mcs_channel_id == IO_CHANNEL_ID == 1003


def test_user_data_block_type_names() -> None:
    assert UserDataBlock(0xC002, b"").type_name == "CS_SECURITY"
    assert UserDataBlock(0x1234, b"").type_name == "0x1234"


def test_block_longer_than_the_data_names_its_offset() -> None:
    data = bytearray(load_hex(RESPONSE))
    at = bytes(data).index(bytes.fromhex("020cec00"))  # SC_SECURITY header
    data[at + 2 : at + 4] = struct.pack("<H", 0x200)
    with pytest.raises(RemoteProtocolError, match="announces 512 bytes") as excinfo:
        parse_server_connect_response(bytes(data))
    assert excinfo.value.offset == at + 2


def test_certificate_length_past_the_block_is_an_error() -> None:
    data = bytearray(load_hex(RESPONSE))
    at = bytes(data).index(bytes.fromhex("20000000b8000000"))
    data[at + 4 : at + 8] = struct.pack("<I", 0xFFFF)
    with pytest.raises(RemoteProtocolError, match="serverCertificate needs 65535 bytes"):
        parse_server_connect_response(bytes(data))


def test_builders_refuse_impossible_values() -> None:
    with pytest.raises(LocalProtocolError):
        ChannelDef("toolongname", 0)
    with pytest.raises(LocalProtocolError):
        ClientCoreData(client_name="x" * 16).to_block()
