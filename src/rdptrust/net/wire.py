"""One TCP connection's bytes, read and written against one deadline.

:class:`Wire` is an :class:`asyncio.Protocol` that keeps what arrives in a buffer and
wakes at most one waiter; a connection's deadline is one timer, armed once and moved
only when a step asks for another deadline (a probe connection spends one budget on
connect, negotiation and TLS, so its timer is armed once). That replaces the stream
reader and writer and the ``asyncio.timeout`` around every read and write, which cost
more than the bytes they moved. Its errors are the ones asyncio's streams raise
(:class:`TimeoutError`, :class:`asyncio.IncompleteReadError`, :class:`OSError`), so the
caller words them as before.
"""

from __future__ import annotations

import asyncio
import time
from typing import cast

#: Bytes held unread before the wire stops reading from the socket (TCP then pushes back).
HIGH_WATER = 1 << 17


class Wire(asyncio.Protocol):
    """The bytes of one connection as they arrive, and one waiter at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._eof = False
        self._lost: BaseException | None = None
        self._paused_writing = False
        self._paused_reading = False
        self._waiter: asyncio.Future[None] | None = None
        self._deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._expired = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports have the methods without being asyncio.Transport subclasses
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) > HIGH_WATER and self.transport is not None:
            self.transport.pause_reading()
            self._paused_reading = True
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._lost = exc
        self._wake()

    def pause_writing(self) -> None:
        self._paused_writing = True

    def resume_writing(self) -> None:
        self._paused_writing = False
        self._wake()

    # the deadline

    def _arm(self, deadline: float) -> None:
        if deadline == self._deadline:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._deadline = deadline
        self._expired = False
        delay = deadline - time.monotonic()
        if delay <= 0:
            self._expired = True
            self._timer = None
            return
        self._timer = asyncio.get_running_loop().call_later(delay, self._expire)

    def _expire(self) -> None:
        self._expired = True
        self._timer = None
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self, deadline: float) -> None:
        """Until something changes (bytes, the end, room to write) or *deadline* passes."""
        self._arm(deadline)
        if self._expired:
            raise TimeoutError
        waiter = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        try:
            await waiter
        finally:
            self._waiter = None

    def _take(self, size: int | None = None) -> bytes:
        if size is None or size >= len(self._buffer):
            data = bytes(self._buffer)
            self._buffer.clear()
        else:
            data = bytes(self._buffer[:size])
            del self._buffer[:size]
        if self._paused_reading and len(self._buffer) <= HIGH_WATER and self.transport:
            self._paused_reading = False
            self.transport.resume_reading()
        return data

    def _raise_lost(self) -> None:
        if self._lost is not None:
            raise self._lost

    # what the connection calls

    async def read(self, deadline: float) -> bytes:
        """What has arrived (waiting for it), or ``b""`` once the peer has closed."""
        while True:
            if self._buffer:
                return self._take()
            if self._eof:
                self._raise_lost()
                return b""
            await self._wait(deadline)

    async def read_exactly(self, size: int, deadline: float) -> bytes:
        """Exactly *size* bytes; :class:`asyncio.IncompleteReadError` if the peer closes first."""
        while len(self._buffer) < size:
            if self._eof:
                self._raise_lost()
                raise asyncio.IncompleteReadError(self._take(), size)
            await self._wait(deadline)
        return self._take(size)

    async def write(self, data: bytes, deadline: float) -> None:
        """Send *data*; waits only while the peer does not take what was sent before."""
        transport = self.transport
        if transport is None or transport.is_closing() or self._lost is not None:
            self._raise_lost()
            raise ConnectionResetError("the connection is closed")
        transport.write(data)
        while self._paused_writing:
            if self._eof:
                self._raise_lost()
                raise ConnectionResetError("the connection is closed")
            await self._wait(deadline)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.transport is not None:
            self.transport.close()
