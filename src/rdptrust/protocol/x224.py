"""X.224 Connection Request/Confirm with RDP negotiation (MS-RDPBCGR 2.2.1.1, 2.2.1.2).

Sans-I/O: builders return bytes, parsers take bytes and return
``(value, consumed)`` or ``None`` when more data is needed. Malformed input raises
:class:`~rdptrust.errors.RemoteProtocolError` naming the offset.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag

from rdptrust.errors import LocalProtocolError, RemoteProtocolError
from rdptrust.model.wire import SecurityProtocol
from rdptrust.protocol.tpkt import TPKT_HEADER_LENGTH, build_tpkt, parse_tpkt

# X.224 TPDU codes (ITU-T X.224 13.3.3); the low nibble of CR/CC is the credit, 0 here.
X224_CONNECTION_REQUEST = 0xE0
X224_CONNECTION_CONFIRM = 0xD0
X224_DATA = 0xF0
#: The X.224 Data TPDU header that carries every MCS PDU: length indicator 2, DT, EOT
#: (MS-RDPBCGR 2.2.1.3 x224Data).
X224_DATA_HEADER = bytes([2, X224_DATA, 0x80])
#: Fixed part of CR and CC TPDUs after the length indicator: code, dst-ref, src-ref, class.
_X224_FIXED = 6

TYPE_RDP_NEG_REQ = 0x01
TYPE_RDP_NEG_RSP = 0x02
TYPE_RDP_NEG_FAILURE = 0x03
TYPE_RDP_CORRELATION_INFO = 0x06
_NEG_LENGTH = 8
_CORRELATION_LENGTH = 36

_COOKIE_PREFIX = b"Cookie: mstshash="
_ROUTING_PREFIX = b"Cookie: msts="
#: A cookie or routing token longer than this cannot fit the one-byte length indicator.
_MAX_TOKEN = 254
#: The mstshash cookie rdptrust sends in every Connection Request; servers ignore it
#: (it is for load balancers).
PROBE_COOKIE = "rdptrust"


#: What mstsc asks for: TLS, CredSSP and CredSSP with Early User Authorization.
CLIENT_REQUESTED_PROTOCOLS = (
    SecurityProtocol.SSL | SecurityProtocol.HYBRID | SecurityProtocol.HYBRID_EX
)


class NegotiationRequestFlags(IntFlag):
    """RDP_NEG_REQ flags (MS-RDPBCGR 2.2.1.1.1)."""

    RESTRICTED_ADMIN_MODE_REQUIRED = 0x01
    REDIRECTED_AUTHENTICATION_MODE_REQUIRED = 0x02
    CORRELATION_INFO_PRESENT = 0x08


class NegotiationResponseFlags(IntFlag):
    """RDP_NEG_RSP flags (MS-RDPBCGR 2.2.1.2.1)."""

    EXTENDED_CLIENT_DATA_SUPPORTED = 0x01
    DYNVC_GFX_PROTOCOL_SUPPORTED = 0x02
    NEGRSP_FLAG_RESERVED = 0x04
    RESTRICTED_ADMIN_MODE_SUPPORTED = 0x08
    REDIRECTED_AUTHENTICATION_MODE_SUPPORTED = 0x10


NO_REQUEST_FLAGS = NegotiationRequestFlags(0)
NO_RESPONSE_FLAGS = NegotiationResponseFlags(0)


class FailureCode(IntEnum):
    """RDP_NEG_FAILURE failureCode (MS-RDPBCGR 2.2.1.2.2)."""

    SSL_REQUIRED_BY_SERVER = 0x00000001
    SSL_NOT_ALLOWED_BY_SERVER = 0x00000002
    SSL_CERT_NOT_ON_SERVER = 0x00000003
    INCONSISTENT_FLAGS = 0x00000004
    HYBRID_REQUIRED_BY_SERVER = 0x00000005
    SSL_WITH_USER_AUTH_REQUIRED_BY_SERVER = 0x00000006


def failure_name(code: int) -> str:
    """The specification's name for a failure code, or ``UNKNOWN_0x…`` for others."""
    try:
        return FailureCode(code).name
    except ValueError:
        return f"UNKNOWN_0x{code:08x}"


@dataclass(frozen=True)
class NegotiationRequest:
    """RDP_NEG_REQ (MS-RDPBCGR 2.2.1.1.1)."""

    requested_protocols: SecurityProtocol = SecurityProtocol.RDP
    flags: NegotiationRequestFlags = NO_REQUEST_FLAGS

    def __post_init__(self) -> None:
        _check_u32("requested_protocols", int(self.requested_protocols))
        _check_u8("flags", int(self.flags))

    def to_bytes(self) -> bytes:
        return struct.pack(
            "<BBHI", TYPE_RDP_NEG_REQ, self.flags, _NEG_LENGTH, self.requested_protocols
        )


@dataclass(frozen=True)
class CorrelationInfo:
    """RDP_CORRELATION_INFO (MS-RDPBCGR 2.2.1.1.2): a 16-byte correlation id."""

    correlation_id: bytes

    def __post_init__(self) -> None:
        if len(self.correlation_id) != 16:
            raise LocalProtocolError("correlation_id must be exactly 16 bytes")
        if self.correlation_id[0] in (0x00, 0xF4) or 0x0D in self.correlation_id:
            # MS-RDPBCGR 2.2.1.1.2: first byte not 0x00/0xF4, no 0x0D byte anywhere.
            raise LocalProtocolError("correlation_id breaks the rules of MS-RDPBCGR 2.2.1.1.2")

    def to_bytes(self) -> bytes:
        return (
            struct.pack("<BBH", TYPE_RDP_CORRELATION_INFO, 0, _CORRELATION_LENGTH)
            + self.correlation_id
            + bytes(16)
        )


@dataclass(frozen=True)
class ConnectionRequest:
    """Client X.224 Connection Request PDU (MS-RDPBCGR 2.2.1.1).

    ``cookie`` is the ``mstshash`` user name and ``routing_token`` the load-balancer
    token; at most one of them is present. ``None`` means the field is absent.
    """

    cookie: str | None = None
    routing_token: bytes | None = None
    negotiation: NegotiationRequest | None = None
    correlation: CorrelationInfo | None = None
    src_ref: int = 0
    class_option: int = 0

    def __post_init__(self) -> None:
        if self.cookie is not None and self.routing_token is not None:
            raise LocalProtocolError("a Connection Request carries a cookie or a routing token")
        if self.cookie is not None and (
            "\r" in self.cookie or "\n" in self.cookie or not self.cookie.isascii()
        ):
            raise LocalProtocolError("the cookie must be ASCII without CR or LF")
        if self.routing_token is not None and b"\r\n" in self.routing_token:
            raise LocalProtocolError("the routing token must not contain CR LF")
        if self.correlation is not None and self.negotiation is None:
            raise LocalProtocolError("correlation info needs an RDP_NEG_REQ before it")
        if (
            self.correlation is not None
            and self.negotiation is not None
            and not (self.negotiation.flags & NegotiationRequestFlags.CORRELATION_INFO_PRESENT)
        ):
            raise LocalProtocolError("correlation info needs CORRELATION_INFO_PRESENT set")
        _check_u16("src_ref", self.src_ref)
        _check_u8("class_option", self.class_option)

    def _variable_part(self) -> bytes:
        out = b""
        if self.cookie is not None:
            out += _COOKIE_PREFIX + self.cookie.encode("ascii") + b"\r\n"
        elif self.routing_token is not None:
            out += _ROUTING_PREFIX + self.routing_token + b"\r\n"
        if self.negotiation is not None:
            out += self.negotiation.to_bytes()
        if self.correlation is not None:
            out += self.correlation.to_bytes()
        return out

    def to_bytes(self) -> bytes:
        """The whole PDU, TPKT header included."""
        variable = self._variable_part()
        li = _X224_FIXED + len(variable)
        if li > _MAX_TOKEN:
            raise LocalProtocolError("cookie or routing token too long for one X.224 TPDU")
        x224 = struct.pack(
            ">BBHHB", li, X224_CONNECTION_REQUEST, 0, self.src_ref, self.class_option
        )
        return build_tpkt(x224 + variable)


@dataclass(frozen=True)
class NegotiationResponse:
    """RDP_NEG_RSP (MS-RDPBCGR 2.2.1.2.1)."""

    selected_protocol: SecurityProtocol
    flags: NegotiationResponseFlags = NO_RESPONSE_FLAGS

    def __post_init__(self) -> None:
        _check_u32("selected_protocol", int(self.selected_protocol))
        _check_u8("flags", int(self.flags))

    def to_bytes(self) -> bytes:
        return struct.pack(
            "<BBHI", TYPE_RDP_NEG_RSP, self.flags, _NEG_LENGTH, self.selected_protocol
        )


@dataclass(frozen=True)
class NegotiationFailure:
    """RDP_NEG_FAILURE (MS-RDPBCGR 2.2.1.2.2). ``failure_code`` keeps unknown codes as ints."""

    failure_code: int

    def __post_init__(self) -> None:
        _check_u32("failure_code", int(self.failure_code))

    @property
    def name(self) -> str:
        return failure_name(self.failure_code)

    def to_bytes(self) -> bytes:
        return struct.pack("<BBHI", TYPE_RDP_NEG_FAILURE, 0, _NEG_LENGTH, self.failure_code)


@dataclass(frozen=True)
class ConnectionConfirm:
    """Server X.224 Connection Confirm PDU (MS-RDPBCGR 2.2.1.2).

    ``negotiation`` is ``None`` when the server sent no negotiation data at all, as
    hosts older than RDP 5.2 do: they speak Standard RDP Security only.
    """

    negotiation: NegotiationResponse | NegotiationFailure | None = None
    dst_ref: int = 0
    src_ref: int = 0x1234
    class_option: int = 0
    extra: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        _check_u16("dst_ref", self.dst_ref)
        _check_u16("src_ref", self.src_ref)
        _check_u8("class_option", self.class_option)

    def to_bytes(self) -> bytes:
        """The whole PDU, TPKT header included."""
        variable = (self.negotiation.to_bytes() if self.negotiation else b"") + self.extra
        li = _X224_FIXED + len(variable)
        if li > _MAX_TOKEN:
            raise LocalProtocolError("Connection Confirm variable part too long")
        x224 = struct.pack(
            ">BBHHB", li, X224_CONNECTION_CONFIRM, self.dst_ref, self.src_ref, self.class_option
        )
        return build_tpkt(x224 + variable)


def _check_u8(name: str, value: int) -> None:
    if not 0 <= value <= 0xFF:
        raise LocalProtocolError(f"{name}={value} does not fit 8 bits")


def _check_u16(name: str, value: int) -> None:
    if not 0 <= value <= 0xFFFF:
        raise LocalProtocolError(f"{name}={value} does not fit 16 bits")


def _check_u32(name: str, value: int) -> None:
    if not 0 <= value <= 0xFFFFFFFF:
        raise LocalProtocolError(f"{name}={value} does not fit 32 bits")


def _x224_header(payload: bytes, expected_code: int, what: str) -> tuple[int, int, int, int]:
    """Check LI and code; return (li, dst_ref, src_ref, class_option)."""
    base = TPKT_HEADER_LENGTH
    if len(payload) < 1 + _X224_FIXED:
        raise RemoteProtocolError(f"{what} is shorter than an X.224 header", base)
    li = payload[0]
    if li != len(payload) - 1:
        raise RemoteProtocolError(
            f"{what}: X.224 length indicator {li} does not match the "
            f"{len(payload) - 1} bytes the TPKT header announced",
            base,
        )
    code = payload[1] & 0xF0
    if code != expected_code:
        raise RemoteProtocolError(
            f"{what}: expected X.224 code 0x{expected_code:02x}, got 0x{payload[1]:02x}",
            base + 1,
        )
    _, _, dst_ref, src_ref, class_option = struct.unpack_from(">BBHHB", payload, 0)
    return li, dst_ref, src_ref, class_option


def _parse_neg_header(data: bytes, offset: int, base: int) -> tuple[int, int, int]:
    if len(data) - offset < _NEG_LENGTH:
        raise RemoteProtocolError(
            f"negotiation structure truncated: {len(data) - offset} of 8 bytes", base + offset
        )
    type_, flags, length = struct.unpack_from("<BBH", data, offset)
    if length != _NEG_LENGTH:
        raise RemoteProtocolError(
            f"negotiation structure length must be 8, got {length}", base + offset + 2
        )
    return type_, flags, length


def parse_connection_request(data: bytes) -> tuple[ConnectionRequest, int] | None:
    """Parse a Client X.224 Connection Request PDU from the start of *data*."""
    framed = parse_tpkt(data)
    if framed is None:
        return None
    payload, consumed = framed
    _li, _dst, src_ref, class_option = _x224_header(
        payload, X224_CONNECTION_REQUEST, "Connection Request"
    )
    base = TPKT_HEADER_LENGTH
    pos = 1 + _X224_FIXED
    cookie: str | None = None
    routing_token: bytes | None = None
    if payload.startswith(b"Cookie: ", pos):
        end = payload.find(b"\r\n", pos)
        if end < 0:
            raise RemoteProtocolError("cookie is not terminated by CR LF", base + pos)
        line = payload[pos:end]
        if line.startswith(_COOKIE_PREFIX):
            raw = line[len(_COOKIE_PREFIX) :]
            if not raw.isascii():
                raise RemoteProtocolError("mstshash cookie is not ASCII", base + pos)
            cookie = raw.decode("ascii")
        elif line.startswith(_ROUTING_PREFIX):
            routing_token = line[len(_ROUTING_PREFIX) :]
        else:
            raise RemoteProtocolError("unknown cookie type", base + pos)
        pos = end + 2
    negotiation: NegotiationRequest | None = None
    correlation: CorrelationInfo | None = None
    if pos < len(payload):
        type_, flags, _ = _parse_neg_header(payload, pos, base)
        if type_ != TYPE_RDP_NEG_REQ:
            raise RemoteProtocolError(
                f"expected RDP_NEG_REQ (type 1), got type {type_}", base + pos
            )
        (requested,) = struct.unpack_from("<I", payload, pos + 4)
        negotiation = NegotiationRequest(
            SecurityProtocol(requested), NegotiationRequestFlags(flags)
        )
        pos += _NEG_LENGTH
        if flags & NegotiationRequestFlags.CORRELATION_INFO_PRESENT:
            if len(payload) - pos < _CORRELATION_LENGTH:
                raise RemoteProtocolError("RDP_CORRELATION_INFO truncated", base + pos)
            ctype, _cflags, clength = struct.unpack_from("<BBH", payload, pos)
            if ctype != TYPE_RDP_CORRELATION_INFO or clength != _CORRELATION_LENGTH:
                raise RemoteProtocolError("malformed RDP_CORRELATION_INFO", base + pos)
            try:
                correlation = CorrelationInfo(bytes(payload[pos + 4 : pos + 20]))
            except LocalProtocolError as exc:
                raise RemoteProtocolError(str(exc), base + pos + 4) from exc
            pos += _CORRELATION_LENGTH
    if pos != len(payload):
        raise RemoteProtocolError(
            f"{len(payload) - pos} unexpected bytes at the end of the Connection Request",
            base + pos,
        )
    return (
        ConnectionRequest(
            cookie=cookie,
            routing_token=routing_token,
            negotiation=negotiation,
            correlation=correlation,
            src_ref=src_ref,
            class_option=class_option,
        ),
        consumed,
    )


def parse_connection_confirm(data: bytes) -> tuple[ConnectionConfirm, int] | None:
    """Parse a Server X.224 Connection Confirm PDU from the start of *data*."""
    framed = parse_tpkt(data)
    if framed is None:
        return None
    payload, consumed = framed
    _li, dst_ref, src_ref, class_option = _x224_header(
        payload, X224_CONNECTION_CONFIRM, "Connection Confirm"
    )
    base = TPKT_HEADER_LENGTH
    pos = 1 + _X224_FIXED
    negotiation: NegotiationResponse | NegotiationFailure | None = None
    if pos < len(payload):
        type_, flags, _ = _parse_neg_header(payload, pos, base)
        (value,) = struct.unpack_from("<I", payload, pos + 4)
        if type_ == TYPE_RDP_NEG_RSP:
            negotiation = NegotiationResponse(
                SecurityProtocol(value), NegotiationResponseFlags(flags)
            )
        elif type_ == TYPE_RDP_NEG_FAILURE:
            negotiation = NegotiationFailure(value)
        else:
            raise RemoteProtocolError(
                f"expected RDP_NEG_RSP or RDP_NEG_FAILURE, got type {type_}", base + pos
            )
        pos += _NEG_LENGTH
    if pos != len(payload):
        raise RemoteProtocolError(
            f"{len(payload) - pos} unexpected bytes at the end of the Connection Confirm",
            base + pos,
        )
    return (
        ConnectionConfirm(
            negotiation=negotiation, dst_ref=dst_ref, src_ref=src_ref, class_option=class_option
        ),
        consumed,
    )


def parse_data_tpdu(data: bytes) -> tuple[bytes, int] | None:
    """Parse one X.224 Data TPDU (``02 F0 80`` + user data) in TPKT; return its user data."""
    framed = parse_tpkt(data)
    if framed is None:
        return None
    payload, consumed = framed
    base = TPKT_HEADER_LENGTH
    if len(payload) < 3:
        raise RemoteProtocolError("X.224 Data TPDU is shorter than its 3-byte header", base)
    if payload[0] != 2 or payload[1] != X224_DATA:
        raise RemoteProtocolError(
            f"expected an X.224 Data TPDU (02 f0), got {payload[:2].hex(' ')}", base
        )
    return bytes(payload[3:]), consumed
