"""An RDP client connection: TCP, X.224 negotiation, then TLS on the same stream.

TLS runs through pyOpenSSL over memory BIOs so that we see the whole certificate
chain as the server sent it, can offer TLS 1.0 to old hosts, and never verify here:
judging the chain is the ``pki`` layer's work.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import time
from typing import Any

from OpenSSL import SSL, crypto

from rdptrust.errors import (
    LOCAL_RESOURCE_ERRNOS,
    ConnectError,
    LocalResourceError,
    RemoteProtocolError,
    TlsError,
    TransportError,
    TransportTimeout,
    local_limit_text,
)
from rdptrust.model.probe import TlsSessionInfo
from rdptrust.model.target import Target
from rdptrust.net.resolve import open_transport
from rdptrust.net.wire import Wire
from rdptrust.protocol.mcs import DisconnectProviderUltimatum, parse_disconnect_provider_ultimatum
from rdptrust.protocol.tls import ServerFlightReader
from rdptrust.protocol.tpkt import TPKT_HEADER_LENGTH, packet_length
from rdptrust.protocol.x224 import (
    X224_DATA,
    ConnectionConfirm,
    ConnectionRequest,
    parse_connection_confirm,
    parse_data_tpdu,
)

#: Bytes a server may send during the TLS handshake before we call it hostile.
MAX_HANDSHAKE_BYTES = 1 << 20
_READ_CHUNK = 16384

TLS_VERSIONS: dict[str, int] = {
    "TLSv1.0": SSL.TLS1_VERSION,
    "TLSv1.1": SSL.TLS1_1_VERSION,
    "TLSv1.2": SSL.TLS1_2_VERSION,
    "TLSv1.3": SSL.TLS1_3_VERSION,
}
_PYOPENSSL_VERSION_NAMES = {"TLSv1": "TLSv1.0"}
#: The key-exchange groups offered, as SChannel (mstsc) offers them: X25519 (with its key
#: share), then NIST P-256 and P-384. The probe's ClientHello stays one small segment and
#: the handshake costs a third less CPU than with OpenSSL's default hybrid key share.
CLIENT_GROUPS = b"X25519:P-256:P-384"


#: The cipher suites offered, SChannel's TLS 1.2 order first (Windows 10/11, then the
#: RSA key-exchange CBC suites Windows 2008 R2 and older hosts choose; 3DES and RC4 where
#: this OpenSSL still has them), then everything else OpenSSL knows at security level 0:
#: we only look at what the server chooses.
CLIENT_CIPHERS = (
    b"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:"
    b"ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:"
    b"DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256:"
    b"ECDHE-ECDSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA256:"
    b"ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES128-SHA256:"
    b"ECDHE-ECDSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES256-SHA:ECDHE-RSA-AES128-SHA:"
    b"AES256-GCM-SHA384:AES128-GCM-SHA256:AES256-SHA256:AES128-SHA256:AES256-SHA:AES128-SHA:"
    b"DES-CBC3-SHA:RC4-SHA:RC4-MD5:ALL:@SECLEVEL=0"
)
#: The largest stapled OCSP response kept; a real one is a few kilobytes.
MAX_STAPLED_OCSP = 1 << 16
_TLS_RECORD_VERSIONS = {0x0301: "TLSv1.0", 0x0302: "TLSv1.1", 0x0303: "TLSv1.2"}


@functools.lru_cache(maxsize=16)
def _client_context(min_version: str, max_version: str) -> SSL.Context:
    """One context per version range, shared by all connections (they do not change it).

    Hosts that predate RFC 5746 (Windows Server 2008 R2 before MS10-049) send no
    renegotiation_info; OpenSSL refuses them unless told otherwise. The client never
    renegotiates: a server HelloRequest gets a no_renegotiation alert.
    """
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.set_verify(SSL.VERIFY_NONE)
    ctx.set_min_proto_version(TLS_VERSIONS[min_version])
    ctx.set_max_proto_version(TLS_VERSIONS[max_version])
    ctx.set_options(SSL.OP_LEGACY_SERVER_CONNECT | SSL.OP_NO_RENEGOTIATION)
    ctx.set_cipher_list(CLIENT_CIPHERS)
    _offer_groups(ctx, CLIENT_GROUPS)
    ctx.set_ocsp_client_callback(_keep_stapled_ocsp)
    return ctx


class _Staple:
    """Where the OCSP callback leaves a connection's stapled answer."""

    def __init__(self) -> None:
        self.response: bytes | None = None


def _keep_stapled_ocsp(conn: SSL.Connection, data: bytes, _: object) -> bool:
    holder = conn.get_app_data()
    if isinstance(holder, _Staple) and data and len(data) <= MAX_STAPLED_OCSP:
        holder.response = bytes(data)
    return True  # never judged here: the pki layer reads the answer


def _offer_groups(ctx: SSL.Context, groups: bytes) -> None:
    """Offer the (EC)DHE groups *groups*, as far as this pyOpenSSL lets us say so.

    pyOpenSSL has no public call for it; without one the OpenSSL defaults stay (they add
    a post-quantum hybrid key share, which Windows does not send).
    """
    try:
        from OpenSSL._util import lib

        done = lib.SSL_CTX_set1_curves_list(ctx._context, groups)
    except (ImportError, AttributeError):  # pragma: no cover - another pyOpenSSL
        return
    if done != 1:  # pragma: no cover - every OpenSSL we run on knows these groups
        raise RuntimeError(f"OpenSSL refused the groups {groups!r}")


class RdpConnection:
    """One TCP connection to an RDP host, driven step by step.

    Every step takes its own deadline (an absolute ``time.monotonic()`` value), so a
    caller can spend one budget across connect, negotiation and TLS; the connection keeps
    one timer for it (:class:`~rdptrust.net.wire.Wire`).
    """

    def __init__(self, target: Target, transport: asyncio.Transport, wire: Wire) -> None:
        self.target = target
        self._transport = transport
        self._wire = wire
        self._tls: SSL.Connection | None = None
        peer = transport.get_extra_info("peername")
        self.peer_address: str | None = peer[0] if peer else None

    @classmethod
    async def open(cls, target: Target, deadline: float) -> RdpConnection:
        wire = Wire()
        try:
            async with asyncio.timeout(_remaining(deadline)):
                transport = await open_transport(target.host, target.port, lambda: wire)
        except TimeoutError:
            raise TransportTimeout(
                f"{target}: TCP connect timed out", target.host, target.port
            ) from None
        except socket.gaierror as exc:
            raise ConnectError(
                f"{target}: cannot resolve host name ({exc.strerror})", target.host, target.port
            ) from exc
        except ConnectionRefusedError as exc:
            raise ConnectError(
                f"{target}: connection refused (nothing listens on port {target.port})",
                target.host,
                target.port,
            ) from exc
        except OSError as exc:
            if exc.errno in LOCAL_RESOURCE_ERRNOS:
                raise LocalResourceError(
                    f"{target}: not tried: this machine {local_limit_text(exc)}"
                ) from exc
            raise ConnectError(
                f"{target}: cannot connect ({exc.strerror or exc})", target.host, target.port
            ) from exc
        return cls(target, transport, wire)

    def _error(self, cls: type[TransportError], what: str) -> TransportError:
        return cls(f"{self.target}: {what}", self.target.host, self.target.port)

    async def _read(self, deadline: float, what: str) -> bytes:
        try:
            data = await self._wire.read(deadline)
        except TimeoutError:
            raise self._error(TransportTimeout, f"no answer to {what} in time") from None
        except (ConnectionResetError, BrokenPipeError):
            raise self._error(ConnectError, f"connection reset during {what}") from None
        except OSError as exc:
            raise self._error(ConnectError, f"{what} failed: {exc}") from exc
        return data

    async def _write(self, data: bytes, deadline: float, what: str) -> None:
        try:
            await self._wire.write(data, deadline)
        except TimeoutError:
            raise self._error(TransportTimeout, f"could not send {what} in time") from None
        except OSError as exc:
            raise self._error(ConnectError, f"connection lost sending {what}: {exc}") from exc

    async def negotiate(
        self, request: ConnectionRequest, deadline: float
    ) -> ConnectionConfirm | DisconnectProviderUltimatum:
        """Send the Connection Request and read the Connection Confirm.

        A server that refuses the request by disconnecting at the MCS level (xrdp does
        this for protocols it does not know) yields a :class:`DisconnectProviderUltimatum`.
        """
        await self._write(request.to_bytes(), deadline, "the X.224 Connection Request")
        buffer = b""
        while True:
            data = await self._read(deadline, "the X.224 Connection Request")
            if not data:
                if not buffer:
                    raise self._error(
                        ConnectError,
                        "closed the connection without answering the X.224 request"
                        " (not an RDP host, or it refused us)",
                    )
                raise self._error(
                    ConnectError,
                    f"closed the connection after {len(buffer)} bytes of an X.224 Connection"
                    " Confirm",
                )
            buffer += data
            try:
                if len(buffer) > 5 and buffer[5] == X224_DATA:
                    data_tpdu = parse_data_tpdu(buffer)
                    if data_tpdu is None:
                        continue
                    return parse_disconnect_provider_ultimatum(data_tpdu[0])
                parsed = parse_connection_confirm(buffer)
            except RemoteProtocolError as exc:
                raise RemoteProtocolError(
                    f"{self.target}: not an RDP Connection Confirm: {exc}"
                ) from exc
            if parsed is not None:
                confirm, consumed = parsed
                if consumed != len(buffer):
                    raise RemoteProtocolError(
                        f"{self.target}: {len(buffer) - consumed} unexpected bytes after the"
                        " Connection Confirm",
                        consumed,
                    )
                return confirm

    async def send_raw(self, data: bytes, deadline: float, what: str) -> None:
        """Send bytes as they are on the TCP stream (before TLS): a whole PDU."""
        await self._write(data, deadline, what)

    async def recv_tpkt(self, deadline: float, what: str) -> bytes:
        """Read exactly one TPKT packet (at most 65535 bytes, as its header says).

        Returns ``b""`` when the peer closed the connection before sending a byte.
        """
        header = b""
        try:
            header = await self._wire.read_exactly(TPKT_HEADER_LENGTH, deadline)
            length = packet_length(header)
            if length is None:  # pragma: no cover - four bytes are always enough
                raise RemoteProtocolError("TPKT header truncated", 0)
            body = await self._wire.read_exactly(length - TPKT_HEADER_LENGTH, deadline)
        except TimeoutError:
            raise self._error(TransportTimeout, f"no answer to {what} in time") from None
        except asyncio.IncompleteReadError as exc:
            if not header and not exc.partial:
                return b""
            raise self._error(
                ConnectError, f"closed the connection in the middle of the answer to {what}"
            ) from None
        except RemoteProtocolError as exc:
            raise RemoteProtocolError(f"{self.target}: answer to {what}: {exc}") from exc
        except OSError as exc:
            raise self._error(ConnectError, f"{what} failed: {exc}") from exc
        return header + body

    async def _flush_tls(self, deadline: float) -> None:
        assert self._tls is not None
        out = b""
        while True:
            try:
                chunk = self._tls.bio_read(_READ_CHUNK)
            except SSL.WantReadError:
                break
            if not chunk:
                break
            out += chunk
        if out:
            await self._write(out, deadline, "TLS data")

    async def start_tls(
        self,
        deadline: float,
        *,
        min_version: str = "TLSv1.0",
        max_version: str = "TLSv1.3",
        server_name: str | None = None,
        keep_partial: bool = False,
    ) -> TlsSessionInfo:
        """Run the TLS handshake on this stream; return version, cipher and chain.

        With *keep_partial*, a handshake that fails after the host's Certificate message
        was read returns a session with ``completed`` false instead of raising: the
        certificate a host sent is what the probe is for.
        """
        ctx = _client_context(min_version, max_version)
        conn = SSL.Connection(ctx, None)
        conn.set_connect_state()
        staple = _Staple()
        conn.set_app_data(staple)
        conn.request_ocsp()
        if server_name:
            conn.set_tlsext_host_name(server_name.encode("idna"))
        self._tls = conn
        flight = ServerFlightReader()
        received = 0
        while True:
            try:
                conn.do_handshake()
                break
            except SSL.WantReadError:
                await self._flush_tls(deadline)
                try:
                    data = await self._read(deadline, "the TLS handshake")
                except TransportError as exc:
                    partial = _partial(conn, flight, staple, str(exc), keep_partial)
                    if partial is None:
                        raise
                    return partial
                if not data:
                    why = "closed the connection during the TLS handshake"
                    partial = _partial(conn, flight, staple, why, keep_partial)
                    if partial is not None:
                        return partial
                    raise self._error(TlsError, why) from None
                received += len(data)
                if received > MAX_HANDSHAKE_BYTES:
                    raise self._error(
                        TlsError, f"sent over {MAX_HANDSHAKE_BYTES} bytes without finishing TLS"
                    ) from None
                _watch(flight, data)
                conn.bio_write(data)
            except SSL.Error as exc:
                with contextlib.suppress(TransportError):
                    await self._flush_tls(deadline)
                why = f"TLS handshake failed: {_ssl_reason(exc)}"
                partial = _partial(conn, flight, staple, why, keep_partial)
                if partial is not None:
                    return partial
                raise self._error(TlsError, why) from exc
        await self._flush_tls(deadline)
        chain = conn.get_peer_cert_chain() or []
        version = _PYOPENSSL_VERSION_NAMES.get(
            conn.get_protocol_version_name(), conn.get_protocol_version_name()
        )
        hello = flight.server_hello
        return TlsSessionInfo(
            version=version,
            cipher=conn.get_cipher_name() or "",
            chain=tuple(_der(cert) for cert in chain),
            secure_renegotiation=None
            if hello is None or version == "TLSv1.3"
            else hello.secure_renegotiation,
            stapled_ocsp=staple.response or _bounded(flight.ocsp_response),
        )

    async def send_tls(self, data: bytes, deadline: float) -> None:
        """Send application data inside TLS."""
        if self._tls is None:
            raise RuntimeError("start_tls() first")
        self._tls.sendall(data)
        await self._flush_tls(deadline)

    async def recv_tls(self, deadline: float, limit: int = 65536) -> bytes:
        """Return the next application data inside TLS (b'' when the peer closed)."""
        if self._tls is None:
            raise RuntimeError("start_tls() first")
        while True:
            try:
                data = bytes(self._tls.recv(limit))
            except SSL.WantReadError:
                data = await self._read(deadline, "TLS data")
                if not data:
                    return b""
                self._tls.bio_write(data)
            except SSL.ZeroReturnError:
                return b""
            except SSL.Error as exc:
                raise self._error(TlsError, f"TLS failed: {_ssl_reason(exc)}") from exc
            else:
                # What OpenSSL answered meanwhile goes out now: the no_renegotiation alert
                # for a server HelloRequest (this client never renegotiates).
                await self._flush_tls(deadline)
                return data

    async def close(self) -> None:
        """Close the connection (what was written still goes out first)."""
        self._wire.close()


def _watch(flight: ServerFlightReader, data: bytes) -> None:
    """Feed the plaintext reader; a flight it cannot read is OpenSSL's to judge alone."""
    try:
        flight.feed(data)
    except RemoteProtocolError:
        flight.finished = True


def _bounded(data: bytes | None) -> bytes | None:
    return data if data and len(data) <= MAX_STAPLED_OCSP else None


def _partial(
    conn: SSL.Connection, flight: ServerFlightReader, staple: _Staple, why: str, keep: bool
) -> TlsSessionInfo | None:
    """The session as far as it went, when the host's certificate was read before *why*."""
    hello = flight.server_hello
    if not keep or hello is None or not flight.certificates:
        return None
    return TlsSessionInfo(
        version=_TLS_RECORD_VERSIONS.get(hello.version, f"0x{hello.version:04x}"),
        cipher=_cipher_name(conn, hello.cipher_suite),
        chain=flight.certificates,
        completed=False,
        failure=why,
        secure_renegotiation=hello.secure_renegotiation,
        stapled_ocsp=staple.response or _bounded(flight.ocsp_response),
    )


def _cipher_name(conn: SSL.Connection, suite: int) -> str:
    """OpenSSL's name for the IANA cipher suite *suite*, or its code when it has none."""
    try:
        from OpenSSL._util import ffi, lib

        cipher = lib.SSL_CIPHER_find(conn._ssl, suite.to_bytes(2, "big"))
        if cipher != ffi.NULL:
            return str(ffi.string(lib.SSL_CIPHER_get_name(cipher)).decode("ascii"))
    except (ImportError, AttributeError):  # pragma: no cover - another pyOpenSSL
        pass
    return f"0x{suite:04X}"


def _der(cert: crypto.X509) -> bytes:
    # OpenSSL's own encoding of what it read, without a round trip through cryptography
    return crypto.dump_certificate(crypto.FILETYPE_ASN1, cert)


def _remaining(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def _ssl_reason(exc: SSL.Error) -> str:
    args: Any = exc.args
    try:
        reasons = [entry[2] for entry in args[0] if entry and entry[2]]
    except (IndexError, TypeError):
        reasons = []
    return ", ".join(reasons) or str(exc) or type(exc).__name__
