"""The lab's negotiation policy without sockets: the protocol selected, the failure sent."""

from __future__ import annotations

import pytest

from rdptrust.errors import UsageError
from rdptrust.lab.rdp.policy import RdpPolicy, parse_protocols
from rdptrust.model.wire import SecurityProtocol
from rdptrust.protocol.x224 import FailureCode, NegotiationFailure, NegotiationResponse

P = SecurityProtocol

SSL_HYBRID_EX = P.SSL | P.HYBRID | P.HYBRID_EX


POLICY_CASES = [
    ("RDP,SSL,HYBRID,HYBRID_EX", None, SSL_HYBRID_EX, P.HYBRID_EX),
    ("RDP,SSL,HYBRID,HYBRID_EX", None, P.SSL | P.HYBRID, P.HYBRID),
    ("RDP,SSL,HYBRID,HYBRID_EX", None, P.SSL, P.SSL),
    ("RDP,SSL,HYBRID,HYBRID_EX", None, P.RDP, P.RDP),
    ("RDP,SSL", None, SSL_HYBRID_EX, P.SSL),
    ("SSL,HYBRID", None, P.RDP, FailureCode.SSL_REQUIRED_BY_SERVER),
    ("RDP,SSL,HYBRID", "SSL", P.RDP, FailureCode.SSL_REQUIRED_BY_SERVER),
    ("RDP", None, P.SSL, FailureCode.SSL_NOT_ALLOWED_BY_SERVER),
    ("RDP", None, SSL_HYBRID_EX, FailureCode.SSL_NOT_ALLOWED_BY_SERVER),
    ("RDP,SSL,HYBRID", "RDP", P.SSL, FailureCode.SSL_NOT_ALLOWED_BY_SERVER),
    ("RDP,SSL,HYBRID", "HYBRID", P.SSL, FailureCode.HYBRID_REQUIRED_BY_SERVER),
    ("RDP,SSL,HYBRID", "HYBRID", P.RDP, FailureCode.HYBRID_REQUIRED_BY_SERVER),
    ("SSL,HYBRID,HYBRID_EX", "HYBRID", SSL_HYBRID_EX, P.HYBRID_EX),
    ("SSL,HYBRID,HYBRID_EX", "HYBRID_EX", P.SSL | P.HYBRID, FailureCode.HYBRID_REQUIRED_BY_SERVER),
    ("RDP,SSL", None, P.RDSTLS, P.RDP),
]


@pytest.mark.parametrize(("offered", "required", "requested", "expected"), POLICY_CASES)
def test_policy_selection(
    offered: str, required: str | None, requested: SecurityProtocol, expected: object
) -> None:
    policy = RdpPolicy(
        protocols=parse_protocols(offered),
        required=None if required is None else SecurityProtocol[required],
    )
    answer = policy.select(requested)
    if isinstance(expected, FailureCode):
        assert answer == NegotiationFailure(expected)
    else:
        assert isinstance(answer, NegotiationResponse)
        assert answer.selected_protocol == expected


def test_policy_refuses_a_requirement_it_does_not_offer() -> None:
    with pytest.raises(UsageError, match="not among the offered"):
        RdpPolicy(protocols=parse_protocols("RDP,SSL"), required=P.HYBRID)
    with pytest.raises(UsageError, match="unknown protocol"):
        parse_protocols("SSL,RDSTLS")
