"""T.125 MCS PDUs that rdptrust needs: Connect-Initial and Connect-Response (BER,
MS-RDPBCGR 2.2.1.3-2.2.1.4; their GCC user data is in :mod:`rdptrust.protocol.gcc`) and
Disconnect Provider Ultimatum (PER, MS-RDPBCGR 2.2.1).

Some servers (xrdp, for one) answer a Connection Request they do not accept with an
X.224 Data TPDU carrying MCS Disconnect Provider Ultimatum instead of a Connection
Confirm; recognising it lets us report a refusal rather than a protocol error.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from rdptrust.errors import LocalProtocolError, RemoteProtocolError
from rdptrust.protocol.reader import PacketReader
from rdptrust.protocol.tpkt import build_tpkt

#: DomainMCSPDU CHOICE index of disconnectProviderUltimatum (T.125 section 7, ASN.1 order).
_DPUM_CHOICE = 8


class DisconnectReason(IntEnum):
    """T.125 Reason values."""

    DOMAIN_DISCONNECTED = 0
    PROVIDER_INITIATED = 1
    TOKEN_PURGED = 2
    USER_REQUESTED = 3
    CHANNEL_PURGED = 4


@dataclass(frozen=True)
class DisconnectProviderUltimatum:
    """MCS Disconnect Provider Ultimatum; ``reason`` keeps unknown values as ints."""

    reason: int

    def __post_init__(self) -> None:
        if not 0 <= self.reason <= 7:
            raise ValueError("reason is a 3-bit value")

    @property
    def reason_name(self) -> str:
        try:
            return DisconnectReason(self.reason).name
        except ValueError:
            return f"UNKNOWN_{self.reason}"

    def to_bytes(self) -> bytes:
        """The PDU inside an X.224 Data TPDU inside TPKT."""
        first = (_DPUM_CHOICE << 2) | (self.reason >> 1)
        second = (self.reason & 1) << 7
        return build_tpkt(bytes([0x02, 0xF0, 0x80, first, second]))


def parse_disconnect_provider_ultimatum(user_data: bytes) -> DisconnectProviderUltimatum:
    """Parse the MCS PDU carried by an X.224 Data TPDU; anything else is an error."""
    if len(user_data) < 2:
        raise RemoteProtocolError("MCS PDU truncated", 0)
    if user_data[0] >> 2 != _DPUM_CHOICE:
        raise RemoteProtocolError(
            f"expected MCS Disconnect Provider Ultimatum, got choice {user_data[0] >> 2}", 0
        )
    reason = ((user_data[0] & 0x03) << 1) | (user_data[1] >> 7)
    return DisconnectProviderUltimatum(reason)


# --- MCS Connect-Initial / Connect-Response (T.125 section 7 part 2, BER) ----------------
# MS-RDPBCGR 2.2.1.3 and 2.2.1.4 carry these inside an X.224 Data TPDU; their userData
# holds the GCC Conference Create Request/Response (see rdptrust.protocol.gcc).

_TAG_CONNECT_INITIAL = 101
_TAG_CONNECT_RESPONSE = 102
_BER_BOOLEAN = 0x01
_BER_INTEGER = 0x02
_BER_OCTET_STRING = 0x04
_BER_ENUMERATED = 0x0A
_BER_SEQUENCE = 0x30
#: No MCS connect PDU is longer than one TPKT packet.
_BER_MAX_LENGTH = 0xFFFF
#: Domain parameter values are 32-bit at most on the wire (T.125 allows INTEGER (0..MAX)).
_BER_MAX_INT_OCTETS = 5


class ConnectResult(IntEnum):
    """T.125 Result values of Connect-Response."""

    RT_SUCCESSFUL = 0
    RT_DOMAIN_MERGING = 1
    RT_DOMAIN_NOT_HIERARCHICAL = 2
    RT_NO_SUCH_CHANNEL = 3
    RT_NO_SUCH_DOMAIN = 4
    RT_NO_SUCH_USER = 5
    RT_NOT_ADMITTED = 6
    RT_OTHER_USER_ID = 7
    RT_PARAMETERS_UNACCEPTABLE = 8
    RT_TOKEN_NOT_AVAILABLE = 9
    RT_TOKEN_NOT_POSSESSED = 10
    RT_TOO_MANY_CHANNELS = 11
    RT_TOO_MANY_TOKENS = 12
    RT_TOO_MANY_USERS = 13
    RT_UNSPECIFIED_FAILURE = 14
    RT_USER_REJECTED = 15


@dataclass(frozen=True)
class DomainParameters:
    """T.125 DomainParameters."""

    max_channel_ids: int
    max_user_ids: int
    max_token_ids: int
    num_priorities: int
    min_throughput: int
    max_height: int
    max_mcspdu_size: int
    protocol_version: int

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if not 0 <= value <= 0xFFFFFFFF:
                raise LocalProtocolError(f"domain parameter {name}={value} out of range")

    def values(self) -> tuple[int, ...]:
        return (
            self.max_channel_ids,
            self.max_user_ids,
            self.max_token_ids,
            self.num_priorities,
            self.min_throughput,
            self.max_height,
            self.max_mcspdu_size,
            self.protocol_version,
        )

    def to_ber(self, *, unsigned: bool) -> bytes:
        body = b"".join(ber_integer(v, unsigned=unsigned) for v in self.values())
        return ber_tlv(_BER_SEQUENCE, body)


#: The values MS-RDPBCGR 3.2.5.3.3 tells clients to send.
CLIENT_TARGET_PARAMETERS = DomainParameters(34, 2, 0, 1, 0, 1, 65535, 2)
CLIENT_MINIMUM_PARAMETERS = DomainParameters(1, 1, 1, 1, 0, 1, 1056, 2)
CLIENT_MAXIMUM_PARAMETERS = DomainParameters(65535, 64535, 65535, 1, 0, 1, 65535, 2)
#: What Windows answers with (MS-RDPBCGR 4.1.4).
SERVER_DOMAIN_PARAMETERS = DomainParameters(34, 3, 0, 1, 0, 1, 65528, 2)


@dataclass(frozen=True)
class ConnectInitial:
    """MCS Connect-Initial (T.125 7 part 2); ``user_data`` is the GCC ConnectData."""

    user_data: bytes
    calling_domain_selector: bytes = b"\x01"
    called_domain_selector: bytes = b"\x01"
    upward_flag: bool = True
    target_parameters: DomainParameters = CLIENT_TARGET_PARAMETERS
    minimum_parameters: DomainParameters = CLIENT_MINIMUM_PARAMETERS
    maximum_parameters: DomainParameters = CLIENT_MAXIMUM_PARAMETERS

    def to_bytes(self) -> bytes:
        """The BER encoding (no TPKT or X.224 header).

        Integers are written as unsigned minimal octets (65535 as ``ff ff``), as the
        Windows client does in MS-RDPBCGR 4.1.3.
        """
        body = (
            ber_tlv(_BER_OCTET_STRING, self.calling_domain_selector)
            + ber_tlv(_BER_OCTET_STRING, self.called_domain_selector)
            + ber_tlv(_BER_BOOLEAN, b"\xff" if self.upward_flag else b"\x00")
            + self.target_parameters.to_ber(unsigned=True)
            + self.minimum_parameters.to_ber(unsigned=True)
            + self.maximum_parameters.to_ber(unsigned=True)
            + ber_tlv(_BER_OCTET_STRING, self.user_data)
        )
        return _ber_application(_TAG_CONNECT_INITIAL, body)


@dataclass(frozen=True)
class ConnectResponse:
    """MCS Connect-Response (T.125 7 part 2); ``user_data`` is the GCC ConnectData.

    A server refusing the request may send the result alone (MS-RDPBCGR 3.3.5.3.3.1):
    ``domain_parameters`` is then ``None`` and ``user_data`` empty.
    """

    result: int = ConnectResult.RT_SUCCESSFUL
    called_connect_id: int = 0
    domain_parameters: DomainParameters | None = SERVER_DOMAIN_PARAMETERS
    user_data: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.result <= 0xFF:
            raise LocalProtocolError(f"result={self.result} out of range")

    @property
    def result_name(self) -> str:
        try:
            return ConnectResult(self.result).name.lower().replace("_", "-")
        except ValueError:
            return f"unknown-{self.result}"

    def to_bytes(self) -> bytes:
        """The BER encoding; integers in two's complement as Windows servers write them."""
        body = ber_tlv(_BER_ENUMERATED, bytes([self.result]))
        if self.domain_parameters is not None:
            body += (
                ber_integer(self.called_connect_id, unsigned=False)
                + self.domain_parameters.to_ber(unsigned=False)
                + ber_tlv(_BER_OCTET_STRING, self.user_data)
            )
        return _ber_application(_TAG_CONNECT_RESPONSE, body)


def ber_length(length: int) -> bytes:
    """A BER definite length, short form below 128, else the fewest octets."""
    if length < 0x80:
        return bytes([length])
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def ber_tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + ber_length(len(value)) + value


def ber_integer(value: int, *, unsigned: bool) -> bytes:
    """BER INTEGER; ``unsigned`` drops the sign octet that two's complement needs."""
    if value < 0:
        raise LocalProtocolError("negative INTEGER values are not used by MCS")
    size = max(1, (value.bit_length() + (0 if unsigned else 1) + 7) // 8)
    return ber_tlv(_BER_INTEGER, value.to_bytes(size, "big"))


def _ber_application(number: int, body: bytes) -> bytes:
    # [APPLICATION n] constructed with the high tag-number form: 7F n (n > 30).
    if len(body) > _BER_MAX_LENGTH:
        raise LocalProtocolError("MCS connect PDU too long for one TPKT packet")
    return bytes([0x7F, number]) + ber_length(len(body)) + body


class _BerReader(PacketReader):
    """Bounds-checked BER reading; offsets in errors count from ``base``."""

    def length(self) -> int:
        start = self.pos
        if self.pos >= len(self.data):
            raise self.error("BER length missing")
        first = self.data[self.pos]
        self.pos += 1
        if first < 0x80:
            return first
        count = first & 0x7F
        if count == 0 or count > 2:
            raise self.error(f"unsupported BER length form 0x{first:02x}", start)
        if self.pos + count > len(self.data):
            raise self.error("BER length truncated", start)
        value = int.from_bytes(self.data[self.pos : self.pos + count], "big")
        self.pos += count
        return value

    def tlv(self, tag: int, name: str) -> bytes:
        start = self.pos
        if self.pos >= len(self.data):
            raise self.error(f"{name} missing")
        if self.data[self.pos] != tag:
            raise self.error(
                f"expected {name} (BER tag 0x{tag:02x}), got 0x{self.data[self.pos]:02x}"
            )
        self.pos += 1
        length = self.length()
        if length > len(self.data) - self.pos:
            raise self.error(
                f"{name} announces {length} bytes, {len(self.data) - self.pos} remain", start
            )
        value = self.data[self.pos : self.pos + length]
        self.pos += length
        return value

    def integer(self, tag: int, name: str) -> int:
        start = self.pos
        value = self.tlv(tag, name)
        if not 0 < len(value) <= _BER_MAX_INT_OCTETS:
            raise self.error(f"{name} has {len(value)} octets", start)
        # MCS values are never negative; Windows clients write 65535 as ff ff.
        return int.from_bytes(value, "big")

    def domain_parameters(self, name: str) -> DomainParameters:
        body = self.tlv(_BER_SEQUENCE, name)
        inner = _BerReader(body, self.base + self.pos - len(body), f"{self.what} {name}")
        values = [inner.integer(_BER_INTEGER, f"{name} value {i}") for i in range(8)]
        if not inner.at_end():
            raise inner.error("unexpected bytes after the eight domain parameters")
        return DomainParameters(*values)


def _parse_application(
    data: bytes, number: int, what: str, base: int
) -> tuple[_BerReader, int] | None:
    """Return a reader over the body of ``[APPLICATION number]`` and the bytes consumed."""
    if not data:
        return None
    if data[0] != 0x7F:
        raise RemoteProtocolError(f"{what}: expected BER tag 7f, got 0x{data[0]:02x}", base)
    if len(data) < 2:
        return None
    if data[1] != number:
        raise RemoteProtocolError(
            f"{what}: expected [APPLICATION {number}], got [APPLICATION {data[1]}]", base + 1
        )
    if len(data) < 3:
        return None
    head = _BerReader(data, base, what)
    head.pos = 2
    first = data[2]
    if first >= 0x80 and len(data) < 3 + (first & 0x7F):
        return None
    length = head.length()
    if len(data) - head.pos < length:
        return None
    body = data[head.pos : head.pos + length]
    return _BerReader(body, base + head.pos, what), head.pos + length


def parse_connect_initial(data: bytes, base: int = 0) -> tuple[ConnectInitial, int] | None:
    """Parse a BER Connect-Initial at the start of *data*; ``None`` when more is needed.

    *base* is added to offsets in error messages (the position of *data* in the packet).
    """
    parsed = _parse_application(data, _TAG_CONNECT_INITIAL, "MCS Connect-Initial", base)
    if parsed is None:
        return None
    reader, consumed = parsed
    calling = reader.tlv(_BER_OCTET_STRING, "callingDomainSelector")
    called = reader.tlv(_BER_OCTET_STRING, "calledDomainSelector")
    upward = reader.tlv(_BER_BOOLEAN, "upwardFlag")
    if len(upward) != 1:
        raise reader.error("upwardFlag must be one octet")
    target = reader.domain_parameters("targetParameters")
    minimum = reader.domain_parameters("minimumParameters")
    maximum = reader.domain_parameters("maximumParameters")
    user_data = reader.tlv(_BER_OCTET_STRING, "userData")
    if not reader.at_end():
        raise reader.error("unexpected bytes after userData")
    return (
        ConnectInitial(
            user_data=bytes(user_data),
            calling_domain_selector=bytes(calling),
            called_domain_selector=bytes(called),
            upward_flag=upward[0] != 0,
            target_parameters=target,
            minimum_parameters=minimum,
            maximum_parameters=maximum,
        ),
        consumed,
    )


def parse_connect_response(data: bytes, base: int = 0) -> tuple[ConnectResponse, int] | None:
    """Parse a BER Connect-Response at the start of *data*; ``None`` when more is needed."""
    parsed = _parse_application(data, _TAG_CONNECT_RESPONSE, "MCS Connect-Response", base)
    if parsed is None:
        return None
    reader, consumed = parsed
    result = reader.integer(_BER_ENUMERATED, "result")
    if result > 0xFF:
        raise reader.error(f"result {result} out of range")
    if reader.at_end():
        return ConnectResponse(result, 0, None, b""), consumed
    called_id = reader.integer(_BER_INTEGER, "calledConnectId")
    params = reader.domain_parameters("domainParameters")
    user_data = reader.tlv(_BER_OCTET_STRING, "userData")
    if not reader.at_end():
        raise reader.error("unexpected bytes after userData")
    return ConnectResponse(result, called_id, params, bytes(user_data)), consumed
