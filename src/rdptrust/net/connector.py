"""TCP connects for retrievals as WinHTTP makes them: address after address, no Happy Eyeballs.

WinHTTP connects to the addresses the resolver gives, in the resolver's order (IPv6
first when the system's address selection puts it first), one after another; no Happy
Eyeballs racing is documented for it (WINDOWS.md §6), so an IPv6 black hole tried
first costs its whole wait before IPv4 is tried. httpx/httpcore would connect through
anyio, which races the addresses and hides that wait; :class:`OrderedBackend` is the
httpcore network backend the retrieval client uses instead.

Each connect is recorded as a :class:`~rdptrust.model.retrieval.ConnectAttempt`
(address, outcome, elapsed ms) in the list :func:`recording` opens for the current
task, which :func:`rdptrust.net.http.fetch` puts in its result.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import errno
import socket
import time
import typing
from collections.abc import Iterable, Iterator

import httpcore
from anyio.abc import SocketStream
from httpcore._backends.anyio import AnyIOBackend, AnyIOStream

from rdptrust.model.retrieval import ConnectAttempt, ConnectOutcome
from rdptrust.net.resolve import AsyncLookup, resolve

#: When a connect that gets no answer is given up, per address: TCP's give-up on
#: Windows (about 21 s: the initial SYN and two retransmissions, KB 2786464).
TCP_GIVE_UP_S = 21.0

_ATTEMPTS: contextvars.ContextVar[list[ConnectAttempt] | None] = contextvars.ContextVar(
    "rdptrust_connect_attempts", default=None
)


@contextlib.contextmanager
def recording() -> Iterator[list[ConnectAttempt]]:
    """Collect the connect attempts the current task makes inside the block."""
    attempts: list[ConnectAttempt] = []
    token = _ATTEMPTS.set(attempts)
    try:
        yield attempts
    finally:
        _ATTEMPTS.reset(token)


def _record(attempt: ConnectAttempt) -> None:
    seen = _ATTEMPTS.get()
    if seen is not None:
        seen.append(attempt)


def connect_outcome(exc: BaseException) -> ConnectOutcome:
    """What a failed connect's exception means."""
    if isinstance(exc, ConnectionRefusedError):
        return ConnectOutcome.REFUSED
    if isinstance(exc, ConnectionResetError | ConnectionAbortedError):
        return ConnectOutcome.RESET
    if isinstance(exc, TimeoutError | asyncio.CancelledError):
        return ConnectOutcome.TIMEOUT
    if isinstance(exc, OSError) and exc.errno in (errno.ETIMEDOUT,):
        return ConnectOutcome.TIMEOUT
    return ConnectOutcome.UNREACHABLE


async def connect_in_order(
    host: str,
    port: int,
    *,
    timeout: float | None,
    lookup: AsyncLookup = resolve,
    give_up_s: float = TCP_GIVE_UP_S,
) -> socket.socket:
    """A connected socket to the first of *host*'s addresses that accepts, trying them in
    the order *lookup* gives, each after the previous one failed, all within *timeout*
    seconds and each address for at most *give_up_s* (TCP's give-up). Every attempt is
    recorded (see :func:`recording`). Raises the last connect's error
    (``socket.gaierror`` when *host* does not resolve)."""
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else time.monotonic() + timeout
    infos = await lookup(host, port)
    last: BaseException | None = None
    for family, kind, proto, _, address in infos:
        left = give_up_s if deadline is None else min(deadline - time.monotonic(), give_up_s)
        if left <= 0:
            break
        sock = socket.socket(family, kind, proto)
        start = time.monotonic()

        def attempt(
            outcome: ConnectOutcome, addr: typing.Any = address, start: float = start
        ) -> None:
            elapsed = round((time.monotonic() - start) * 1000.0, 3)
            _record(ConnectAttempt(str(addr[0]), int(addr[1]), outcome, elapsed))

        try:
            sock.setblocking(False)
            async with asyncio.timeout(left):
                await loop.sock_connect(sock, address)
        except asyncio.CancelledError:
            # the retrieval's own time-out ended it while this address was silent
            sock.close()
            attempt(ConnectOutcome.TIMEOUT)
            raise
        except (OSError, TimeoutError) as exc:
            sock.close()
            attempt(connect_outcome(exc))
            last = exc
            continue
        except BaseException:
            sock.close()
            raise
        attempt(ConnectOutcome.CONNECTED)
        return sock
    if isinstance(last, TimeoutError):
        raise TimeoutError(f"no answer from {host} within {give_up_s:g} s per address")
    raise last or TimeoutError(f"no time left to connect to {host}")


class OrderedBackend(AnyIOBackend):
    """httpcore's anyio backend with TCP connects made by :func:`connect_in_order`."""

    def __init__(self, lookup: AsyncLookup = resolve, give_up_s: float = TCP_GIVE_UP_S) -> None:
        self._lookup = lookup
        self._give_up_s = give_up_s

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            sock = await connect_in_order(
                host, port, timeout=timeout, lookup=self._lookup, give_up_s=self._give_up_s
            )
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(str(exc) or "connect timed out") from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        try:
            for option in socket_options or ():
                sock.setsockopt(*option)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            stream = await SocketStream.from_socket(sock)
        except BaseException:
            sock.close()
            raise
        return AnyIOStream(stream)
