"""Whole MCS connect PDUs with GCC Conference Create (rdptrust.protocol.gcc.connect): spec
vectors, streaming, round trips, offsets of bad input, and mutation."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures.vectors import load_hex
from rdptrust.errors import RemoteProtocolError
from rdptrust.protocol.gcc import (
    MCS_OFFSET,
    CertificateChainVersion,
    ChannelDef,
    ClientConnectInitial,
    ClientCoreData,
    ClientNetworkData,
    ClientSecurityData,
    EncryptionLevel,
    EncryptionMethod,
    ServerCertificate,
    ServerConnectResponse,
    ServerCoreData,
    ServerNetworkData,
    ServerSecurityData,
    UserDataType,
    parse_client_connect_initial,
    parse_server_connect_response,
    rdp_version_name,
)
from rdptrust.protocol.mcs import CLIENT_TARGET_PARAMETERS, DomainParameters

INITIAL = "mcs/connect_initial_spec.hex"
RESPONSE = "mcs/connect_response_spec.hex"


def test_spec_connect_initial_fields() -> None:
    data = load_hex(INITIAL)
    pdu, consumed = parse_client_connect_initial(data) or pytest.fail("need more data")
    assert consumed == len(data) == 416
    assert pdu.mcs.target_parameters == CLIENT_TARGET_PARAMETERS
    assert pdu.mcs.upward_flag is True
    blocks = pdu.conference.blocks
    assert [b.type for b in blocks] == [
        UserDataType.CS_CORE,
        UserDataType.CS_CLUSTER,
        UserDataType.CS_SECURITY,
        UserDataType.CS_NET,
    ]
    core = pdu.conference.core or pytest.fail("no CS_CORE")
    assert core.version == 0x00080004
    assert (core.desktop_width, core.desktop_height) == (1280, 1024)
    assert core.client_name == "ELTONS-DEV2"
    assert core.client_build == 3790
    assert core.server_selected_protocol == 0
    security = pdu.conference.security or pytest.fail("no CS_SECURITY")
    assert security.encryption_methods == (
        EncryptionMethod.BIT_40
        | EncryptionMethod.BIT_128
        | EncryptionMethod.BIT_56
        | EncryptionMethod.FIPS
    )
    network = pdu.conference.network or pytest.fail("no CS_NET")
    assert [c.name for c in network.channels] == ["rdpdr", "cliprdr", "rdpsnd"]
    assert network.channels[0].options == 0x80800000


def test_spec_connect_response_fields() -> None:
    data = load_hex(RESPONSE)
    pdu, consumed = parse_server_connect_response(data) or pytest.fail("need more data")
    assert consumed == len(data) == 337
    assert pdu.mcs.result == 0
    assert pdu.mcs.domain_parameters == DomainParameters(34, 3, 0, 1, 0, 1, 65528, 2)
    conference = pdu.conference or pytest.fail("no GCC response")
    assert conference.node_id == 0x79F3
    assert conference.connect_pdu_length == 0x2A  # Windows' wrong length, kept as sent
    core = conference.core or pytest.fail("no SC_CORE")
    assert core.version == 0x00080004
    assert core.client_requested_protocols == 0
    assert core.early_capability_flags is None
    assert rdp_version_name(core.version) == "RDP 5.0 to 8.1"
    network = conference.network or pytest.fail("no SC_NET")
    assert network == ServerNetworkData(1003, (1004, 1005, 1006))
    security = conference.security or pytest.fail("no SC_SECURITY")
    assert security.encryption_method == EncryptionMethod.BIT_128
    assert security.encryption_level == EncryptionLevel.CLIENT_COMPATIBLE
    assert security.server_random[:4] == bytes.fromhex("10117720")
    assert len(security.server_random) == 32
    cert = security.certificate or pytest.fail("no certificate")
    assert cert.chain_version == CertificateChainVersion.PROPRIETARY
    assert cert.type_name == "proprietary"
    assert cert.temporary is False
    prop = cert.proprietary or pytest.fail("not proprietary")
    assert prop.key_bits == 512
    assert prop.public_exponent == 65537
    assert prop.modulus_int.bit_length() == 512
    assert prop.modulus[:4] == bytes.fromhex("cb81feba")
    assert len(prop.signature) == 72


@pytest.mark.parametrize("name", [INITIAL, RESPONSE])
def test_round_trip_is_byte_exact(name: str) -> None:
    data = load_hex(name)
    if name == INITIAL:
        parsed_i = parse_client_connect_initial(data) or pytest.fail("need more data")
        assert parsed_i[0].to_bytes() == data
    else:
        parsed_r = parse_server_connect_response(data) or pytest.fail("need more data")
        assert parsed_r[0].to_bytes() == data


@pytest.mark.parametrize("name", [INITIAL, RESPONSE])
def test_one_byte_at_a_time(name: str) -> None:
    data = load_hex(name)
    parser = parse_client_connect_initial if name == INITIAL else parse_server_connect_response
    for end in range(len(data)):
        assert parser(data[:end]) is None, end
    assert parser(data) is not None


@pytest.mark.parametrize("name", [INITIAL, RESPONSE])
def test_trailing_bytes_are_left_alone(name: str) -> None:
    data = load_hex(name)
    parser = parse_client_connect_initial if name == INITIAL else parse_server_connect_response
    parsed = parser(data + b"\x03\x00\x00\x08\x02\xf0\x80\x28")
    assert parsed is not None
    assert parsed[1] == len(data)


def test_build_connect_initial_offers_one_method() -> None:
    built = ClientConnectInitial.build(
        ClientSecurityData(EncryptionMethod.BIT_56),
        network=ClientNetworkData((ChannelDef("rdpdr", 0x80800000),)),
    ).to_bytes()
    pdu, consumed = parse_client_connect_initial(built) or pytest.fail("need more data")
    assert consumed == len(built)
    assert pdu.conference.security == ClientSecurityData(EncryptionMethod.BIT_56)
    assert pdu.conference.core == ClientCoreData.default()
    assert pdu.conference.network == ClientNetworkData((ChannelDef("rdpdr", 0x80800000),))


def test_build_response_with_x509_chain_and_temporary_bit() -> None:
    chain = (b"\x30\x03\x02\x01\x01", b"\x30\x03\x02\x01\x02")
    security = ServerSecurityData(
        EncryptionMethod.FIPS,
        EncryptionLevel.FIPS,
        bytes(range(32)),
        ServerCertificate(x509_chain=chain, temporary=True),
    )
    built = ServerConnectResponse.build(ServerCoreData(0x0008000C, 0, 1), security).to_bytes()
    pdu, _ = parse_server_connect_response(built) or pytest.fail("need more data")
    assert pdu.conference is not None
    got = pdu.conference.security or pytest.fail("no SC_SECURITY")
    assert got == security
    assert got.certificate is not None
    assert got.certificate.type_name == "x509"
    assert got.certificate.temporary is True
    assert pdu.conference.core == ServerCoreData(0x0008000C, 0, 1)
    assert pdu.to_bytes() == built


def test_bare_refusal_round_trip() -> None:
    built = ServerConnectResponse.refusal().to_bytes()
    pdu, _ = parse_server_connect_response(built) or pytest.fail("need more data")
    assert pdu.conference is None
    assert pdu.mcs.result_name == "rt-unspecified-failure"
    assert pdu.to_bytes() == built


def test_mcs_tag_is_checked() -> None:
    data = bytearray(load_hex(RESPONSE))
    data[MCS_OFFSET + 1] = 0x65
    with pytest.raises(RemoteProtocolError, match="APPLICATION 102") as excinfo:
        parse_server_connect_response(bytes(data))
    assert excinfo.value.offset == MCS_OFFSET + 1


def test_not_an_x224_data_tpdu() -> None:
    data = bytearray(load_hex(RESPONSE))
    data[5] = 0xD0
    with pytest.raises(RemoteProtocolError, match=r"X\.224 Data"):
        parse_server_connect_response(bytes(data))


def _expect_clean(parser: object, data: bytes) -> None:
    try:
        parser(data)  # type: ignore[operator]
    except RemoteProtocolError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_response_parses_or_raises_remote_protocol_error(data: st.DataObject) -> None:
    packet = bytearray(load_hex(RESPONSE))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(4, len(packet) - 1))
        packet[at] = data.draw(st.integers(0, 255))
    _expect_clean(parse_server_connect_response, bytes(packet))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_initial_parses_or_raises_remote_protocol_error(data: st.DataObject) -> None:
    packet = bytearray(load_hex(INITIAL))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(4, len(packet) - 1))
        packet[at] = data.draw(st.integers(0, 255))
    _expect_clean(parse_client_connect_initial, bytes(packet))


@settings(max_examples=200, deadline=None)
@given(st.integers(MCS_OFFSET + 1, 336))
def test_truncated_inside_the_packet_raises(cut: int) -> None:
    data = load_hex(RESPONSE)[:cut]
    framed = struct.pack(">BBH", 3, 0, len(data)) + data[4:]
    with pytest.raises(RemoteProtocolError):
        parse_server_connect_response(framed)
