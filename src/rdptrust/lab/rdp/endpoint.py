"""The lab's RDP endpoint: one server answering as the :class:`RdpPolicy` says.

What it does on the wire is described in :mod:`rdptrust.lab.rdp`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import os
import socket
import ssl
import struct
import warnings
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from rdptrust.errors import ProtocolError, RemoteProtocolError, UsageError
from rdptrust.lab.rdp.credssp import answer_credssp
from rdptrust.lab.rdp.hostile import (
    HostileMode,
    discard_until_closed,
    replace_confirm,
    slow_drip,
    tls_alert,
    wait_for_data,
)
from rdptrust.lab.rdp.policy import CREDSSP_PROTOCOLS, SELECTION_ORDER, TLS_BITS, RdpPolicy
from rdptrust.lab.rdp.tls_modes import TlsServer, TlsSession
from rdptrust.lab.standard_security import connect_response_for
from rdptrust.model.target import Target
from rdptrust.model.wire import SecurityProtocol
from rdptrust.net.service import AsyncService, close_server
from rdptrust.protocol.gcc import parse_client_connect_initial
from rdptrust.protocol.tpkt import TPKT_HEADER_LENGTH, packet_length
from rdptrust.protocol.x224 import (
    ConnectionConfirm,
    ConnectionRequest,
    NegotiationFailure,
    parse_connection_request,
)

TLS_VERSIONS: dict[str, ssl.TLSVersion] = {
    "TLSv1.0": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}


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


#: Connection records an endpoint keeps, the most recent: what a test or the demo reads
#: of its own connections, bounded for a lab that serves a fleet's scans for days (a
#: record is about half a KiB; a million of them were 540 MiB).
CONNECTIONS_KEPT = 1024


@dataclass
class ConnectionCounts:
    """Every connection an endpoint recorded, counted; exact however many were dropped
    from :attr:`RdpEndpoint.connections`."""

    connections: int = 0
    """Connections whose Connection Request arrived (each has had a record)."""
    unparsed: int = 0
    """Of those, the ones whose request could not be read (``request`` None)."""
    ntlm_negotiate: int = 0
    """Connections that sent an NTLM NEGOTIATE inside CredSSP."""
    authenticate: int = 0
    """Connections that sent an NTLM AUTHENTICATE."""


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
    change the certificate for new connections (the six-monthly recreation). A
    ``tls_server`` (a :class:`~rdptrust.lab.rdp.tls_modes.TlsMode` other than
    ``standard``: stapling, the pre-RFC 5746 host) runs TLS instead when given.
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
        tls_server: TlsServer | None = None,
        connections_kept: int = CONNECTIONS_KEPT,
    ) -> None:
        if not 0 <= port <= 65535:
            raise UsageError(f"port must be 0 to 65535, not {port}")
        self.tls_server = tls_server
        if ssl_context is None and tls_server is None and policy.protocols & set(SELECTION_ORDER):
            raise UsageError("a TLS certificate is needed to offer SSL, HYBRID or HYBRID_EX")
        self.policy = policy
        self.ssl_context = ssl_context
        self.host = host
        self.port = port
        self.request_timeout_s = request_timeout_s
        self.max_connections = max_connections
        #: One record per connection whose Connection Request arrived, in order: the
        #: last *connections_kept*; :attr:`counts` counts them all.
        self.connections: deque[ConnectionRecord] = deque(maxlen=connections_kept)
        self.counts = ConnectionCounts()
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
            await discard_until_closed(reader)
            return False
        try:
            request = await self._read_request(reader)
        except (asyncio.IncompleteReadError, RemoteProtocolError):
            self._record(ConnectionRecord(peer, None, None))
            return False
        if hostile is HostileMode.RESET:
            self._record(ConnectionRecord(peer, request, None))
            return True
        confirm = self.policy.confirm_for(request)
        record = ConnectionRecord(peer, request, confirm)
        self._record(record)
        pdu = confirm.to_bytes()
        latency_s = self.policy.latency_ms / 1000
        respond = functools.partial(self._respond, writer)
        if hostile is not None and await replace_confirm(
            hostile,
            pdu,
            reader,
            writer,
            respond,
            latency_s=latency_s,
            timeout=self.request_timeout_s,
        ):
            return False
        if hostile is HostileMode.SLOW_DRIP:
            await slow_drip(writer, pdu, latency_s)
        else:
            await self._respond(writer, pdu)
        answer = confirm.negotiation
        if isinstance(answer, NegotiationFailure):
            return False  # the host closes after RDP_NEG_FAILURE
        if answer is None or not answer.selected_protocol & TLS_BITS:
            await self._mcs(reader, respond, SecurityProtocol.RDP)
            return False
        if hostile is HostileMode.TLS_ALERT:
            await tls_alert(reader, respond, self.request_timeout_s)
            return False
        session = await self._tls(reader, writer)
        inner, send = reader, respond
        if session is not None:
            inner, send = session.reader, functools.partial(self._respond_in, session)
        try:
            if answer.selected_protocol in CREDSSP_PROTOCOLS:
                await self._credssp(inner, send, record)
            else:
                await self._mcs(inner, send, answer.selected_protocol)
        finally:
            if session is not None:
                await session.close()
        return False

    async def _respond_in(self, session: TlsSession, data: bytes) -> None:
        if self.policy.latency_ms:
            await asyncio.sleep(self.policy.latency_ms / 1000)
        await session.send(data)

    async def _mcs(
        self,
        reader: asyncio.StreamReader,
        respond: Callable[[bytes], Awaitable[None]],
        selected: SecurityProtocol,
    ) -> None:
        """Answer MCS Connect-Initial by the Standard RDP Security policy, then stop.

        Without a policy the lab closes when the client's first PDU arrives (its
        Connect-Initial, inside TLS or not): a close with that PDU unread would be a
        reset, or an orderly close when the close happened to come first, by timing
        alone. With one it sends the Connect-Response and closes at the client's next PDU
        (Erect Domain): the lab goes no further.
        """
        policy = self.policy.standard_security
        if policy is None:
            await wait_for_data(reader, self.request_timeout_s)
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
        await respond(response.to_bytes())
        await wait_for_data(reader, self.request_timeout_s)

    async def _tls(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> TlsSession | None:
        if self.tls_server is not None:
            return await self.tls_server.accept(reader, writer, self.request_timeout_s)
        context = self.ssl_context
        assert context is not None
        async with asyncio.timeout(self.request_timeout_s):
            await writer.start_tls(context)
        return None

    async def _credssp(
        self,
        reader: asyncio.StreamReader,
        respond: Callable[[bytes], Awaitable[None]],
        record: ConnectionRecord,
    ) -> None:
        current = record

        def mark(*, ntlm_negotiate: bool = False, authenticate: bool = False) -> None:
            nonlocal current
            current = self._update(
                current, ntlm_negotiate=ntlm_negotiate, authenticate=authenticate
            )

        await answer_credssp(
            reader,
            respond,
            self.policy.ntlm,
            self.request_timeout_s,
            on_negotiate=lambda: mark(ntlm_negotiate=True),
            on_authenticate=lambda: mark(authenticate=True),
        )

    def _record(self, record: ConnectionRecord) -> None:
        self.connections.append(record)
        self.counts.connections += 1
        if record.request is None:
            self.counts.unparsed += 1

    def _update(
        self, record: ConnectionRecord, *, ntlm_negotiate: bool = False, authenticate: bool = False
    ) -> ConnectionRecord:
        """Replace *record* in :attr:`connections` by a copy with the flags set (counted,
        also when the record is no longer kept); return it."""
        updated = dataclasses.replace(
            record,
            ntlm_negotiate=record.ntlm_negotiate or ntlm_negotiate,
            authenticate=record.authenticate or authenticate,
        )
        if updated.ntlm_negotiate and not record.ntlm_negotiate:
            self.counts.ntlm_negotiate += 1
        if updated.authenticate and not record.authenticate:
            self.counts.authenticate += 1
        for index in range(len(self.connections) - 1, -1, -1):
            if self.connections[index] is record:
                self.connections[index] = updated
                break
        return updated
