"""What an RDP host says about itself in an anonymous NTLM CHALLENGE (MS-CSSP, MS-NLMP).

Over TLS with CredSSP selected, the client sends a TSRequest carrying an NTLM NEGOTIATE;
the host answers with a CHALLENGE whose TargetInfo names the machine (NetBIOS and DNS
computer and domain names, the DNS tree), whose Version field gives the Windows
version and build, and whose Timestamp is the host's clock. We stop there: no
AUTHENTICATE message follows, so no credentials, not even empty ones, are ever sent.
"""

from __future__ import annotations

import datetime as dt
import time

from rdptrust.errors import ProtocolError, RemoteProtocolError, TransportError
from rdptrust.model.outcome import ProbeFailure
from rdptrust.model.probe import NtlmInfo, OsVersion
from rdptrust.model.target import Target
from rdptrust.model.wire import SecurityProtocol
from rdptrust.net.connection import RdpConnection
from rdptrust.protocol.credssp import negotiate_request, parse_challenge_reply
from rdptrust.protocol.x224 import (
    CLIENT_REQUESTED_PROTOCOLS,
    PROBE_COOKIE,
    ConnectionRequest,
    NegotiationFailure,
    NegotiationRequest,
    NegotiationResponse,
)

#: A CHALLENGE inside its TSRequest is a few hundred bytes; more is not an RDP host.
MAX_REPLY_BYTES = 16384


def _filetime(value: int) -> dt.datetime | None:
    """FILETIME (100 ns ticks since 1601-01-01 UTC) to an aware datetime."""
    if value <= 0:
        return None
    try:
        return dt.datetime(1601, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=value // 10)
    except OverflowError:
        return None


async def get_ntlm_info(target: Target, *, timeout: float = 10.0) -> NtlmInfo:
    """Ask *target* for its NTLM CHALLENGE over one connection bounded by *timeout*."""
    start = time.monotonic()
    deadline = start + timeout

    def failed(kind: str, message: str) -> NtlmInfo:
        elapsed = round((time.monotonic() - start) * 1000.0, 3)
        return NtlmInfo(elapsed_ms=elapsed, error=ProbeFailure(kind, message))

    conn: RdpConnection | None = None
    try:
        conn = await RdpConnection.open(target, deadline)
        request = ConnectionRequest(
            cookie=PROBE_COOKIE, negotiation=NegotiationRequest(CLIENT_REQUESTED_PROTOCOLS)
        )
        confirm = await conn.negotiate(request, deadline)
        neg = getattr(confirm, "negotiation", None)
        if isinstance(neg, NegotiationFailure):
            return failed("refused", f"{target}: CredSSP refused ({neg.name})")
        if not isinstance(neg, NegotiationResponse) or not (
            neg.selected_protocol & (SecurityProtocol.HYBRID | SecurityProtocol.HYBRID_EX)
        ):
            return failed("refused", f"{target}: the host did not select CredSSP")
        await conn.start_tls(deadline, server_name=None if target.is_ip else target.host)
        sent = time.monotonic()
        await conn.send_tls(negotiate_request(), deadline)
        reply = b""
        while True:
            chunk = await conn.recv_tls(deadline, MAX_REPLY_BYTES)
            if not chunk:
                raise RemoteProtocolError(
                    f"{target}: closed the connection instead of sending an NTLM CHALLENGE"
                )
            reply += chunk
            if len(reply) > MAX_REPLY_BYTES:
                raise RemoteProtocolError(
                    f"{target}: sent over {MAX_REPLY_BYTES} bytes instead of a CHALLENGE"
                )
            try:
                challenge = parse_challenge_reply(reply)
            except RemoteProtocolError as exc:
                raise RemoteProtocolError(f"{target}: bad NTLM CHALLENGE: {exc}") from exc
            if challenge is not None:
                answered = time.monotonic()
                break
    except (TransportError, ProtocolError) as exc:
        return failed(exc.kind, str(exc))
    finally:
        if conn is not None:
            await conn.close()
    return NtlmInfo(
        target_name=challenge.target_name,
        netbios_computer_name=challenge.netbios_computer_name,
        netbios_domain_name=challenge.netbios_domain_name,
        dns_computer_name=challenge.dns_computer_name,
        dns_domain_name=challenge.dns_domain_name,
        dns_tree_name=challenge.dns_tree_name,
        os_version=None
        if challenge.version is None
        else OsVersion(challenge.version.major, challenge.version.minor, challenge.version.build),
        server_time=None if challenge.timestamp is None else _filetime(challenge.timestamp),
        elapsed_ms=round((time.monotonic() - start) * 1000.0, 3),
        challenge_ms=round((answered - sent) * 1000.0, 3),
    )
