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
from rdptrust.protocol import der
from rdptrust.protocol.der import Tag
from rdptrust.protocol.reader import PacketReader
from rdptrust.protocol.tpkt import build_tpkt
from rdptrust.protocol.x224 import X224_DATA_HEADER

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
        return build_tpkt(X224_DATA_HEADER + bytes([first, second]))


def is_disconnect_provider_ultimatum(user_data: bytes) -> bool:
    """True when the MCS PDU in *user_data* is a Disconnect Provider Ultimatum by its choice."""
    return bool(user_data) and user_data[0] >> 2 == _DPUM_CHOICE


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
#: No MCS connect PDU is longer than one TPKT packet: two length octets are enough.
_BER_MAX_LENGTH = 0xFFFF
_BER_MAX_LENGTH_OCTETS = 2
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
        return der.sequence(*(der.integer(v, unsigned=unsigned) for v in self.values()))


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
            der.octet_string(self.calling_domain_selector)
            + der.octet_string(self.called_domain_selector)
            + der.boolean(self.upward_flag)
            + self.target_parameters.to_ber(unsigned=True)
            + self.minimum_parameters.to_ber(unsigned=True)
            + self.maximum_parameters.to_ber(unsigned=True)
            + der.octet_string(self.user_data)
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
        if not 0 <= self.called_connect_id <= 0xFFFFFFFF:
            raise LocalProtocolError(f"called_connect_id={self.called_connect_id} out of range")

    @property
    def result_name(self) -> str:
        try:
            return ConnectResult(self.result).name.lower().replace("_", "-")
        except ValueError:
            return f"unknown-{self.result}"

    def to_bytes(self) -> bytes:
        """The BER encoding; integers in two's complement as Windows servers write them."""
        body = der.tlv(Tag.ENUMERATED, bytes([self.result]))
        if self.domain_parameters is not None:
            body += (
                der.integer(self.called_connect_id, unsigned=False)
                + self.domain_parameters.to_ber(unsigned=False)
                + der.octet_string(self.user_data)
            )
        return _ber_application(_TAG_CONNECT_RESPONSE, body)


def _ber_application(number: int, body: bytes) -> bytes:
    # [APPLICATION n] constructed with the high tag-number form: 7F n (n > 30).
    if len(body) > _BER_MAX_LENGTH:
        raise LocalProtocolError("MCS connect PDU too long for one TPKT packet")
    return bytes([0x7F, number]) + der.encode_length(len(body)) + body


class _BerReader(PacketReader):
    """Reads the BER elements of one MCS PDU body in turn; offsets count from ``base``."""

    def element(self, tag: int, name: str) -> der.Element:
        if self.at_end():
            raise self.error(f"{name} missing")
        element = der.read_element(
            self.data,
            self.pos,
            len(self.data),
            what=f"{self.what} {name}",
            base=self.base,
            max_octets=_BER_MAX_LENGTH_OCTETS,
        )
        if element.tag != tag:
            raise self.error(f"expected {name} (BER tag 0x{tag:02x}), got 0x{element.tag:02x}")
        self.pos = element.end
        return element

    def tlv(self, tag: int, name: str) -> bytes:
        return self.element(tag, name).content(self.data)

    def integer(self, tag: int, name: str) -> int:
        start = self.pos
        # MCS values are never negative; Windows clients write 65535 as ff ff.
        value = der.read_integer(
            self.data,
            self.element(tag, name),
            what=f"{self.what} {name}",
            base=self.base,
            max_octets=_BER_MAX_INT_OCTETS,
            signed=False,
        )
        if value > 0xFFFFFFFF:
            raise self.error(f"{name} {value} does not fit 32 bits", start)
        return value

    def domain_parameters(self, name: str) -> DomainParameters:
        body = self.element(Tag.SEQUENCE, name)
        inner = _BerReader(body.content(self.data), self.base + body.start, f"{self.what} {name}")
        values = [inner.integer(Tag.INTEGER, f"{name} value {i}") for i in range(8)]
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
    parsed = der.read_length(
        data, 2, len(data), what=what, base=base, max_octets=_BER_MAX_LENGTH_OCTETS
    )
    if parsed is None:
        return None
    length, start = parsed
    if len(data) - start < length:
        return None
    return _BerReader(data[start : start + length], base + start, what), start + length


def parse_connect_initial(data: bytes, base: int = 0) -> tuple[ConnectInitial, int] | None:
    """Parse a BER Connect-Initial at the start of *data*; ``None`` when more is needed.

    *base* is added to offsets in error messages (the position of *data* in the packet).
    """
    parsed = _parse_application(data, _TAG_CONNECT_INITIAL, "MCS Connect-Initial", base)
    if parsed is None:
        return None
    reader, consumed = parsed
    calling = reader.tlv(Tag.OCTET_STRING, "callingDomainSelector")
    called = reader.tlv(Tag.OCTET_STRING, "calledDomainSelector")
    upward = reader.tlv(Tag.BOOLEAN, "upwardFlag")
    if len(upward) != 1:
        raise reader.error("upwardFlag must be one octet")
    target = reader.domain_parameters("targetParameters")
    minimum = reader.domain_parameters("minimumParameters")
    maximum = reader.domain_parameters("maximumParameters")
    user_data = reader.tlv(Tag.OCTET_STRING, "userData")
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
    result = reader.integer(Tag.ENUMERATED, "result")
    if result > 0xFF:
        raise reader.error(f"result {result} out of range")
    if reader.at_end():
        return ConnectResponse(result, 0, None, b""), consumed
    called_id = reader.integer(Tag.INTEGER, "calledConnectId")
    params = reader.domain_parameters("domainParameters")
    user_data = reader.tlv(Tag.OCTET_STRING, "userData")
    if not reader.at_end():
        raise reader.error("unexpected bytes after userData")
    return ConnectResponse(result, called_id, params, bytes(user_data)), consumed
