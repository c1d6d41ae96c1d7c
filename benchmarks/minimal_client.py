"""The ceiling: the least work a client can do to read each RDP host's certificate chain.

    .venv/bin/python benchmarks/minimal_client.py -i targets.txt --concurrency 200 --out certs.json

One connection per host, on an ``asyncio.Protocol`` (no streams, no task per read): connect,
send an X.224 Connection Request with an RDP Negotiation Request for PROTOCOL_SSL|HYBRID,
read the Connection Confirm, upgrade to TLS with pyOpenSSL over memory BIOs (the context
rdptrust's net layer builds: the same versions, cipher list, key-exchange groups, options
and OCSP status request, so the ClientHello is the same), read the peer's chain, close.
One deadline covers each connection. Nothing is judged, parsed or stored: this is what a
scanner's rate would be if all it did was the handshake, the bar rdptrust's ``scan`` is
measured against in benchmarks/netem.py. ``--out`` writes each target's leaf certificate
SHA-256 (or its error) for the comparison with rdptrust's inventory.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

from OpenSSL import SSL, crypto

#: TPKT + X.224 Connection Request (no cookie) + RDP_NEG_REQ asking for
#: PROTOCOL_SSL | PROTOCOL_HYBRID (MS-RDPBCGR 2.2.1.1, 2.2.1.1.1).
CONNECTION_REQUEST = bytes.fromhex("030000130ee000000000000100080003000000")
_TPKT_VERSION = 3
_X224_CONNECTION_CONFIRM = 0xD0
_TYPE_RDP_NEG_RSP = 0x02
_TYPE_RDP_NEG_FAILURE = 0x03
_TLS_PROTOCOLS = 0x01 | 0x02  # PROTOCOL_SSL | PROTOCOL_HYBRID
_READ = 16384

#: rdptrust.net.connection's ClientHello settings (tests/test_minimal_client.py checks
#: they stay the same).
CLIENT_GROUPS = b"X25519:P-256:P-384"
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


def client_context() -> SSL.Context:
    """The TLS client context rdptrust's main probe connection uses (TLS 1.0 to 1.3)."""
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.set_verify(SSL.VERIFY_NONE)
    ctx.set_min_proto_version(SSL.TLS1_VERSION)
    ctx.set_max_proto_version(SSL.TLS1_3_VERSION)
    ctx.set_options(SSL.OP_LEGACY_SERVER_CONNECT | SSL.OP_NO_RENEGOTIATION)
    ctx.set_cipher_list(CLIENT_CIPHERS)
    try:
        from OpenSSL._util import lib

        lib.SSL_CTX_set1_curves_list(ctx._context, CLIENT_GROUPS)
    except (ImportError, AttributeError):  # pragma: no cover - another pyOpenSSL
        pass
    ctx.set_ocsp_client_callback(lambda conn, data, _: True)
    return ctx


class ChainReader(asyncio.Protocol):
    """One connection: X.224 negotiation, then TLS; ``done`` gets the chain as DER."""

    def __init__(self, ctx: SSL.Context, done: asyncio.Future[list[bytes]]) -> None:
        self._ctx = ctx
        self.done = done
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        self._tls: SSL.Connection | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        transport.write(CONNECTION_REQUEST)

    def data_received(self, data: bytes) -> None:
        if self.done.done():
            return
        if self._tls is None:
            self._negotiate(data)
        else:
            self._tls.bio_write(data)
            self._handshake()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError(f"closed before the chain: {exc}"))

    def _fail(self, why: str) -> None:
        self.done.set_exception(ConnectionError(why))
        assert self._transport is not None
        self._transport.abort()

    def _negotiate(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) < 4:
            return
        if self._buffer[0] != _TPKT_VERSION:
            self._fail("not a TPKT answer")
            return
        length = int.from_bytes(self._buffer[2:4], "big")
        if len(self._buffer) < length:
            return
        confirm = self._buffer[:length]
        if len(confirm) < 19 or confirm[5] != _X224_CONNECTION_CONFIRM:
            self._fail("no Connection Confirm with negotiation data")
            return
        if confirm[11] == _TYPE_RDP_NEG_FAILURE:
            code = int.from_bytes(confirm[15:19], "little")
            self._fail(f"the host refused TLS (RDP_NEG_FAILURE, code {code})")
            return
        if confirm[11] != _TYPE_RDP_NEG_RSP:
            self._fail(f"negotiation answer type {confirm[11]}, not RDP_NEG_RSP")
            return
        if not int.from_bytes(confirm[15:19], "little") & _TLS_PROTOCOLS:
            self._fail("the host chose a protocol without TLS")
            return
        self._tls = SSL.Connection(self._ctx, None)
        self._tls.set_connect_state()
        self._tls.request_ocsp()
        self._handshake()

    def _handshake(self) -> None:
        assert self._tls is not None
        assert self._transport is not None
        try:
            self._tls.do_handshake()
        except SSL.WantReadError:
            self._flush()
            return
        except SSL.Error as exc:
            self._fail(f"TLS handshake failed: {exc}")
            return
        self._flush()
        chain = self._tls.get_peer_cert_chain() or []
        self.done.set_result([crypto.dump_certificate(crypto.FILETYPE_ASN1, c) for c in chain])
        self._transport.close()

    def _flush(self) -> None:
        assert self._tls is not None
        assert self._transport is not None
        out = b""
        while True:
            try:
                chunk = self._tls.bio_read(_READ)
            except SSL.WantReadError:
                break
            if not chunk:
                break
            out += chunk
        if out:
            self._transport.write(out)


async def read_chain(ctx: SSL.Context, host: str, port: int, timeout: float) -> list[bytes]:
    """The chain *host*:*port* sends, as DER; one deadline of *timeout* seconds for all."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[list[bytes]] = loop.create_future()
    transport: asyncio.BaseTransport | None = None
    try:
        async with asyncio.timeout(timeout):
            transport, _ = await loop.create_connection(lambda: ChainReader(ctx, done), host, port)
            return await done
    finally:
        if transport is not None and not transport.is_closing():
            transport.abort()


def _split(target: str) -> tuple[str, int]:
    host, _, port = target.rpartition(":")
    return host.strip("[]"), int(port)


async def scan(targets: list[str], concurrency: int, timeout: float) -> dict[str, str]:
    """Each target's leaf certificate SHA-256 (hex), or ``error: ...``."""
    ctx = client_context()
    results: dict[str, str] = {}
    pending: Iterator[str] = iter(targets)

    async def worker() -> None:
        for target in pending:
            try:
                chain = await read_chain(ctx, *_split(target), timeout)
            except (OSError, TimeoutError) as exc:
                results[target] = f"error: {type(exc).__name__}: {exc}"
            else:
                results[target] = hashlib.sha256(chain[0]).hexdigest() if chain else "error: none"

    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(targets)))))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-i", "--input", type=Path, required=True, help="one HOST:PORT a line")
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per connection")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--out", type=Path, help="write {target: leaf SHA-256 or error}")
    args = parser.parse_args()
    targets = [line.strip() for line in args.input.read_text().splitlines() if line.strip()]
    start = time.monotonic()
    job = scan(targets, args.concurrency, args.timeout)
    if args.loop == "uvloop":
        import uvloop

        results = uvloop.run(job)
    else:
        results = asyncio.run(job)
    wall = time.monotonic() - start
    if args.out:
        args.out.write_text(json.dumps(results))
    ok = sum(not v.startswith("error") for v in results.values())
    summary = {"targets": len(targets), "ok": ok, "wall_s": round(wall, 3), "pid": os.getpid()}
    print(json.dumps(summary), file=sys.stderr)


if __name__ == "__main__":
    main()
