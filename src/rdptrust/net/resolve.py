"""Host names resolved and connected to in a way a cancelled scan can abandon at once.

The event loop's ``getaddrinfo`` runs the system resolver in a pool that outlives a
cancellation: asyncio waits at exit for every call in flight (a resolver that gets no
answer takes ``timeout * attempts`` seconds, 10 s with glibc's defaults), and uvloop
goes on resolving every queued name, then reports each result to a future nobody
awaits ("Future exception was never retrieved"). A SIGINT'd scan of 10,000 names that
never answer kept resolving for minutes.

Here each name is resolved by one of a few daemon threads. A request whose caller
has given up (time-out, Ctrl-C) is skipped if it has not started and its answer
dropped if it has; daemon threads do not hold up the exit of the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import socket
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from rdptrust.model.target import ip_literal

AddrInfo = tuple[int, int, int, str, Any]

#: Names resolved at the same time at most, as many as asyncio's default pool allows.
RESOLVER_THREADS = 32


@dataclass
class _Request:
    host: str
    port: int
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[list[AddrInfo]]
    abandoned: threading.Event = field(default_factory=threading.Event)


Lookup = Callable[[str, int], list[AddrInfo]]

#: Resolves a host name to TCP addresses, in the order they are tried (a seam for tests).
AsyncLookup = Callable[[str, int], Awaitable[list[AddrInfo]]]


def system_lookup(host: str, port: int) -> list[AddrInfo]:
    """The system resolver (``getaddrinfo``) for TCP addresses of *host*."""
    return list(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))


class Resolver:
    """Resolve names on up to *threads* daemon threads with *lookup* (a seam for tests)."""

    def __init__(self, threads: int = RESOLVER_THREADS, lookup: Lookup = system_lookup) -> None:
        self._lookup = lookup
        self._queue: queue.SimpleQueue[_Request] = queue.SimpleQueue()
        self._limit = threads
        self._threads = 0
        self._idle = 0
        self._lock = threading.Lock()

    async def resolve(self, host: str, port: int) -> list[AddrInfo]:
        """What *lookup* says of *host*; cancelling the call abandons the lookup."""
        loop = asyncio.get_running_loop()
        request = _Request(host, port, loop, loop.create_future())
        self._queue.put(request)
        self._grow()
        try:
            return await request.future
        finally:
            request.abandoned.set()

    def _grow(self) -> None:
        with self._lock:
            if self._queue.qsize() <= self._idle or self._threads >= self._limit:
                return
            self._threads += 1
        thread = threading.Thread(target=self._work, name="rdptrust-resolver", daemon=True)
        thread.start()

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            request = self._queue.get()
            with self._lock:
                self._idle -= 1
            if request.abandoned.is_set():
                continue
            try:
                result: list[AddrInfo] | BaseException = self._lookup(request.host, request.port)
            except BaseException as exc:
                result = exc
            if request.abandoned.is_set():
                continue
            with contextlib.suppress(RuntimeError):  # the loop has closed meanwhile
                request.loop.call_soon_threadsafe(_settle, request.future, result)


def _settle(future: asyncio.Future[list[AddrInfo]], result: list[AddrInfo] | BaseException) -> None:
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


_RESOLVER = Resolver()


async def resolve(host: str, port: int) -> list[AddrInfo]:
    """The TCP addresses of *host*, as ``socket.getaddrinfo`` gives them.

    An IP address is returned without a thread. Raises ``socket.gaierror`` as the
    system resolver does; cancelling the call abandons the lookup.
    """
    if ip_literal(host.split("%", 1)[0]) is None:
        return await _RESOLVER.resolve(host, port)
    return list(
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    )


async def open_transport(
    host: str, port: int, protocol_factory: Callable[[], asyncio.Protocol]
) -> asyncio.Transport:
    """A connected transport to *host* and *port* over :func:`resolve`: each address in
    turn until one connects; the first failure is raised when none does."""
    loop = asyncio.get_running_loop()
    if ip_literal(host) is not None:
        # one address, no resolver: asyncio's own path is the short one
        transport, _ = await loop.create_connection(protocol_factory, host, port)
        return transport
    infos = await resolve(host, port)
    first: OSError | None = None
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, address)
        except OSError as exc:
            sock.close()
            first = first or exc
            continue
        except BaseException:
            sock.close()
            raise
        transport, _ = await loop.create_connection(protocol_factory, sock=sock)
        return transport
    raise first or OSError(f"{host} has no address")
