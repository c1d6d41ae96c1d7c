"""The lab's RDP endpoint: X.224 negotiation by policy, TLS, an NTLM CHALLENGE, hostile modes.

One :class:`RdpEndpoint` listens on one address and port. For each connection it reads
the X.224 Connection Request and answers as a Windows host with the configured
:class:`RdpPolicy` would:

- the protocol is chosen like Windows chooses it, HYBRID_EX > HYBRID > SSL, among those
  the client asked for and the lab offers (``required`` narrows what is offered);
  a client asking for nothing (``requestedProtocols`` 0) gets Standard RDP Security
  when the lab offers it;
- when nothing fits, RDP_NEG_FAILURE says why: SSL_REQUIRED_BY_SERVER (the client
  asked for Standard RDP Security only, the lab needs TLS), SSL_NOT_ALLOWED_BY_SERVER
  (the client asked for TLS or CredSSP, the lab offers Standard RDP Security only),
  HYBRID_REQUIRED_BY_SERVER (the lab needs CredSSP and the client did not ask for it);
- ``negotiation=False`` answers every request with a Connection Confirm without
  negotiation data, as hosts older than RDP 5.2 did.

After an RDP_NEG_RSP selecting SSL, HYBRID or HYBRID_EX the endpoint runs TLS on the
same stream with the current :class:`ssl.SSLContext` (swappable at run time). With
HYBRID or HYBRID_EX it then reads a CredSSP TSRequest holding an NTLM NEGOTIATE and
answers with an NTLM CHALLENGE naming the lab's computer and domain
(:class:`NtlmIdentity`); an AUTHENTICATE that follows is answered with errorCode
STATUS_LOGON_FAILURE and the connection is closed: the lab never accepts a logon.
Then comes MCS Connect-Initial (in the clear for Standard RDP Security, inside TLS for
SSL): with a :class:`~rdptrust.lab.standard_security.StandardSecurityPolicy` the lab
answers it with a Connect-Response and closes at the client's next PDU; without one it
closes instead (right after the Confirm for Standard RDP Security).

Hostile modes (:class:`HostileMode`) replace the answer, for robustness tests:

================  ===========================================================================
mode              on the wire, after the Connection Request arrived
================  ===========================================================================
garbage           bytes that are no TPKT packet, then close
length-too-large  a Confirm whose TPKT length counts 8 bytes more than the PDU, and 8 zero
                  bytes to fill it: the X.224 length indicator no longer matches
length-too-small  a Confirm whose TPKT length is 8 bytes short (the rest follows anyway)
truncated         the first 11 bytes of a valid Confirm, then close
reset             nothing; the connection is aborted (TCP RST, ``ECONNRESET``)
slow-drip         the valid Confirm one byte per second, then the normal exchange
tls-alert         the valid Confirm; then, for the ClientHello, a fatal TLS
                  handshake_failure alert record instead of a ServerHello, then close
endless           :data:`ENDLESS_CHUNK` bytes at most :data:`ENDLESS_RATE` bytes per second,
                  forever, until the client goes
silence           nothing at all (no Request is even waited for); the connection is held
================  ===========================================================================

Every wait for the client is bounded by ``request_timeout_s``; every read is bounded in
size; :meth:`RdpEndpoint.stop` closes every connection and leaves no task behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import ssl
import struct
import time
import warnings
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from rdptrust.errors import ProtocolError, RemoteProtocolError, UsageError
from rdptrust.lab.standard_security import StandardSecurityPolicy, connect_response_for
from rdptrust.model.target import Target
from rdptrust.model.wire import SecurityProtocol
from rdptrust.net.service import AsyncService, close_server
from rdptrust.protocol.credssp import (
    MAX_TS_REQUEST_LENGTH,
    STATUS_LOGON_FAILURE,
    TS_REQUEST_VERSION,
    TSRequest,
    parse_ts_request,
)
from rdptrust.protocol.gcc import parse_client_connect_initial
from rdptrust.protocol.ntlm import (
    ChallengeMessage,
    TargetInfo,
    Version,
    parse_negotiate,
)
from rdptrust.protocol.tpkt import TPKT_HEADER_LENGTH, packet_length
from rdptrust.protocol.x224 import (
    ConnectionConfirm,
    ConnectionRequest,
    FailureCode,
    NegotiationFailure,
    NegotiationResponse,
    NegotiationResponseFlags,
    parse_connection_request,
)

#: Protocols the lab can offer, strongest first: the order Windows selects in.
SELECTION_ORDER: tuple[SecurityProtocol, ...] = (
    SecurityProtocol.HYBRID_EX,
    SecurityProtocol.HYBRID,
    SecurityProtocol.SSL,
)
OFFERABLE = frozenset({SecurityProtocol.RDP, *SELECTION_ORDER})
DEFAULT_PROTOCOLS = OFFERABLE
_TLS_BITS = SecurityProtocol.SSL | SecurityProtocol.HYBRID | SecurityProtocol.HYBRID_EX
_CREDSSP = frozenset({SecurityProtocol.HYBRID, SecurityProtocol.HYBRID_EX})

#: Flags of the lab's RDP_NEG_RSP, as Windows Server 2022 sends them.
RESPONSE_FLAGS = (
    NegotiationResponseFlags.EXTENDED_CLIENT_DATA_SUPPORTED
    | NegotiationResponseFlags.DYNVC_GFX_PROTOCOL_SUPPORTED
    | NegotiationResponseFlags.NEGRSP_FLAG_RESERVED
    | NegotiationResponseFlags.RESTRICTED_ADMIN_MODE_SUPPORTED
    | NegotiationResponseFlags.REDIRECTED_AUTHENTICATION_MODE_SUPPORTED
)

TLS_VERSIONS: dict[str, ssl.TLSVersion] = {
    "TLSv1.0": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}

GARBAGE = b"\x17\xfe rdptrust lab: this is not a TPKT packet \x00\xff" * 4
#: A TLS record: alert, TLS 1.2, length 2, fatal (2), handshake_failure (40).
TLS_ALERT = bytes.fromhex("15030300020228")
ENDLESS_CHUNK = 4096
#: Upper bound of the ``endless`` stream, bytes per second.
ENDLESS_RATE = 256 * 1024
#: Largest first flight (ClientHello) read in ``tls-alert`` mode before answering.
_MAX_CLIENT_HELLO = 16 * 1024
_DISCARD_CHUNK = 4096
_TRUNCATED_AT = 11
_LENGTH_LIE = 8


class HostileMode(StrEnum):
    """How a hostile endpoint misbehaves (see the module docstring)."""

    GARBAGE = "garbage"
    LENGTH_TOO_LARGE = "length-too-large"
    LENGTH_TOO_SMALL = "length-too-small"
    TRUNCATED = "truncated"
    RESET = "reset"
    SLOW_DRIP = "slow-drip"
    TLS_ALERT = "tls-alert"
    ENDLESS = "endless"
    SILENCE = "silence"


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
        if not requested & _TLS_BITS:
            if SecurityProtocol.RDP in offered:
                return NegotiationResponse(SecurityProtocol.RDP, RESPONSE_FLAGS)
            if tls_offered <= _CREDSSP:
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


def server_context(
    chain_file: str | Path,
    key_file: str | Path,
    *,
    min_version: str = "TLSv1.2",
    max_version: str = "TLSv1.3",
) -> ssl.SSLContext:
    """A server-side TLS context serving the chain in *chain_file*.

    TLS 1.0 and 1.1, SHA-1 signatures and 1024-bit keys need OpenSSL security level 0;
    it is set only when the versions or the certificate need it.
    """
    for name in (min_version, max_version):
        if name not in TLS_VERSIONS:
            raise UsageError(f"unknown TLS version {name!r}; use {', '.join(TLS_VERSIONS)}")
    if TLS_VERSIONS[min_version] > TLS_VERSIONS[max_version]:
        raise UsageError(f"TLS minimum {min_version} is above the maximum {max_version}")
    legacy = TLS_VERSIONS[min_version] < ssl.TLSVersion.TLSv1_2
    for seclevel_zero in (legacy, True):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if seclevel_zero:
            ctx.set_ciphers("ALL:@SECLEVEL=0")
        with warnings.catch_warnings():
            # TLS 1.0 and 1.1 are deprecated in ssl; offering them on demand is the point.
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = TLS_VERSIONS[min_version]
            ctx.maximum_version = TLS_VERSIONS[max_version]
        try:
            ctx.load_cert_chain(os.fspath(chain_file), os.fspath(key_file))
        except ssl.SSLError as exc:
            if not seclevel_zero:
                continue  # a SHA-1 signature or a small key: retry at level 0
            raise UsageError(f"cannot serve {chain_file} with {key_file}: {exc}") from exc
        except OSError as exc:
            raise UsageError(
                f"cannot read {chain_file} or {key_file}: {exc.strerror or exc}"
            ) from exc
        return ctx
    raise UsageError(f"OpenSSL refuses the certificate in {chain_file}")  # pragma: no cover


@dataclass(frozen=True)
class ConnectionRecord:
    """What one client connection sent; ``request`` is ``None`` when none was parsed."""

    peer: str
    request: ConnectionRequest | None
    confirm: ConnectionConfirm | None
    ntlm_negotiate: bool = False
    authenticate: bool = False


class RdpEndpoint(AsyncService):
    """One RDP endpoint on *host*:*port* (0 = a free port). An async context manager.

    ``ssl_context`` is used for every connection that selects TLS; assign a new one to
    change the certificate for new connections (the six-monthly recreation).
    """

    def __init__(
        self,
        policy: RdpPolicy,
        ssl_context: ssl.SSLContext | None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        request_timeout_s: float = 30.0,
        max_connections: int = 256,
    ) -> None:
        if not 0 <= port <= 65535:
            raise UsageError(f"port must be 0 to 65535, not {port}")
        if ssl_context is None and policy.protocols & set(SELECTION_ORDER):
            raise UsageError("a TLS certificate is needed to offer SSL, HYBRID or HYBRID_EX")
        self.policy = policy
        self.ssl_context = ssl_context
        self.host = host
        self.port = port
        self.request_timeout_s = request_timeout_s
        self.max_connections = max_connections
        #: One record per connection whose Connection Request arrived, in order.
        self.connections: list[ConnectionRecord] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    @property
    def target(self) -> Target:
        return Target(self.host, self.port)

    async def start(self) -> None:
        if self._server is not None:
            return
        self._closing = False
        try:
            self._server = await asyncio.start_server(
                self._handle, self.host, self.port, backlog=self.max_connections
            )
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {self.host} port {self.port}: {exc.strerror or exc}"
            ) from exc
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and end every connection."""
        server, self._server = self._server, None
        if server is None:
            return
        self._closing = True
        await close_server(server, self._tasks)
        await asyncio.sleep(0)

    # -- one connection -------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if self._closing or task is None or len(self._tasks) >= self.max_connections:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return
        self._tasks.add(task)
        abort = False
        try:
            abort = await self._serve(reader, writer)
        except (
            OSError,
            TimeoutError,
            ssl.SSLError,
            ProtocolError,
            asyncio.IncompleteReadError,
        ):
            pass  # the client went away, was too slow, or sent bytes that break the spec
        except asyncio.CancelledError:
            # stop() cancels held connections. End normally: on Python 3.11 the stream
            # machinery logs a handler task that ends cancelled.
            pass
        finally:
            self._tasks.discard(task)
            if abort:
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    # SO_LINGER 0: close() sends a TCP reset instead of a FIN.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
            else:
                writer.close()
            with contextlib.suppress(OSError, ssl.SSLError, TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _respond(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        if self.policy.latency_ms:
            await asyncio.sleep(self.policy.latency_ms / 1000)
        writer.write(data)
        await writer.drain()

    async def _read_request(self, reader: asyncio.StreamReader) -> ConnectionRequest:
        async with asyncio.timeout(self.request_timeout_s):
            header = await reader.readexactly(TPKT_HEADER_LENGTH)
            length = packet_length(header)
            assert length is not None
            body = await reader.readexactly(length - TPKT_HEADER_LENGTH)
        parsed = parse_connection_request(header + body)
        assert parsed is not None
        return parsed[0]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one connection; return True when it must end with a TCP reset."""
        peer_info = writer.get_extra_info("peername")
        peer = f"{peer_info[0]}:{peer_info[1]}" if peer_info else "?"
        hostile = self.policy.hostile
        if hostile is HostileMode.SILENCE:
            await _discard_until_closed(reader)
            return False
        try:
            request = await self._read_request(reader)
        except (asyncio.IncompleteReadError, RemoteProtocolError):
            self.connections.append(ConnectionRecord(peer, None, None))
            return False
        if hostile is HostileMode.RESET:
            self.connections.append(ConnectionRecord(peer, request, None))
            return True
        confirm = self.policy.confirm_for(request)
        record = ConnectionRecord(peer, request, confirm)
        self.connections.append(record)
        pdu = confirm.to_bytes()
        if hostile is HostileMode.GARBAGE:
            await self._respond(writer, GARBAGE)
            return False
        if hostile is HostileMode.LENGTH_TOO_LARGE:
            lied = struct.pack(">BBH", 3, 0, len(pdu) + _LENGTH_LIE) + pdu[4:]
            await self._respond(writer, lied + bytes(_LENGTH_LIE))
            await _discard_until_closed(reader, self.request_timeout_s)
            return False
        if hostile is HostileMode.LENGTH_TOO_SMALL:
            lied = struct.pack(">BBH", 3, 0, len(pdu) - _LENGTH_LIE) + pdu[4:]
            await self._respond(writer, lied)
            await _discard_until_closed(reader, self.request_timeout_s)
            return False
        if hostile is HostileMode.TRUNCATED:
            await self._respond(writer, pdu[:_TRUNCATED_AT])
            return False
        if hostile is HostileMode.ENDLESS:
            await self._endless(reader, writer)
            return False
        if hostile is HostileMode.SLOW_DRIP:
            if self.policy.latency_ms:
                await asyncio.sleep(self.policy.latency_ms / 1000)
            for index in range(len(pdu)):
                if index:
                    await asyncio.sleep(1.0)
                writer.write(pdu[index : index + 1])
                await writer.drain()
        else:
            await self._respond(writer, pdu)
        answer = confirm.negotiation
        if isinstance(answer, NegotiationFailure):
            return False  # the host closes after RDP_NEG_FAILURE
        if answer is None or not answer.selected_protocol & _TLS_BITS:
            await self._mcs(reader, writer, SecurityProtocol.RDP)
            return False
        if hostile is HostileMode.TLS_ALERT:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.request_timeout_s):
                    await reader.read(_MAX_CLIENT_HELLO)
            await self._respond(writer, TLS_ALERT)
            return False
        await self._tls(reader, writer)
        if answer.selected_protocol in _CREDSSP:
            await self._credssp(reader, writer, record)
        else:
            await self._mcs(reader, writer, answer.selected_protocol)
        return False

    async def _mcs(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        selected: SecurityProtocol,
    ) -> None:
        """Answer MCS Connect-Initial by the Standard RDP Security policy, then stop.

        Without a policy the lab closes right away (Standard RDP Security) or when the
        client's first PDU inside TLS arrives; with one it sends the Connect-Response and
        closes at the client's next PDU (Erect Domain): the lab goes no further.
        """
        policy = self.policy.standard_security
        if policy is None:
            if selected != SecurityProtocol.RDP:
                await _wait_for_data(reader, self.request_timeout_s)
            return
        async with asyncio.timeout(self.request_timeout_s):
            header = await reader.readexactly(TPKT_HEADER_LENGTH)
            length = packet_length(header)
            assert length is not None
            body = await reader.readexactly(length - TPKT_HEADER_LENGTH)
        parsed = parse_client_connect_initial(header + body)
        if parsed is None:  # pragma: no cover - a whole TPKT packet was read
            return
        response = connect_response_for(parsed[0], policy, int(selected))
        if response is None:
            return  # no method fits: Windows drops the connection
        await self._respond(writer, response.to_bytes())
        await _wait_for_data(reader, self.request_timeout_s)

    async def _tls(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        context = self.ssl_context
        assert context is not None
        async with asyncio.timeout(self.request_timeout_s):
            await writer.start_tls(context)

    async def _read_ts_request(self, reader: asyncio.StreamReader) -> TSRequest | None:
        buffer = b""
        async with asyncio.timeout(self.request_timeout_s):
            while True:
                parsed = parse_ts_request(buffer)
                if parsed is not None:
                    return parsed[0]
                chunk = await reader.read(MAX_TS_REQUEST_LENGTH - len(buffer))
                if not chunk:
                    return None
                buffer += chunk

    async def _credssp(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        record: ConnectionRecord,
    ) -> None:
        first = await self._read_ts_request(reader)
        if first is None or not first.nego_tokens:
            return
        try:
            parse_negotiate(first.nego_tokens[0])
        except RemoteProtocolError:
            return  # Kerberos/SPNEGO or rubbish: the lab speaks NTLM only
        record = self._update(record, ntlm_negotiate=True)
        version = min(max(first.version, 2), TS_REQUEST_VERSION)
        challenge = self.policy.ntlm.challenge(os.urandom(8))
        await self._respond(
            writer, TSRequest(version=version, nego_tokens=(challenge.to_bytes(),)).to_bytes()
        )
        second = await self._read_ts_request(reader)
        if second is None:
            return
        record = self._update(record, authenticate=True)
        if version >= 3:  # errorCode exists from TSRequest version 3 on (MS-CSSP 2.2.1)
            refusal = TSRequest(version=version, error_code=STATUS_LOGON_FAILURE)
            await self._respond(writer, refusal.to_bytes())

    def _update(
        self, record: ConnectionRecord, *, ntlm_negotiate: bool = False, authenticate: bool = False
    ) -> ConnectionRecord:
        """Replace *record* in :attr:`connections` by a copy with the flags set; return it."""
        updated = dataclasses.replace(
            record,
            ntlm_negotiate=record.ntlm_negotiate or ntlm_negotiate,
            authenticate=record.authenticate or authenticate,
        )
        for index in range(len(self.connections) - 1, -1, -1):
            if self.connections[index] is record:
                self.connections[index] = updated
                break
        return updated

    async def _endless(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        chunk = (b"\x03\x00\xff\xff" + b"rdptrust lab endless " * 256)[:ENDLESS_CHUNK]
        pause = ENDLESS_CHUNK / ENDLESS_RATE
        watcher = asyncio.ensure_future(_discard_until_closed(reader))
        try:
            if self.policy.latency_ms:
                await asyncio.sleep(self.policy.latency_ms / 1000)
            while not watcher.done():
                writer.write(chunk)
                await writer.drain()
                await asyncio.sleep(pause)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await watcher


async def _wait_for_data(reader: asyncio.StreamReader, timeout: float) -> None:
    """Wait until the client sends something, closes, or *timeout* passes."""
    with contextlib.suppress(TimeoutError, OSError):
        async with asyncio.timeout(timeout):
            await reader.read(_DISCARD_CHUNK)


async def _discard_until_closed(reader: asyncio.StreamReader, timeout: float | None = None) -> None:
    """Read and drop what the client sends until it closes (or *timeout* passes)."""
    with contextlib.suppress(TimeoutError, OSError):
        async with asyncio.timeout(timeout):
            while await reader.read(_DISCARD_CHUNK):
                pass
