"""How the lab's endpoint runs TLS: the :class:`TlsMode` members and their servers.

========  ==================================================================================
mode      the TLS server
========  ==================================================================================
standard  Python's ``ssl`` on the stream (the versions and chain the lab is given)
stapled   OpenSSL through pyOpenSSL, stapling an OCSP answer for the host certificate
          (RFC 6066 status_request) to every client that asks for one
stapled-  the same, stapling a stale answer (its nextUpdate two days past), as a host
stale     whose staple refresh stopped does
legacy    a host that predates RFC 5746, as Windows Server 2008 R2 before MS10-049 was:
          TLS 1.0 only, TLS_RSA_WITH_AES_128_CBC_SHA only, a ServerHello without any
          extension (no renegotiation_info); written out here, since OpenSSL always
          answers the client's renegotiation signal (:mod:`rdptrust.lab.rdp.legacy_tls`)
========  ==================================================================================

The stapled and legacy servers hand the endpoint a :class:`TlsSession`: a reader of the
plaintext the client sends and a ``send`` coroutine, over the same TCP stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from OpenSSL import SSL

from rdptrust.errors import UsageError

#: Bytes a client may send during a lab handshake before the lab gives up on it.
MAX_HANDSHAKE_BYTES = 1 << 18
_READ = 16384

_SERVABLE_KEYS = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
)
_VERSIONS = {
    "TLSv1.0": SSL.TLS1_VERSION,
    "TLSv1.1": SSL.TLS1_1_VERSION,
    "TLSv1.2": SSL.TLS1_2_VERSION,
    "TLSv1.3": SSL.TLS1_3_VERSION,
}


class TlsMode(StrEnum):
    """Which TLS server the lab endpoint runs (see the module docstring)."""

    STANDARD = "standard"
    STAPLED = "stapled"
    STAPLED_STALE = "stapled-stale"
    LEGACY = "legacy"


@dataclass
class TlsSession:
    """A TLS session the lab runs itself: the client's plaintext and a way to answer."""

    reader: asyncio.StreamReader
    send: Callable[[bytes], Awaitable[None]]
    #: Moves records from the TCP stream to :attr:`reader`; stopped by :meth:`close`.
    pump: asyncio.Task[None] | None = None
    #: The client's ClientHello asked for a stapled OCSP answer (status_request).
    status_requested: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    async def close(self) -> None:
        if self.pump is not None:
            self.pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.pump


class TlsServer:
    """What the endpoint calls to run TLS on a connection in a mode of its own."""

    async def accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float
    ) -> TlsSession:
        raise NotImplementedError


class StaplingTlsServer(TlsServer):
    """OpenSSL stapling *staple()* (the DER OCSP response; ``None``: staple nothing)."""

    def __init__(
        self,
        chain: Sequence[x509.Certificate],
        key: CertificateIssuerPrivateKeyTypes,
        staple: Callable[[], bytes | None],
        *,
        min_version: str = "TLSv1.2",
        max_version: str = "TLSv1.3",
    ) -> None:
        if not chain:
            raise UsageError("a stapling TLS server needs a certificate")
        for name in (min_version, max_version):
            if name not in _VERSIONS:
                raise UsageError(f"unknown TLS version {name!r}; use {', '.join(_VERSIONS)}")
        self._staple = staple
        #: How many handshakes asked for a staple, and how many got one.
        self.requested = 0
        self.stapled = 0
        ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
        ctx.set_min_proto_version(_VERSIONS[min_version])
        ctx.set_max_proto_version(_VERSIONS[max_version])
        ctx.set_cipher_list(b"ALL:@SECLEVEL=0")
        ctx.use_certificate(chain[0])
        for cert in chain[1:]:
            ctx.add_extra_chain_cert(cert)
        if not isinstance(key, _SERVABLE_KEYS):
            raise UsageError(f"the stapling TLS server cannot serve a {type(key).__name__}")
        ctx.use_privatekey(key)
        ctx.set_ocsp_server_callback(self._answer)
        self._context = ctx

    def _answer(self, conn: SSL.Connection, _: object) -> bytes:
        self.requested += 1
        response = self._staple()
        if response:
            self.stapled += 1
        return response or b""

    async def accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float
    ) -> TlsSession:
        conn = SSL.Connection(self._context, None)
        conn.set_accept_state()
        received = 0
        async with asyncio.timeout(timeout):
            while True:
                try:
                    conn.do_handshake()
                    break
                except SSL.WantReadError:
                    await _flush(conn, writer)
                    data = await reader.read(_READ)
                    received += len(data)
                    if not data or received > MAX_HANDSHAKE_BYTES:
                        raise ConnectionResetError(
                            "the client left during the TLS handshake"
                        ) from None
                    conn.bio_write(data)
                except SSL.Error as exc:
                    await _flush(conn, writer)
                    raise ConnectionResetError(f"TLS handshake failed: {exc}") from exc
        await _flush(conn, writer)
        plain = asyncio.StreamReader()

        async def send(data: bytes) -> None:
            conn.sendall(data)
            await _flush(conn, writer)

        return TlsSession(plain, send, asyncio.create_task(_pump(conn, reader, plain)))


async def _flush(conn: SSL.Connection, writer: asyncio.StreamWriter) -> None:
    out = b""
    while True:
        try:
            chunk = conn.bio_read(_READ)
        except SSL.WantReadError:
            break
        if not chunk:
            break
        out += chunk
    if out:
        writer.write(out)
        await writer.drain()


async def _pump(
    conn: SSL.Connection, reader: asyncio.StreamReader, plain: asyncio.StreamReader
) -> None:
    """Decrypt what the client sends into *plain* until it closes."""
    try:
        while True:
            # First what the handshake's last read already brought (the client may send
            # its first data with its Finished), then what comes next.
            while True:
                try:
                    plain.feed_data(conn.recv(_READ))
                except SSL.WantReadError:
                    break
            data = await reader.read(_READ)
            if not data:
                break
            conn.bio_write(data)
    except (SSL.Error, OSError):
        pass
    finally:
        plain.feed_eof()
