"""The lab's CredSSP answers: an NTLM CHALLENGE naming the lab host, then a logon refusal.

After TLS with HYBRID or HYBRID_EX the client sends a TSRequest holding an NTLM
NEGOTIATE; the lab answers with a CHALLENGE (:class:`NtlmIdentity`), and an
AUTHENTICATE that follows with errorCode STATUS_LOGON_FAILURE: the lab never accepts a
logon.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from rdptrust.errors import RemoteProtocolError, UsageError
from rdptrust.protocol.credssp import (
    MAX_TS_REQUEST_LENGTH,
    STATUS_LOGON_FAILURE,
    TS_REQUEST_VERSION,
    TSRequest,
    parse_ts_request,
)
from rdptrust.protocol.ntlm import (
    ChallengeMessage,
    TargetInfo,
    Version,
    parse_negotiate,
)

#: Sends bytes to the client (after the lab's latency).
Respond = Callable[[bytes], Awaitable[None]]


@dataclass(frozen=True)
class NtlmIdentity:
    """What the lab's NTLM CHALLENGE says about the host (MS-NLMP 2.2.1.2).

    ``dns_domain`` ``None`` means a workgroup host: the DNS domain and tree pairs are
    then left out and the DNS computer name is the computer name.
    """

    computer: str = "WIN-LAB01"
    domain: str = "LAB"
    dns_domain: str | None = "lab.test"
    version: Version = field(default_factory=lambda: Version(10, 0, 20348))

    def __post_init__(self) -> None:
        for name, value in (("computer", self.computer), ("domain", self.domain)):
            if not value or len(value) > 15 or any(c in value for c in '\\/:*?"<>|. '):
                raise UsageError(
                    f"NTLM {name} name {value!r} is not a NetBIOS name (1-15 characters,"
                    ' no spaces, dots or \\/:*?"<>|)'
                )

    @property
    def dns_computer(self) -> str:
        base = self.computer.lower()
        return f"{base}.{self.dns_domain}" if self.dns_domain else base

    def challenge(self, server_challenge: bytes, now: float | None = None) -> ChallengeMessage:
        """A CHALLENGE like the one Windows sends, with the clock in MsvAvTimestamp."""
        seconds = time.time() if now is None else now
        filetime = int(seconds * 10_000_000) + 116444736000000000
        info = TargetInfo.from_names(
            netbios_domain_name=self.domain,
            netbios_computer_name=self.computer,
            dns_domain_name=self.dns_domain,
            dns_computer_name=self.dns_computer,
            dns_tree_name=self.dns_domain,
            timestamp=filetime,
        )
        return ChallengeMessage(
            server_challenge=server_challenge,
            target_name=self.domain,
            target_info=info,
            version=self.version,
        )


async def read_ts_request(reader: asyncio.StreamReader, timeout: float) -> TSRequest | None:
    """The next TSRequest; ``None`` when the client closed first."""
    buffer = b""
    async with asyncio.timeout(timeout):
        while True:
            parsed = parse_ts_request(buffer)
            if parsed is not None:
                return parsed[0]
            chunk = await reader.read(MAX_TS_REQUEST_LENGTH - len(buffer))
            if not chunk:
                return None
            buffer += chunk


async def answer_credssp(
    reader: asyncio.StreamReader,
    respond: Respond,
    identity: NtlmIdentity,
    timeout: float,
    *,
    on_negotiate: Callable[[], None],
    on_authenticate: Callable[[], None],
) -> None:
    """Answer an NTLM NEGOTIATE with a CHALLENGE and the AUTHENTICATE with a refusal.

    *on_negotiate* is called once an NTLM NEGOTIATE was read, *on_authenticate* once the
    client's next TSRequest was; each wait is bounded by *timeout*.
    """
    first = await read_ts_request(reader, timeout)
    if first is None or not first.nego_tokens:
        return
    try:
        parse_negotiate(first.nego_tokens[0])
    except RemoteProtocolError:
        return  # Kerberos/SPNEGO or rubbish: the lab speaks NTLM only
    on_negotiate()
    version = min(max(first.version, 2), TS_REQUEST_VERSION)
    challenge = identity.challenge(os.urandom(8))
    await respond(TSRequest(version=version, nego_tokens=(challenge.to_bytes(),)).to_bytes())
    second = await read_ts_request(reader, timeout)
    if second is None:
        return
    on_authenticate()
    if version >= 3:  # errorCode exists from TSRequest version 3 on (MS-CSSP 2.2.1)
        refusal = TSRequest(version=version, error_code=STATUS_LOGON_FAILURE)
        await respond(refusal.to_bytes())
