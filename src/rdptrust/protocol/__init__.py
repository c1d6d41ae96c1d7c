"""Sans-I/O protocol codecs: pure build/parse over bytes, no sockets, no asyncio."""

from __future__ import annotations

from rdptrust.model.wire import SecurityProtocol
from rdptrust.protocol.tpkt import build_tpkt, packet_length, parse_tpkt
from rdptrust.protocol.x224 import (
    ConnectionConfirm,
    ConnectionRequest,
    CorrelationInfo,
    FailureCode,
    NegotiationFailure,
    NegotiationRequest,
    NegotiationRequestFlags,
    NegotiationResponse,
    NegotiationResponseFlags,
    failure_name,
    parse_connection_confirm,
    parse_connection_request,
)

__all__ = [
    "ConnectionConfirm",
    "ConnectionRequest",
    "CorrelationInfo",
    "FailureCode",
    "NegotiationFailure",
    "NegotiationRequest",
    "NegotiationRequestFlags",
    "NegotiationResponse",
    "NegotiationResponseFlags",
    "SecurityProtocol",
    "build_tpkt",
    "failure_name",
    "packet_length",
    "parse_connection_confirm",
    "parse_connection_request",
    "parse_tpkt",
]
