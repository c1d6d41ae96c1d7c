"""Timed PKI retrievals over real loopback sockets: each failure is told apart, none raises."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from rdptrust.model.retrieval import FetchOutcome
from rdptrust.net.http import fetch

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            await reader.readexactly(int(line.split(b":", 1)[1]))
    return head


def _response(status: str, body: bytes, extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n{extra}\r\n"
    ).encode() + body


@contextlib.asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[str]:
    """An HTTP-ish server on 127.0.0.1:0; yields its base URL; stopped afterwards."""
    tasks: set[asyncio.Task[None]] = set()

    async def wrapped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    server = await asyncio.start_server(wrapped, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


async def answer_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    head = await _read_request(reader)
    body = b"POSTED" if head.startswith(b"POST") else b"hello crl"
    writer.write(_response("200 OK", body))
    await writer.drain()


async def test_ok_returns_body_status_and_time() -> None:
    async with serve(answer_ok) as base:
        result = await fetch(f"{base}/crl/x.crl", timeout=2.0)
    assert result.outcome == FetchOutcome.OK
    assert result.status == 200
    assert result.body == b"hello crl"
    assert result.error is None
    assert 0.0 < result.elapsed_ms < 2000.0


async def test_post_sends_content() -> None:
    async with serve(answer_ok) as base:
        result = await fetch(
            f"{base}/ocsp",
            timeout=2.0,
            method="POST",
            content=b"\x30\x03\x02\x01\x00",
            content_type="application/ocsp-request",
        )
    assert result.outcome == FetchOutcome.OK
    assert result.body == b"POSTED"


async def test_404_is_http_error() -> None:
    async def not_found(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(_response("404 Not Found", b"nope"))
        await writer.drain()

    async with serve(not_found) as base:
        result = await fetch(f"{base}/aia/ca.crt", timeout=2.0)
    assert result.outcome == FetchOutcome.HTTP_ERROR
    assert result.status == 404
    assert result.body is None
    assert result.error is not None
    assert "404" in result.error


async def test_bound_but_not_listening_socket_refuses_fast() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))  # bound, never listening: the kernel answers RST
        port = holder.getsockname()[1]
        result = await fetch(f"http://127.0.0.1:{port}/crl", timeout=5.0)
    assert result.outcome == FetchOutcome.REFUSED
    assert result.error == "connection refused"
    assert result.status is None
    assert result.elapsed_ms < 1000.0


async def test_black_hole_times_out_within_the_time_out() -> None:
    accepted = asyncio.Event()

    async def black_hole(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        await reader.read()  # never answer; wait for the client to give up

    async with serve(black_hole) as base:
        start = time.monotonic()
        result = await fetch(f"{base}/authrootstl.cab", timeout=0.5)
        wall = time.monotonic() - start
    assert accepted.is_set(), "the TCP connection must have been accepted"
    assert result.outcome == FetchOutcome.TIMEOUT
    assert result.status is None
    assert 450.0 <= result.elapsed_ms < 1500.0
    assert wall < 1.5


async def test_reset_after_the_request_is_a_fast_failure_named_reset() -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        sock = writer.get_extra_info("socket")
        # SO_LINGER 0: close sends RST instead of FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async with serve(reset) as base:
        result = await fetch(f"{base}/crl", timeout=5.0)
    assert result.outcome == FetchOutcome.REFUSED
    assert result.error is not None
    assert "reset" in result.error
    assert result.elapsed_ms < 2000.0


async def test_dns_failure_through_the_resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    # The resolver seam: no name lookup may leave this machine, so getaddrinfo itself
    # answers "no such name" as a resolver would, and the test checks it was asked.
    asked: list[str] = []
    real = socket.getaddrinfo

    def resolver(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name.startswith("127.") or name in ("::1", "localhost"):
            return real(host, *args, **kwargs)
        # Every other name is answered here, so no lookup can leave the machine.
        asked.append(name)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    result = await fetch("http://pki.nowhere.rdptrust-test/crl", timeout=2.0)
    assert asked == ["pki.nowhere.rdptrust-test"]
    assert result.outcome == FetchOutcome.DNS_ERROR
    assert result.error is not None
    assert "not resolved" in result.error


async def test_invalid_tld_never_reaches_a_resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    def resolver(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a .invalid name must not be looked up")

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    result = await fetch("http://ctldl.example.invalid/authrootstl.cab", timeout=2.0)
    assert result.outcome == FetchOutcome.DNS_ERROR
    assert result.error is not None
    assert "RFC 6761" in result.error
    assert result.elapsed_ms < 100.0


async def test_body_larger_than_the_bound_is_invalid() -> None:
    async def big(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(_response("200 OK", b"x" * 5000))
        await writer.drain()

    async with serve(big) as base:
        result = await fetch(f"{base}/crl", timeout=2.0, max_body=1000)
    assert result.outcome == FetchOutcome.INVALID
    assert result.body is None
    assert result.error is not None
    assert "1000" in result.error


async def test_redirect_loop_is_bounded() -> None:
    hits = 0

    async def loop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal hits
        hits += 1
        await _read_request(reader)
        writer.write(_response("302 Found", b"", "Location: /again\r\n"))
        await writer.drain()

    async with serve(loop) as base:
        result = await fetch(f"{base}/start", timeout=2.0)
    assert result.outcome == FetchOutcome.HTTP_ERROR
    assert result.error == "too many redirects"
    assert 2 <= hits <= 5


async def test_proxy_settings_from_the_environment_are_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{holder.getsockname()[1]}"
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(name, dead)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        async with serve(answer_ok) as base:
            result = await fetch(f"{base}/crl", timeout=2.0)
    assert result.outcome == FetchOutcome.OK


async def test_unsupported_scheme_is_invalid_not_raised() -> None:
    result = await fetch("ldap://127.0.0.1/cn=crl", timeout=1.0)
    assert result.outcome == FetchOutcome.INVALID
    assert result.error is not None
    assert result.error.startswith("bad URL")
