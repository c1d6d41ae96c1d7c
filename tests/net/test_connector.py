"""Retrieval connects go address after address, as WinHTTP's do (no Happy Eyeballs), and
each address's outcome is reported. Real sockets on loopback; the resolver's answer is
injected (no DNS)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

from rdptrust.model.retrieval import ConnectOutcome, FetchOutcome
from rdptrust.net.connector import connect_in_order, recording
from rdptrust.net.http import fetch, retrieval_client
from rdptrust.net.resolve import AddrInfo


def _v4(port: int) -> AddrInfo:
    return (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))


def _v6(port: int) -> AddrInfo:
    return (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0))


def lookup_of(*infos: AddrInfo) -> Any:
    asked: list[tuple[str, int]] = []

    async def lookup(host: str, port: int) -> list[AddrInfo]:
        asked.append((host, port))
        return list(infos)

    lookup.asked = asked  # type: ignore[attr-defined]
    return lookup


def closed_port(family: int = socket.AF_INET) -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket(family) as s:
        s.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def black_hole() -> Iterator[int]:
    """A loopback port whose accept queue is full: a SYN to it gets no answer (Linux drops
    it), as a firewall that drops packets would. Skips where the kernel answers instead."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = int(listener.getsockname()[1])
    fillers: list[socket.socket] = []
    try:
        for _ in range(8):
            s = socket.socket()
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                s.connect(("127.0.0.1", port))
            fillers.append(s)
        probe = socket.socket()
        probe.settimeout(0.3)
        try:
            probe.connect(("127.0.0.1", port))
            pytest.skip("this kernel answers a full accept queue: no loopback black hole")
        except TimeoutError:
            pass
        finally:
            probe.close()
        yield port
    finally:
        for s in fillers:
            s.close()
        listener.close()


@pytest_asyncio.fixture
async def server() -> AsyncIterator[int]:
    """A loopback HTTP server answering 200 "ok"; its port."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield int(srv.sockets[0].getsockname()[1])
    finally:
        srv.close()
        await srv.wait_closed()


async def test_a_refusing_address_first_then_the_working_one(server: int) -> None:
    # Given a name whose first address refuses and whose second answers,
    refused = closed_port()
    lookup = lookup_of(_v4(refused), _v4(server))
    # when it is fetched,
    async with retrieval_client(2.0, lookup=lookup) as client:
        result = await fetch("http://crl.example.test/a.crl", timeout=2.0, client=client)
    # then the retrieval works, and says it tried the first address, then the second.
    assert result.outcome == FetchOutcome.OK, result
    assert [(a.port, a.outcome) for a in result.attempts] == [
        (refused, ConnectOutcome.REFUSED),
        (server, ConnectOutcome.CONNECTED),
    ]
    assert all(a.address == "127.0.0.1" for a in result.attempts)
    assert lookup.asked == [("crl.example.test", 80)]


async def test_every_address_refusing_is_refused_with_each_listed() -> None:
    ports = [closed_port(), closed_port()]
    lookup = lookup_of(*map(_v4, ports))
    async with retrieval_client(2.0, lookup=lookup) as client:
        result = await fetch("http://crl.example.test/a.crl", timeout=2.0, client=client)
    assert result.outcome == FetchOutcome.REFUSED
    assert [a.outcome for a in result.attempts] == [ConnectOutcome.REFUSED] * 2
    assert result.elapsed_ms < 1000


async def test_a_black_hole_first_holds_the_whole_time_out(server: int) -> None:
    # No Happy Eyeballs: the working second address is never reached within the time-out.
    with black_hole() as hole:
        lookup = lookup_of(_v4(hole), _v4(server))
        async with retrieval_client(0.6, lookup=lookup) as client:
            result = await fetch("http://crl.example.test/a.crl", timeout=0.6, client=client)
    assert result.outcome == FetchOutcome.TIMEOUT
    (attempt,) = result.attempts
    assert attempt.outcome == ConnectOutcome.TIMEOUT
    assert attempt.port == hole
    assert 500 <= attempt.elapsed_ms < 1500


async def test_after_tcps_give_up_the_next_address_is_tried(server: int) -> None:
    # With a URL time-out longer than TCP's give-up, Windows goes on to the next address.
    with black_hole() as hole:
        lookup = lookup_of(_v4(hole), _v4(server))
        async with retrieval_client(3.0, lookup=lookup, give_up_s=0.4) as client:
            result = await fetch("http://crl.example.test/a.crl", timeout=3.0, client=client)
    assert result.outcome == FetchOutcome.OK
    assert [a.outcome for a in result.attempts] == [
        ConnectOutcome.TIMEOUT,
        ConnectOutcome.CONNECTED,
    ]
    assert 350 <= result.attempts[0].elapsed_ms < 1000


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no ::1 on this machine")
async def test_ipv6_first_when_the_resolver_says_so_real_sockets(server: int) -> None:
    # Given ::1 first (nothing listens there on that port) and 127.0.0.1 second,
    lookup = lookup_of(_v6(server), _v4(server))
    with recording() as attempts:
        sock = await connect_in_order("both.example.test", server, timeout=2.0, lookup=lookup)
    sock.close()
    # then ::1 is tried first and refused, and 127.0.0.1 connects after it.
    assert [(a.address, a.outcome) for a in attempts] == [
        ("::1", ConnectOutcome.REFUSED),
        ("127.0.0.1", ConnectOutcome.CONNECTED),
    ]


async def test_an_unresolvable_name_is_a_dns_error_with_no_attempt() -> None:
    async def lookup(host: str, port: int) -> list[AddrInfo]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    async with retrieval_client(1.0, lookup=lookup) as client:
        result = await fetch("http://nowhere.example.test/", timeout=1.0, client=client)
    assert result.outcome == FetchOutcome.DNS_ERROR
    assert result.attempts == ()
