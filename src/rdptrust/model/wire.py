"""Wire codes that results carry (the protocol layer builds and parses them)."""

from __future__ import annotations

from enum import IntFlag


class SecurityProtocol(IntFlag):
    """requestedProtocols / selectedProtocol values (MS-RDPBCGR 2.2.1.1.1)."""

    RDP = 0x00000000
    SSL = 0x00000001
    HYBRID = 0x00000002
    RDSTLS = 0x00000004
    HYBRID_EX = 0x00000008
    RDSAAD = 0x00000010
