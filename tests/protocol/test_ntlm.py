"""NTLM NEGOTIATE/CHALLENGE codec: MS-NLMP 4.2 vectors, round trips, trailing bytes, bad input."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fixtures.vectors import load_hex
from rdptrust.errors import LocalProtocolError, RemoteProtocolError
from rdptrust.protocol.credssp import parse_ts_request
from rdptrust.protocol.ntlm import (
    CLIENT_NEGOTIATE_FLAGS,
    AvId,
    AvPair,
    ChallengeMessage,
    NegotiateFlags,
    NegotiateMessage,
    TargetInfo,
    Version,
    parse_av_pairs,
    parse_challenge,
    parse_negotiate,
)

CHALLENGE = bytes.fromhex("0123456789abcdef")


def test_spec_ntlmv2_challenge() -> None:
    data = load_hex("ntlm/challenge_ntlmv2_spec.hex")
    message = parse_challenge(data)
    assert len(data) == 104
    assert message.flags == NegotiateFlags(0xE28A8233)
    assert message.flags & NegotiateFlags.TARGET_INFO
    assert message.server_challenge == CHALLENGE
    assert message.target_name == "Server"
    assert message.netbios_domain_name == "Domain"
    assert message.netbios_computer_name == "Server"
    assert message.dns_computer_name is None
    assert message.timestamp is None
    assert message.version == Version(6, 0, 6000, 15)
    assert str(message.version) == "6.0.6000"
    assert tuple(message.version) == (6, 0, 6000, 15)
    assert message.to_bytes() == data


def test_spec_ntlmv1_challenge_without_target_info() -> None:
    data = load_hex("ntlm/challenge_ntlmv1_spec.hex")
    message = parse_challenge(data)
    assert message.flags == NegotiateFlags(0xE2028233)
    assert message.target_info is None
    assert message.netbios_computer_name is None
    assert message.target_name == "Server"
    assert message.to_bytes() == data


def test_nmap_negotiate_with_zero_offsets() -> None:
    request, _ = parse_ts_request(load_hex("credssp/tsrequest_nmap_negotiate.hex")) or (
        pytest.fail("need more data")
    )
    message = parse_negotiate(request.nego_tokens[0])
    assert message.flags == CLIENT_NEGOTIATE_FLAGS == NegotiateFlags(0xE20882B7)
    assert message.domain_name is None
    assert message.workstation is None
    assert message.version == Version(10, 0, 17763)


def test_negotiate_round_trip_and_layout() -> None:
    message = NegotiateMessage(version=Version(10, 0, 20348))
    data = message.to_bytes()
    assert data[:8] == b"NTLMSSP\x00"
    assert struct.unpack_from("<II", data, 8) == (1, 0xE20882B7)
    assert data[32:40] == bytes.fromhex("0a00 7c4f 000000 0f")
    assert parse_negotiate(data) == message
    named = NegotiateMessage(
        flags=CLIENT_NEGOTIATE_FLAGS
        | NegotiateFlags.OEM_DOMAIN_SUPPLIED
        | NegotiateFlags.OEM_WORKSTATION_SUPPLIED,
        domain_name="CORP",
        workstation="PC1",
        version=Version(6, 1, 7601),
    )
    assert parse_negotiate(named.to_bytes()) == named


def test_lab_like_challenge_round_trip() -> None:
    info = TargetInfo.from_names(
        netbios_computer_name="WIN-LAB01",
        netbios_domain_name="LAB",
        dns_computer_name="win-lab01.lab.test",
        dns_domain_name="lab.test",
        dns_tree_name="lab.test",
        timestamp=133_000_000_000_000_000,
    )
    message = ChallengeMessage(
        server_challenge=CHALLENGE,
        target_name="LAB",
        target_info=info,
        version=Version(10, 0, 20348),
    )
    data = message.to_bytes()
    parsed = parse_challenge(data)
    assert parsed == message
    assert parsed.dns_computer_name == "win-lab01.lab.test"
    assert parsed.dns_domain_name == parsed.dns_tree_name == "lab.test"
    assert parsed.timestamp == 133_000_000_000_000_000
    # Windows order: NbDomainName, NbComputerName, DnsDomainName, DnsComputerName, ...
    assert [pair.av_id for pair in info.pairs] == [2, 1, 4, 3, 5, 7]


def test_trailing_bytes_are_ignored() -> None:
    data = load_hex("ntlm/challenge_ntlmv2_spec.hex")
    assert parse_challenge(data + b"\x00\xff" * 5) == parse_challenge(data)


def test_unknown_av_pairs_are_kept() -> None:
    raw = AvPair(0x99, b"xyz").to_bytes() + AvPair(AvId.FLAGS, b"\x02\x00\x00\x00").to_bytes()
    info = parse_av_pairs(raw + b"\x00\x00\x00\x00")
    assert info.get(0x99) == b"xyz"
    assert info.get(AvId.FLAGS) == b"\x02\x00\x00\x00"
    assert info.netbios_computer_name is None


def _with(data: bytes, offset: int, value: bytes) -> bytes:
    return data[:offset] + value + data[offset + len(value) :]


SPEC = load_hex("ntlm/challenge_ntlmv2_spec.hex")


@pytest.mark.parametrize(
    ("data", "offset", "words"),
    [
        (b"", 0, "signature"),
        (b"NTLMSSP\x00\x02\x00", 10, "truncated"),
        (SPEC[:47], 47, "truncated"),
        (_with(SPEC, 0, b"NTLMSSX"), 0, "signature"),
        (_with(SPEC, 8, b"\x03"), 8, "type 3"),
        (_with(SPEC, 12, b"\xff\x00"), 12, "TargetName"),
        (_with(SPEC, 44, b"\xf0\x00\x00\x00"), 40, "TargetInfo"),
        (_with(SPEC, 40, b"\x23\x00"), 40, "without MsvAvEOL"),
        (_with(SPEC, 12, b"\x0b\x00"), 12, "odd length"),
        (_with(SPEC, 70, b"\x40\x00"), 70, "announces 64"),
        (SPEC[:-4] + b"\x00\x00\x01\x00" + b"\x00" * 4, 100, "MsvAvEOL"),
    ],
)
def test_malformed_challenge(data: bytes, offset: int, words: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_challenge(data)
    assert words in str(info.value)
    assert info.value.offset is not None


def test_version_flag_without_room_for_version() -> None:
    # TargetName payload starts at 48, where VERSION would have to be.
    message = ChallengeMessage(server_challenge=CHALLENGE, flags=NegotiateFlags.UNICODE)
    data = bytearray(message.to_bytes())
    struct.pack_into("<I", data, 20, NegotiateFlags.UNICODE | NegotiateFlags.VERSION)
    data += "X".encode("utf-16-le")
    struct.pack_into("<HHI", data, 12, 2, 2, 48)
    with pytest.raises(RemoteProtocolError, match="no VERSION"):
        parse_challenge(bytes(data))


def test_timestamp_must_be_eight_bytes() -> None:
    raw = AvPair(AvId.TIMESTAMP, b"\x01\x02\x03\x04").to_bytes() + bytes(4)
    with pytest.raises(RemoteProtocolError, match="8 bytes") as info:
        parse_av_pairs(raw, base=68)
    assert info.value.offset == 70


def test_oversized_message_is_refused_before_parsing() -> None:
    with pytest.raises(RemoteProtocolError, match="longer than"):
        parse_challenge(SPEC + bytes(70000))


@pytest.mark.parametrize(
    "build",
    [
        lambda: ChallengeMessage(server_challenge=b"short"),
        lambda: ChallengeMessage(
            server_challenge=CHALLENGE, flags=NegotiateFlags.UNICODE, version=Version(1, 0, 1)
        ),
        lambda: Version(256, 0, 0),
        lambda: Version.parse_text("10.0"),
        lambda: AvPair(AvId.EOL, b""),
        lambda: NegotiateMessage(domain_name="Ünïcode", version=Version(1, 0, 0)),
        lambda: NegotiateMessage(flags=NegotiateFlags.UNICODE, version=Version(1, 0, 0)),
    ],
)
def test_builders_refuse_what_the_spec_forbids(build: object) -> None:
    with pytest.raises(LocalProtocolError):
        build()  # type: ignore[operator]


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    for parse in (parse_challenge, parse_negotiate):
        try:
            parse(b"NTLMSSP\x00" + data)
        except RemoteProtocolError:
            pass


@given(
    computer=st.text(min_size=1, max_size=15),
    domain=st.none() | st.text(max_size=40),
    build=st.integers(0, 0xFFFF),
    stamp=st.none() | st.integers(0, 2**64 - 1),
)
def test_challenge_round_trip(
    computer: str, domain: str | None, build: int, stamp: int | None
) -> None:
    # Lone surrogates cannot be encoded in UTF-16; the lab never makes such names.
    computer = computer.encode("utf-16-le", "replace").decode("utf-16-le")
    if domain is not None:
        domain = domain.encode("utf-16-le", "replace").decode("utf-16-le")
    info = TargetInfo.from_names(
        netbios_computer_name=computer, dns_domain_name=domain, timestamp=stamp
    )
    message = ChallengeMessage(
        server_challenge=CHALLENGE,
        target_name=domain or None,
        target_info=info,
        version=Version(10, 0, build),
    )
    assert parse_challenge(message.to_bytes()) == message
