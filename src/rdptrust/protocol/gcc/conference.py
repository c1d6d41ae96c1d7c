"""GCC Conference Create Request and Response (T.124 ConnectData, aligned PER;
MS-RDPBCGR 2.2.1.3, 2.2.1.4).

The GCC part is fixed in practice: every client and server writes the same prefix. We
check the parts that identify the PDU and read the lengths; the length of the
Connect-Response's connectPDU is written wrongly by Windows itself (MS-RDPBCGR 4.1.4 has
0x2a), so it is kept but not trusted. The settings blocks inside are decoded once, so a
bad block fails here with its offset.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from rdptrust.errors import LocalProtocolError, RemoteProtocolError
from rdptrust.protocol.gcc.blocks import (
    ClientCoreData,
    ClientNetworkData,
    ClientSecurityData,
    ServerCoreData,
    ServerNetworkData,
    ServerSecurityData,
    UserDataBlock,
    UserDataType,
    check_blocks,
    find_block,
    parse_user_data_blocks,
)

# T.124 ConnectData: Key CHOICE object (0), OID length 5, OID 0.0.20.124.0.1 (BER body).
_T124_KEY = b"\x00\x05\x00\x14\x7c\x00\x01"
_CLIENT_H221_KEY = b"Duca"
_SERVER_H221_KEY = b"McDn"
#: ConnectGCCPDU conferenceCreateRequest with the userData bit of its optional fields,
#: conferenceName "1" (NumericString, length 1 - 1 = 0, digit packed 0x10), and the
#: zero bits of lockedConference/listedConference/conductibleConference/terminationMethod.
_CREATE_REQUEST_HEAD = b"\x00\x08\x00\x10\x00"
#: ConnectGCCPDU conferenceCreateResponse with the userData bit set.
_CREATE_RESPONSE_CHOICE = 0x14
#: userData: one set, h221NonStandard choice with value present.
_USER_DATA_SET = b"\x01\xc0"
#: MS-RDPBCGR 2.2.1.4: the nodeID Windows sends (0x79F3 = 1001 + 0x760A).
DEFAULT_NODE_ID = 0x79F3
_NODE_ID_BASE = 1001
#: The connectPDU length Windows writes in every Connect-Response (MS-RDPBCGR 4.1.4),
#: whatever the true length; clients that read the blocks at a fixed offset (nmap's
#: rdp.lua) depend on it being one octet.
WINDOWS_CONNECT_PDU_LENGTH = 0x2A
#: A PER length determinant of two octets holds at most 14 bits.
_PER_MAX_LENGTH = 0x3FFF


def per_length(length: int) -> bytes:
    """A PER length determinant: one octet below 128, else two with the top bit set."""
    if length < 0x80:
        return bytes([length])
    if length > _PER_MAX_LENGTH:
        raise LocalProtocolError(f"PER length {length} needs fragmentation")
    return struct.pack(">H", 0x8000 | length)


def _read_per_length(data: bytes, pos: int, base: int, what: str) -> tuple[int, int]:
    if pos >= len(data):
        raise RemoteProtocolError(f"{what}: PER length missing", base + pos)
    first = data[pos]
    if first < 0x80:
        return first, pos + 1
    if first & 0x40:
        raise RemoteProtocolError(f"{what}: fragmented PER length is not supported", base + pos)
    if pos + 1 >= len(data):
        raise RemoteProtocolError(f"{what}: PER length truncated", base + pos)
    return ((first & 0x3F) << 8) | data[pos + 1], pos + 2


def _expect(data: bytes, pos: int, expected: bytes, base: int, what: str) -> int:
    got = data[pos : pos + len(expected)]
    if got != expected:
        raise RemoteProtocolError(
            f"{what}: expected {expected.hex(' ')}, got {got.hex(' ') or 'nothing'}", base + pos
        )
    return pos + len(expected)


def _user_data_set(key: bytes, user_data: bytes) -> bytes:
    # h221NonStandard OCTET STRING (SIZE (4..255)): length - 4, then the key.
    return _USER_DATA_SET + bytes([len(key) - 4]) + key + per_length(len(user_data)) + user_data


def _read_user_data_set(data: bytes, pos: int, key: bytes, base: int, what: str) -> bytes:
    pos = _expect(data, pos, _USER_DATA_SET, base, what)
    if pos >= len(data):
        raise RemoteProtocolError(f"{what}: H.221 key missing", base + pos)
    key_len = data[pos] + 4
    if key_len != len(key):
        raise RemoteProtocolError(f"{what}: H.221 key of {key_len} bytes, expected 4", base + pos)
    pos = _expect(data, pos + 1, key, base, what)
    length, pos = _read_per_length(data, pos, base, what)
    if length != len(data) - pos:
        raise RemoteProtocolError(
            f"{what}: user data announces {length} bytes, {len(data) - pos} follow", base + pos
        )
    return bytes(data[pos:])


@dataclass(frozen=True)
class ConferenceCreateRequest:
    """GCC ConnectData with a Conference Create Request carrying the client blocks."""

    blocks: tuple[UserDataBlock, ...]

    def to_bytes(self) -> bytes:
        user_data = b"".join(b.to_bytes() for b in self.blocks)
        pdu = _CREATE_REQUEST_HEAD + _user_data_set(_CLIENT_H221_KEY, user_data)
        return _T124_KEY + per_length(len(pdu)) + pdu

    @property
    def core(self) -> ClientCoreData | None:
        block = find_block(self.blocks, UserDataType.CS_CORE)
        return ClientCoreData.from_block(block) if block else None

    @property
    def security(self) -> ClientSecurityData | None:
        block = find_block(self.blocks, UserDataType.CS_SECURITY)
        return ClientSecurityData.from_block(block) if block else None

    @property
    def network(self) -> ClientNetworkData | None:
        block = find_block(self.blocks, UserDataType.CS_NET)
        return ClientNetworkData.from_block(block) if block else None


@dataclass(frozen=True)
class ConferenceCreateResponse:
    """GCC ConnectData with a Conference Create Response carrying the server blocks.

    ``connect_pdu_length`` is the length the server wrote before the PDU (``None``:
    the true length); Windows writes a wrong one, so it is never used to read.
    """

    blocks: tuple[UserDataBlock, ...]
    node_id: int = DEFAULT_NODE_ID
    tag: int = 1
    result: int = 0
    connect_pdu_length: int | None = None

    def __post_init__(self) -> None:
        if not _NODE_ID_BASE <= self.node_id <= _NODE_ID_BASE + 0xFFFF:
            raise LocalProtocolError(f"node_id {self.node_id} out of range")
        if not 0 <= self.tag <= 0xFFFFFFFF:
            raise LocalProtocolError(f"tag {self.tag} out of range")

    def to_bytes(self) -> bytes:
        user_data = b"".join(b.to_bytes() for b in self.blocks)
        tag_octets = self.tag.to_bytes(max(1, (self.tag.bit_length() + 7) // 8), "big")
        pdu = (
            bytes([_CREATE_RESPONSE_CHOICE])
            + struct.pack(">H", self.node_id - _NODE_ID_BASE)
            + bytes([len(tag_octets)])
            + tag_octets
            + bytes([self.result])
            + _user_data_set(_SERVER_H221_KEY, user_data)
        )
        declared = len(pdu) if self.connect_pdu_length is None else self.connect_pdu_length
        return _T124_KEY + per_length(declared) + pdu

    @property
    def core(self) -> ServerCoreData | None:
        block = find_block(self.blocks, UserDataType.SC_CORE)
        return ServerCoreData.from_block(block) if block else None

    @property
    def security(self) -> ServerSecurityData | None:
        block = find_block(self.blocks, UserDataType.SC_SECURITY)
        return ServerSecurityData.from_block(block) if block else None

    @property
    def network(self) -> ServerNetworkData | None:
        block = find_block(self.blocks, UserDataType.SC_NET)
        return ServerNetworkData.from_block(block) if block else None


def parse_conference_create_request(data: bytes, base: int = 0) -> ConferenceCreateRequest:
    """Parse the GCC ConnectData of a Connect-Initial's userData (all of *data*)."""
    what = "GCC Conference Create Request"
    pos = _expect(data, 0, _T124_KEY, base, what)
    length, pos = _read_per_length(data, pos, base, what)
    if length != len(data) - pos:
        raise RemoteProtocolError(
            f"{what}: connectPDU announces {length} bytes, {len(data) - pos} follow", base + pos
        )
    pos = _expect(data, pos, _CREATE_REQUEST_HEAD, base, what)
    user_data = _read_user_data_set(data, pos, _CLIENT_H221_KEY, base, what)
    user_at = base + len(data) - len(user_data)
    blocks = parse_user_data_blocks(user_data, user_at)
    check_blocks(blocks, user_at)
    return ConferenceCreateRequest(blocks)


def parse_conference_create_response(data: bytes, base: int = 0) -> ConferenceCreateResponse:
    """Parse the GCC ConnectData of a Connect-Response's userData (all of *data*)."""
    what = "GCC Conference Create Response"
    pos = _expect(data, 0, _T124_KEY, base, what)
    declared, pos = _read_per_length(data, pos, base, what)
    if pos + 5 > len(data):
        raise RemoteProtocolError(f"{what}: truncated", base + len(data))
    if data[pos] != _CREATE_RESPONSE_CHOICE:
        raise RemoteProtocolError(
            f"{what}: expected conferenceCreateResponse (0x14), got 0x{data[pos]:02x}",
            base + pos,
        )
    node_id = _NODE_ID_BASE + struct.unpack_from(">H", data, pos + 1)[0]
    tag_len = data[pos + 3]
    pos += 4
    if not 1 <= tag_len <= 4 or pos + tag_len + 1 > len(data):
        raise RemoteProtocolError(f"{what}: bad tag length {tag_len}", base + pos - 1)
    tag = int.from_bytes(data[pos : pos + tag_len], "big")
    pos += tag_len
    result = data[pos]
    pos += 1
    user_data = _read_user_data_set(data, pos, _SERVER_H221_KEY, base, what)
    user_at = base + len(data) - len(user_data)
    blocks = parse_user_data_blocks(user_data, user_at)
    check_blocks(blocks, user_at)
    return ConferenceCreateResponse(blocks, node_id, tag, result, declared)
