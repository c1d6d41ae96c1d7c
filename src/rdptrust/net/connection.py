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

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL

from rdptrust.errors import (
    ConnectError,
    RemoteProtocolError,
    TlsError,
    TransportError,
    TransportTimeout,
)
from rdptrust.model.probe import TlsSessionInfo
from rdptrust.model.target import Target
from rdptrust.net.resolve import open_stream
from rdptrust.protocol.mcs import DisconnectProviderUltimatum, parse_disconnect_provider_ultimatum
from rdptrust.protocol.tpkt import TPKT_HEADER_LENGTH, TPKT_MAX_LENGTH, packet_length
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


@functools.lru_cache(maxsize=16)
def _client_context(min_version: str, max_version: str) -> SSL.Context:
    """One context per version range, shared by all connections (they do not change it)."""
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.set_verify(SSL.VERIFY_NONE)
    ctx.set_min_proto_version(TLS_VERSIONS[min_version])
    ctx.set_max_proto_version(TLS_VERSIONS[max_version])
    # Old RDP hosts speak TLS 1.0 with SHA-1 and RSA key exchange: allow everything,
    # we only look at what the server offers.
    ctx.set_cipher_list(b"ALL:@SECLEVEL=0")
    _offer_groups(ctx, CLIENT_GROUPS)
    return ctx


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
    caller can spend one budget across connect, negotiation and TLS.
    """

    def __init__(
        self, target: Target, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.target = target
        self._reader = reader
        self._writer = writer
        self._tls: SSL.Connection | None = None
        peer = writer.get_extra_info("peername")
        self.peer_address: str | None = peer[0] if peer else None

    @classmethod
    async def open(cls, target: Target, deadline: float) -> RdpConnection:
        try:
            async with asyncio.timeout(_remaining(deadline)):
                reader, writer = await open_stream(target.host, target.port, limit=TPKT_MAX_LENGTH)
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
            raise ConnectError(
                f"{target}: cannot connect ({exc.strerror or exc})", target.host, target.port
            ) from exc
        return cls(target, reader, writer)

    def _error(self, cls: type[TransportError], what: str) -> TransportError:
        return cls(f"{self.target}: {what}", self.target.host, self.target.port)

    async def _read(self, deadline: float, what: str) -> bytes:
        try:
            async with asyncio.timeout(_remaining(deadline)):
                data = await self._reader.read(_READ_CHUNK)
        except TimeoutError:
            raise self._error(TransportTimeout, f"no answer to {what} in time") from None
        except (ConnectionResetError, BrokenPipeError):
            raise self._error(ConnectError, f"connection reset during {what}") from None
        except OSError as exc:
            raise self._error(ConnectError, f"{what} failed: {exc}") from exc
        return data

    async def _write(self, data: bytes, deadline: float, what: str) -> None:
        try:
            self._writer.write(data)
            async with asyncio.timeout(_remaining(deadline)):
                await self._writer.drain()
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
            async with asyncio.timeout(_remaining(deadline)):
                header = await self._reader.readexactly(TPKT_HEADER_LENGTH)
                length = packet_length(header)
                if length is None:  # pragma: no cover - four bytes are always enough
                    raise RemoteProtocolError("TPKT header truncated", 0)
                body = await self._reader.readexactly(length - TPKT_HEADER_LENGTH)
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
    ) -> TlsSessionInfo:
        """Run the TLS handshake on this stream; return version, cipher and chain."""
        ctx = _client_context(min_version, max_version)
        conn = SSL.Connection(ctx, None)
        conn.set_connect_state()
        if server_name:
            conn.set_tlsext_host_name(server_name.encode("idna"))
        self._tls = conn
        received = 0
        while True:
            try:
                conn.do_handshake()
                break
            except SSL.WantReadError:
                await self._flush_tls(deadline)
                data = await self._read(deadline, "the TLS handshake")
                if not data:
                    raise self._error(
                        TlsError, "closed the connection during the TLS handshake"
                    ) from None
                received += len(data)
                if received > MAX_HANDSHAKE_BYTES:
                    raise self._error(
                        TlsError, f"sent over {MAX_HANDSHAKE_BYTES} bytes without finishing TLS"
                    ) from None
                conn.bio_write(data)
            except SSL.Error as exc:
                with contextlib.suppress(TransportError):
                    await self._flush_tls(deadline)
                raise self._error(TlsError, f"TLS handshake failed: {_ssl_reason(exc)}") from exc
        await self._flush_tls(deadline)
        chain = conn.get_peer_cert_chain(as_cryptography=True) or []
        version = conn.get_protocol_version_name()
        return TlsSessionInfo(
            version=_PYOPENSSL_VERSION_NAMES.get(version, version),
            cipher=conn.get_cipher_name() or "",
            chain=tuple(_der(cert) for cert in chain),
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
                return bytes(self._tls.recv(limit))
            except SSL.WantReadError:
                data = await self._read(deadline, "TLS data")
                if not data:
                    return b""
                self._tls.bio_write(data)
            except SSL.ZeroReturnError:
                return b""
            except SSL.Error as exc:
                raise self._error(TlsError, f"TLS failed: {_ssl_reason(exc)}") from exc

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(1.0):
                await self._writer.wait_closed()


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


def _remaining(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def _ssl_reason(exc: SSL.Error) -> str:
    args: Any = exc.args
    try:
        reasons = [entry[2] for entry in args[0] if entry and entry[2]]
    except (IndexError, TypeError):
        reasons = []
    return ", ".join(reasons) or str(exc) or type(exc).__name__
