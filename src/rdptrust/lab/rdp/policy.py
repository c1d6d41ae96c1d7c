"""What the lab's RDP endpoint offers and how it answers a Connection Request.

The protocol is chosen as Windows chooses it (see :mod:`rdptrust.lab.rdp`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rdptrust.errors import UsageError
from rdptrust.lab.rdp.credssp import NtlmIdentity
from rdptrust.lab.rdp.hostile import HostileMode
from rdptrust.lab.standard_security import StandardSecurityPolicy
from rdptrust.model.wire import SecurityProtocol
from rdptrust.protocol.x224 import (
    ConnectionConfirm,
    ConnectionRequest,
    FailureCode,
    NegotiationFailure,
    NegotiationResponse,
    NegotiationResponseFlags,
)

#: Protocols the lab can offer, strongest first: the order Windows selects in.
SELECTION_ORDER: tuple[SecurityProtocol, ...] = (
    SecurityProtocol.HYBRID_EX,
    SecurityProtocol.HYBRID,
    SecurityProtocol.SSL,
)
OFFERABLE = frozenset({SecurityProtocol.RDP, *SELECTION_ORDER})
DEFAULT_PROTOCOLS = OFFERABLE
TLS_BITS = SecurityProtocol.SSL | SecurityProtocol.HYBRID | SecurityProtocol.HYBRID_EX
CREDSSP_PROTOCOLS = frozenset({SecurityProtocol.HYBRID, SecurityProtocol.HYBRID_EX})

#: Flags of the lab's RDP_NEG_RSP, as Windows Server 2022 sends them.
RESPONSE_FLAGS = (
    NegotiationResponseFlags.EXTENDED_CLIENT_DATA_SUPPORTED
    | NegotiationResponseFlags.DYNVC_GFX_PROTOCOL_SUPPORTED
    | NegotiationResponseFlags.NEGRSP_FLAG_RESERVED
    | NegotiationResponseFlags.RESTRICTED_ADMIN_MODE_SUPPORTED
    | NegotiationResponseFlags.REDIRECTED_AUTHENTICATION_MODE_SUPPORTED
)


def parse_protocol(text: str) -> SecurityProtocol:
    """``RDP``, ``SSL`` (or ``TLS``), ``HYBRID`` (or ``NLA``, ``CREDSSP``), ``HYBRID_EX``."""
    name = text.strip().upper().replace("-", "_")
    aliases = {"TLS": "SSL", "NLA": "HYBRID", "CREDSSP": "HYBRID", "STANDARD": "RDP"}
    name = aliases.get(name, name)
    try:
        protocol = SecurityProtocol[name]
    except KeyError:
        protocol = None
    if protocol is None or protocol not in OFFERABLE:
        raise UsageError(f"unknown protocol {text!r}; use RDP, SSL, HYBRID or HYBRID_EX")
    return protocol


def parse_protocols(text: str) -> frozenset[SecurityProtocol]:
    """A comma-separated list such as ``SSL,HYBRID``."""
    items = [item for item in text.split(",") if item.strip()]
    if not items:
        raise UsageError("give at least one protocol, e.g. SSL,HYBRID")
    return frozenset(parse_protocol(item) for item in items)


@dataclass(frozen=True)
class RdpPolicy:
    """What the endpoint offers and how it answers.

    ``required`` ``None`` means nothing beyond what is offered is demanded; ``hostile``
    ``None`` means a well-behaved endpoint.
    """

    protocols: frozenset[SecurityProtocol] = DEFAULT_PROTOCOLS
    required: SecurityProtocol | None = None
    negotiation: bool = True
    hostile: HostileMode | None = None
    latency_ms: int = 0
    ntlm: NtlmIdentity = field(default_factory=NtlmIdentity)
    #: How MCS Connect-Initial is answered; ``None``: the lab closes instead of answering.
    standard_security: StandardSecurityPolicy | None = None

    def __post_init__(self) -> None:
        if not self.protocols:
            raise UsageError("the lab must offer at least one protocol")
        unknown = set(self.protocols) - OFFERABLE
        if unknown:
            raise UsageError(f"the lab cannot offer {sorted(p.name or '' for p in unknown)}")
        if self.required is not None and self.required not in self.protocols:
            raise UsageError(
                f"required protocol {self.required.name} is not among the offered ones"
                f" ({', '.join(protocol_names(self.protocols))})"
            )
        if not 0 <= self.latency_ms <= 600_000:
            raise UsageError(f"latency must be 0 to 600000 ms, not {self.latency_ms}")

    @property
    def effective_protocols(self) -> frozenset[SecurityProtocol]:
        """The offered protocols at least as strong as ``required``."""
        if self.required is None:
            return self.protocols
        if self.required == SecurityProtocol.RDP:
            return frozenset({SecurityProtocol.RDP})
        rank = SELECTION_ORDER.index(self.required)
        allowed = set(SELECTION_ORDER[: rank + 1])
        return frozenset(p for p in self.protocols if p in allowed)

    def select(self, requested: SecurityProtocol) -> NegotiationResponse | NegotiationFailure:
        """The answer to a request for *requested* (``RDP`` when there was no RDP_NEG_REQ)."""
        offered = self.effective_protocols
        for protocol in SELECTION_ORDER:
            if protocol in offered and requested & protocol:
                return NegotiationResponse(protocol, RESPONSE_FLAGS)
        tls_offered = offered & set(SELECTION_ORDER)
        if not requested & TLS_BITS:
            if SecurityProtocol.RDP in offered:
                return NegotiationResponse(SecurityProtocol.RDP, RESPONSE_FLAGS)
            if tls_offered <= CREDSSP_PROTOCOLS:
                return NegotiationFailure(FailureCode.HYBRID_REQUIRED_BY_SERVER)
            return NegotiationFailure(FailureCode.SSL_REQUIRED_BY_SERVER)
        if not tls_offered:
            return NegotiationFailure(FailureCode.SSL_NOT_ALLOWED_BY_SERVER)
        if SecurityProtocol.SSL not in tls_offered:
            return NegotiationFailure(FailureCode.HYBRID_REQUIRED_BY_SERVER)
        return NegotiationFailure(FailureCode.SSL_REQUIRED_BY_SERVER)

    def confirm_for(self, request: ConnectionRequest) -> ConnectionConfirm:
        """The Connection Confirm this policy sends for *request*."""
        if not self.negotiation:
            return ConnectionConfirm(negotiation=None)
        requested = (
            request.negotiation.requested_protocols
            if request.negotiation is not None
            else SecurityProtocol.RDP
        )
        answer = self.select(requested)
        if (
            request.negotiation is None
            and isinstance(answer, NegotiationResponse)
            and answer.selected_protocol == SecurityProtocol.RDP
        ):
            # A client that sent no RDP_NEG_REQ gets no RDP_NEG_RSP (MS-RDPBCGR 3.3.5.3.1).
            return ConnectionConfirm(negotiation=None)
        return ConnectionConfirm(negotiation=answer)


def protocol_names(protocols: frozenset[SecurityProtocol]) -> list[str]:
    """Names in selection order, RDP last."""
    order = [*SELECTION_ORDER, SecurityProtocol.RDP]
    return [p.name or "RDP" for p in order if p in protocols]
