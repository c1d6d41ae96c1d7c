"""The whole MCS connect PDUs: TPKT, X.224 Data, MCS Connect-Initial or Connect-Response
(BER), GCC Conference Create (MS-RDPBCGR 2.2.1.3, 2.2.1.4).

Sans-I/O: builders return bytes, parsers take bytes and return ``(value, consumed)`` or
``None`` when more data is needed; bad input raises
:class:`~rdptrust.errors.RemoteProtocolError` with the offset in the packet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from rdptrust.errors import RemoteProtocolError
from rdptrust.protocol.gcc.blocks import (
    ClientCoreData,
    ClientNetworkData,
    ClientSecurityData,
    ServerCoreData,
    ServerNetworkData,
    ServerSecurityData,
)
from rdptrust.protocol.gcc.conference import (
    ConferenceCreateRequest,
    ConferenceCreateResponse,
    parse_conference_create_request,
    parse_conference_create_response,
)
from rdptrust.protocol.mcs import (
    ConnectInitial,
    ConnectResponse,
    ConnectResult,
    parse_connect_initial,
    parse_connect_response,
)
from rdptrust.protocol.tpkt import TPKT_HEADER_LENGTH, build_tpkt, parse_tpkt
from rdptrust.protocol.x224 import X224_DATA_HEADER

#: Where the MCS PDU starts in a TPKT packet: TPKT header + X.224 Data header.
MCS_OFFSET = TPKT_HEADER_LENGTH + len(X224_DATA_HEADER)


@dataclass(frozen=True)
class ClientConnectInitial:
    """Client MCS Connect Initial PDU with GCC Conference Create Request (2.2.1.3)."""

    mcs: ConnectInitial
    conference: ConferenceCreateRequest

    @classmethod
    def build(
        cls,
        security: ClientSecurityData,
        *,
        core: ClientCoreData | None = None,
        network: ClientNetworkData | None = None,
    ) -> ClientConnectInitial:
        """CS_CORE, CS_SECURITY and CS_NET in the order Windows sends them."""
        blocks = (
            (core or ClientCoreData.default()).to_block(),
            security.to_block(),
            (network or ClientNetworkData()).to_block(),
        )
        conference = ConferenceCreateRequest(blocks)
        return cls(ConnectInitial(conference.to_bytes()), conference)

    def to_bytes(self) -> bytes:
        return build_tpkt(X224_DATA_HEADER + self.mcs.to_bytes())


@dataclass(frozen=True)
class ServerConnectResponse:
    """Server MCS Connect Response PDU with GCC Conference Create Response (2.2.1.4).

    ``conference`` is ``None`` when the server refused with a bare MCS result.
    """

    mcs: ConnectResponse
    conference: ConferenceCreateResponse | None

    @classmethod
    def build(
        cls,
        core: ServerCoreData,
        security: ServerSecurityData,
        network: ServerNetworkData | None = None,
        *,
        connect_pdu_length: int | None = None,
    ) -> ServerConnectResponse:
        """SC_CORE, SC_NET and SC_SECURITY in the order Windows sends them (4.1.4).

        *connect_pdu_length* overrides the GCC connectPDU length (``None``: the true one);
        :data:`WINDOWS_CONNECT_PDU_LENGTH` writes what Windows writes.
        """
        blocks = (core.to_block(), (network or ServerNetworkData()).to_block(), security.to_block())
        conference = ConferenceCreateResponse(blocks, connect_pdu_length=connect_pdu_length)
        return cls(ConnectResponse(user_data=conference.to_bytes()), conference)

    @classmethod
    def refusal(cls, result: int = ConnectResult.RT_UNSPECIFIED_FAILURE) -> ServerConnectResponse:
        return cls(ConnectResponse(result, 0, None, b""), None)

    def to_bytes(self) -> bytes:
        return build_tpkt(X224_DATA_HEADER + self.mcs.to_bytes())


def _mcs_payload(data: bytes, what: str) -> tuple[bytes, int] | None:
    framed = parse_tpkt(data)
    if framed is None:
        return None
    payload, consumed = framed
    if payload[:3] != X224_DATA_HEADER:
        raise RemoteProtocolError(
            f"{what}: expected an X.224 Data TPDU (02 f0 80), got {payload[:3].hex(' ')}",
            TPKT_HEADER_LENGTH,
        )
    return bytes(payload[3:]), consumed


class _McsPdu(Protocol):
    @property
    def user_data(self) -> bytes: ...


_Pdu = TypeVar("_Pdu", bound=_McsPdu)


def _parse_whole(
    data: bytes, what: str, parse: Callable[[bytes, int], tuple[_Pdu, int] | None]
) -> tuple[_Pdu, int, int] | None:
    """One MCS PDU filling its TPKT packet: (pdu, offset of its user data, consumed)."""
    framed = _mcs_payload(data, what)
    if framed is None:
        return None
    payload, consumed = framed
    parsed = parse(payload, MCS_OFFSET)
    if parsed is None:
        raise RemoteProtocolError(f"{what}: truncated inside its TPKT packet", MCS_OFFSET)
    mcs, used = parsed
    if used != len(payload):
        raise RemoteProtocolError(
            f"{what}: {len(payload) - used} bytes after the PDU", MCS_OFFSET + used
        )
    return mcs, MCS_OFFSET + used - len(mcs.user_data), consumed


def parse_client_connect_initial(data: bytes) -> tuple[ClientConnectInitial, int] | None:
    """Parse a whole Client MCS Connect Initial PDU at the start of *data*."""
    whole = _parse_whole(data, "MCS Connect-Initial", parse_connect_initial)
    if whole is None:
        return None
    mcs, user_at, consumed = whole
    return ClientConnectInitial(
        mcs, parse_conference_create_request(mcs.user_data, user_at)
    ), consumed


def parse_server_connect_response(data: bytes) -> tuple[ServerConnectResponse, int] | None:
    """Parse a whole Server MCS Connect Response PDU at the start of *data*."""
    whole = _parse_whole(data, "MCS Connect-Response", parse_connect_response)
    if whole is None:
        return None
    mcs, user_at, consumed = whole
    if mcs.domain_parameters is None:
        return ServerConnectResponse(mcs, None), consumed
    return (
        ServerConnectResponse(mcs, parse_conference_create_response(mcs.user_data, user_at)),
        consumed,
    )
