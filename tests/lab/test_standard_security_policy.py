"""The lab's choice of Standard RDP Security method and the Connect-Response it builds."""

from __future__ import annotations

import pytest

from rdptrust.errors import UsageError
from rdptrust.lab.standard_security import (
    StandardSecurityPolicy,
    connect_response_for,
    parse_level,
    parse_methods,
)
from rdptrust.protocol.gcc import (
    ChannelDef,
    ClientConnectInitial,
    ClientNetworkData,
    ClientSecurityData,
    EncryptionLevel,
    EncryptionMethod,
    parse_server_connect_response,
)

M = EncryptionMethod
ALL = M.BIT_40 | M.BIT_56 | M.BIT_128 | M.FIPS


@pytest.mark.parametrize(
    ("methods", "level", "offered", "chosen"),
    [
        (ALL, EncryptionLevel.CLIENT_COMPATIBLE, ALL, M.BIT_128),
        (ALL, EncryptionLevel.CLIENT_COMPATIBLE, M.BIT_40 | M.BIT_56, M.BIT_56),
        (ALL, EncryptionLevel.LOW, M.BIT_40, M.BIT_40),
        (M.BIT_128, EncryptionLevel.LOW, M.BIT_40, None),
        (ALL, EncryptionLevel.HIGH, M.BIT_40 | M.FIPS, None),
        (ALL, EncryptionLevel.HIGH, ALL, M.BIT_128),
        (ALL, EncryptionLevel.FIPS, M.BIT_128, None),
        (ALL, EncryptionLevel.FIPS, ALL, M.FIPS),
        (ALL, EncryptionLevel.NONE, M.BIT_40, M.NONE),
    ],
)
def test_choice_follows_the_level(
    methods: EncryptionMethod, level: EncryptionLevel, offered: int, chosen: M | None
) -> None:
    assert StandardSecurityPolicy(methods, level).choose(offered) == chosen


def test_response_carries_method_level_random_and_certificate() -> None:
    policy = StandardSecurityPolicy(M.BIT_128 | M.BIT_40, EncryptionLevel.LOW, 0x00080005)
    initial = ClientConnectInitial.build(
        ClientSecurityData(M.BIT_40 | M.BIT_128),
        network=ClientNetworkData((ChannelDef("rdpdr", 0), ChannelDef("cliprdr", 0))),
    )
    response = connect_response_for(initial, policy, 0) or pytest.fail("dropped")
    parsed, _ = parse_server_connect_response(response.to_bytes()) or pytest.fail("short")
    assert parsed.conference is not None
    security = parsed.conference.security or pytest.fail("no SC_SECURITY")
    assert security.encryption_method == M.BIT_128
    assert security.encryption_level == EncryptionLevel.LOW
    assert len(security.server_random) == 32
    assert security.certificate is not None
    assert security.certificate.type_name == "proprietary"
    assert parsed.conference.core is not None
    assert parsed.conference.core.version == 0x00080005
    assert parsed.conference.network is not None
    assert parsed.conference.network.channel_ids == (1004, 1005)


def test_enhanced_security_answers_with_no_encryption() -> None:
    initial = ClientConnectInitial.build(ClientSecurityData(M.BIT_128))
    response = connect_response_for(initial, StandardSecurityPolicy(), 1) or pytest.fail("dropped")
    assert response.conference is not None
    security = response.conference.security or pytest.fail("no SC_SECURITY")
    assert (security.encryption_method, security.encryption_level) == (0, 0)
    assert response.conference.core is not None
    assert response.conference.core.client_requested_protocols == 1


def test_x509_certificate_and_temporary_bit() -> None:
    chain = (b"\x30\x03\x02\x01\x07",)
    policy = StandardSecurityPolicy(certificate="x509", x509_chain=chain, temporary=True)
    initial = ClientConnectInitial.build(ClientSecurityData(M.BIT_128))
    response = connect_response_for(initial, policy, 0) or pytest.fail("dropped")
    assert response.conference is not None
    security = response.conference.security or pytest.fail("no SC_SECURITY")
    assert security.certificate is not None
    assert security.certificate.x509_chain == chain
    assert security.certificate.temporary is True


def test_parsers_and_bad_policies() -> None:
    assert parse_methods("40,128bit, FIPS") == M.BIT_40 | M.BIT_128 | M.FIPS
    assert parse_level("client-compatible") == EncryptionLevel.CLIENT_COMPATIBLE
    with pytest.raises(UsageError):
        parse_methods("64BIT")
    with pytest.raises(UsageError):
        parse_methods(" , ")
    with pytest.raises(UsageError):
        parse_level("medium")
    with pytest.raises(UsageError, match="HIGH needs the 128BIT"):
        StandardSecurityPolicy(M.BIT_40, EncryptionLevel.HIGH)
    with pytest.raises(UsageError, match="needs a chain"):
        StandardSecurityPolicy(certificate="x509")
