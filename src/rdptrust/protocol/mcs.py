"""T.125 MCS domain PDUs that rdptrust needs to recognise (PER-encoded, MS-RDPBCGR 2.2.1).

Some servers (xrdp, for one) answer a Connection Request they do not accept with an
X.224 Data TPDU carrying MCS Disconnect Provider Ultimatum instead of a Connection
Confirm; recognising it lets us report a refusal rather than a protocol error.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from rdptrust.errors import RemoteProtocolError
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
