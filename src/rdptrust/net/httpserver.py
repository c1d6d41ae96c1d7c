"""One HTTP/1.1 server core on asyncio and h11: the exporter and the lab's PKI responders.

A handler gets one :class:`HttpRequest`, head and whole body read, and returns one
:class:`HttpResponse`, or ``None`` to answer nothing at all: the connection is then held,
what arrives on it dropped, until the client leaves or the server stops (the lab's
``blackhole``). ``HEAD`` is answered with the headers of the ``GET`` answer and no body.

Limits, all in :class:`HttpLimits`:

- the request head (request line and headers) may take ``max_head_bytes``, counted over
  every read that carried it, so a head split over many packets meets the same limit as
  one sent whole: ``431``;
- a body may take ``max_body_bytes``; a ``Content-Length`` above it is refused before the
  body is read: ``413``;
- the first request's head must have arrived ``header_timeout_s`` after the connection
  was accepted, a later request's head ``header_timeout_s`` after its first byte; its
  body ``body_timeout_s`` after the head (a slow client gets ``408``; a connection that
  never sent a byte is closed without an answer);
- a kept-alive connection waiting for its next request is closed after
  ``idle_timeout_s``;
- at most ``max_connections`` connections at once. At the cap a new connection takes
  the place of the connection that has waited longest for a request (idle, or sending
  its head slowly), which is closed; only when every connection is being answered is
  the new one closed at once. So idle sockets and slow heads cannot starve a scrape;
- with TLS (*ssl*), the handshake must end within ``header_timeout_s``.

Requests that break HTTP get ``400``. Every answer the core gives itself closes the
connection: it says ``Connection: close``, shuts its sending side and drops what the
client still sends for a moment, so the client reads the answer rather than a reset.
Other answers keep the connection alive when the server allows it (``keep_alive``), the
response does not ask to close, and the client did not say ``Connection: close``;
pipelined requests are answered in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus

import h11

from rdptrust.errors import UsageError
from rdptrust.net.service import AsyncService, close_server

_log = logging.getLogger("rdptrust.httpserver")
_READ_CHUNK = 16 * 1024
#: How long, and how many bytes, the core reads and drops after an answer it gave itself.
_LINGER_S = 2.0
_LINGER_BYTES = 1 << 20


@dataclass(frozen=True)
class HttpRequest:
    """One whole request. Header names are lower case; values are decoded as Latin-1."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    received_at: float = 0.0
    """``time.monotonic()`` when the whole request had arrived."""
    peer: str = ""
    """``host:port`` of the client; empty when the socket did not say."""

    @property
    def path(self) -> str:
        """The target without its query string."""
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        """The query string without ``?``; empty when there is none."""
        return self.target.partition("?")[2]

    def header(self, name: str) -> str | None:
        """The first value of header *name* (any case); ``None`` when it was not sent."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), None)


@dataclass(frozen=True)
class HttpResponse:
    """One answer. ``close`` ends the connection after it, even when kept alive."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()
    close: bool = False

    def __post_init__(self) -> None:
        if not 200 <= self.status <= 599:
            raise ValueError(f"HTTP status must be 200 to 599, not {self.status}")


@dataclass(frozen=True)
class HttpLimits:
    """What one server accepts (see the module docstring); each must be positive."""

    max_head_bytes: int = 16 * 1024
    max_body_bytes: int = 64 * 1024
    header_timeout_s: float = 10.0
    body_timeout_s: float = 10.0
    idle_timeout_s: float = 60.0
    max_connections: int = 128

    def __post_init__(self) -> None:
        for name in ("max_head_bytes", "max_body_bytes", "max_connections"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name} must be 1 or more, not {getattr(self, name)}")
        for name in ("header_timeout_s", "body_timeout_s", "idle_timeout_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise UsageError(f"{name} must be a positive number of seconds, not {value}")


Handler = Callable[[HttpRequest], Awaitable[HttpResponse | None]]
#: Told why the core refused something: ``connections``, ``timeout``, ``too_large`` or
#: ``bad_request``.
RejectHook = Callable[[str], None]


class _Refusal(Exception):
    """A request the core answers itself with *status*, then closes."""

    def __init__(self, status: int) -> None:
        self.status = status
        super().__init__(status)

    @property
    def reason(self) -> str:
        if self.status == 408:
            return "timeout"
        if self.status in (413, 431):
            return "too_large"
        return "bad_request"


#: The HTTP versions the server speaks: 1.0 and 1.1 (HTTP/9.9 is 505, RFC 9110 15.6.6).
_SPOKEN = frozenset({b"1.0", b"1.1"})


class HttpServer(AsyncService):
    """An HTTP/1.1 server calling *handler* once per request; an async context manager.

    It listens on *host*:*port* (0 takes a free port; see :attr:`port` once started), or
    on *sock*, a bound socket it starts listening on. *on_rejected* counts refusals.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        sock: socket.socket | None = None,
        limits: HttpLimits = HttpLimits(),
        keep_alive: bool = True,
        server_name: str = "rdptrust",
        on_rejected: RejectHook | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if not 0 <= port <= 65535:
            raise UsageError(f"port must be 0 to 65535, not {port}")
        self.host = host
        self.port = port
        self.limits = limits
        self.keep_alive = keep_alive
        self.server_name = server_name
        self._handler = handler
        self._sock = sock
        self._on_rejected = on_rejected
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        # Connections waiting for a request (idle or reading a head), with since when.
        self._waiting: dict[asyncio.Task[None], float] = {}
        self._ssl = ssl_context
        self._closing = False

    @property
    def connections(self) -> int:
        """Connections being served now."""
        return len(self._connections)

    async def start(self) -> None:
        if self._server is not None:
            return
        self._closing = False
        backlog = self.limits.max_connections
        handshake = self.limits.header_timeout_s if self._ssl is not None else None
        try:
            if self._sock is not None:
                server = await asyncio.start_server(
                    self._accept,
                    sock=self._sock,
                    backlog=backlog,
                    ssl=self._ssl,
                    ssl_handshake_timeout=handshake,
                )
            else:
                server = await asyncio.start_server(
                    self._accept,
                    self.host,
                    self.port,
                    reuse_address=True,
                    backlog=backlog,
                    ssl=self._ssl,
                    ssl_handshake_timeout=handshake,
                )
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {self.host} port {self.port}: {exc.strerror or exc}"
            ) from exc
        self._server = server
        if server.sockets:
            self.port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and end every connection (running handlers are cancelled)."""
        server, self._server = self._server, None
        if server is None:
            return
        self._closing = True
        await close_server(server, self._connections)
        # Let handlers of connections accepted during the close see _closing and end.
        await asyncio.sleep(0)

    def _reject(self, reason: str) -> None:
        if self._on_rejected is not None:
            self._on_rejected(reason)

    # -- one connection ----------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if len(self._connections) >= self.limits.max_connections and self._waiting:
            # Make room: the connection that has waited longest for a request goes.
            oldest = min(self._waiting, key=self._waiting.__getitem__)
            del self._waiting[oldest]
            self._connections.discard(oldest)
            oldest.cancel()
            self._reject("connections")
        if self._closing or task is None or len(self._connections) >= self.limits.max_connections:
            self._reject("connections")
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return
        self._connections.add(task)
        try:
            await self._serve(reader, writer)
        except (OSError, asyncio.IncompleteReadError, h11.LocalProtocolError):
            pass  # the client went away, or broke HTTP while we answered
        except asyncio.CancelledError:
            # stop() cancels every connection. End normally: on Python 3.11 the stream
            # machinery calls task.exception() on this task and logs a cancelled one.
            pass
        finally:
            self._connections.discard(task)
            self._waiting.pop(task, None)
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.limits.max_head_bytes)
        peer_info = writer.get_extra_info("peername")
        peer = f"{peer_info[0]}:{peer_info[1]}" if peer_info else ""
        first = True
        task = asyncio.current_task()
        while True:
            if task is not None:
                self._waiting[task] = time.monotonic()
            try:
                request = await self._read_request(conn, reader, writer, peer, first=first)
            except _Refusal as refusal:
                self._reject(refusal.reason)
                await self._refuse(conn, reader, writer, refusal.status)
                return
            finally:
                if task is not None:
                    self._waiting.pop(task, None)
            if request is None:
                return
            first = False
            response = await self._call_handler(request)
            if response is None:
                await _discard_until_closed(reader)
                return
            await self._send(conn, writer, request.method, response)
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()

    async def _read_request(
        self,
        conn: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: str,
        *,
        first: bool,
    ) -> HttpRequest | None:
        """The next whole request; ``None`` when the client closed or idled out first."""
        limits = self.limits
        loop = asyncio.get_running_loop()
        buffered = len(conn.trailing_data[0])  # pipelined bytes left by the last request
        begun = buffered > 0
        # Head bytes fed to h11 for this request, counted over every read, because h11's
        # own limit counts only what is unparsed: the read that completes a head may
        # carry it over that limit.
        head_bytes = buffered
        head: h11.Request | None = None
        body = bytearray()
        wait = limits.header_timeout_s if first or begun else limits.idle_timeout_s
        try:
            async with asyncio.timeout_at(loop.time() + wait) as timer:
                while True:
                    try:
                        event = conn.next_event()
                    except h11.RemoteProtocolError as exc:
                        hint = exc.error_status_hint
                        raise _Refusal(hint if 400 <= hint <= 599 else 400) from None
                    if event is h11.NEED_DATA:
                        data = await reader.read(_READ_CHUNK)
                        if data and not begun:
                            begun = True
                            if not first:
                                timer.reschedule(loop.time() + limits.header_timeout_s)
                        if head is None:
                            head_bytes += len(data)
                        conn.receive_data(data)
                    elif isinstance(event, h11.Request):
                        if head_bytes - len(conn.trailing_data[0]) > limits.max_head_bytes:
                            raise _Refusal(431)
                        if event.http_version not in _SPOKEN:
                            raise _Refusal(505)  # h11 reads any HTTP/d.d as 1.1
                        for name, value in event.headers:
                            if name == b"content-length" and int(value) > limits.max_body_bytes:
                                raise _Refusal(413)
                        head = event
                        timer.reschedule(loop.time() + limits.body_timeout_s)
                        if conn.they_are_waiting_for_100_continue:
                            go_on = h11.InformationalResponse(status_code=100, headers=[])
                            writer.write(conn.send(go_on) or b"")
                    elif isinstance(event, h11.Data):
                        body += event.data
                        if len(body) > limits.max_body_bytes:
                            raise _Refusal(413)
                    elif isinstance(event, h11.EndOfMessage):
                        assert head is not None
                        return HttpRequest(
                            method=head.method.decode("ascii", "replace"),
                            target=head.target.decode("ascii", "replace"),
                            headers=tuple(
                                (name.decode("latin-1"), value.decode("latin-1"))
                                for name, value in head.headers
                            ),
                            body=bytes(body),
                            received_at=time.monotonic(),
                            peer=peer,
                        )
                    else:  # ConnectionClosed, or PAUSED which a new cycle never reaches
                        return None
        except TimeoutError:
            if not begun:
                if first:
                    self._reject("timeout")  # a connection that never asked anything
                return None
            raise _Refusal(408) from None

    async def _call_handler(self, request: HttpRequest) -> HttpResponse | None:
        try:
            return await self._handler(request)
        except Exception:  # one failing answer must never stop the server
            _log.exception("answering %s %s failed", request.method, request.target)
            return HttpResponse(500, b"internal server error\n", close=True)

    async def _send(
        self,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        method: str,
        response: HttpResponse,
    ) -> None:
        headers = [
            ("Content-Type", response.content_type),
            ("Content-Length", str(len(response.body))),
            *response.headers,
        ]
        if response.close or not self.keep_alive:
            headers.append(("Connection", "close"))
        headers.append(("Server", self.server_name))
        try:
            reason = HTTPStatus(response.status).phrase.encode("ascii")
        except ValueError:
            reason = b""
        out = (
            conn.send(h11.Response(status_code=response.status, headers=headers, reason=reason))
            or b""
        )
        if response.body and method != "HEAD":
            out += conn.send(h11.Data(data=response.body)) or b""
        out += conn.send(h11.EndOfMessage()) or b""
        writer.write(out)
        await writer.drain()

    async def _refuse(
        self,
        conn: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        status: int,
    ) -> None:
        """Answer *status* if an answer can still go out, then close gracefully."""
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        phrase = HTTPStatus(status).phrase
        response = HttpResponse(status, f"{phrase.lower()}\n".encode(), close=True)
        with contextlib.suppress(h11.LocalProtocolError):
            await self._send(conn, writer, "GET", response)
        # Drop what the client still sends (a refused body, the rest of a head): closing
        # with unread bytes makes the kernel send a reset, which can overtake the answer.
        if writer.can_write_eof():
            writer.write_eof()
        with contextlib.suppress(TimeoutError, OSError):
            async with asyncio.timeout(_LINGER_S):
                dropped = 0
                while dropped < _LINGER_BYTES and (data := await reader.read(_READ_CHUNK)):
                    dropped += len(data)


async def _discard_until_closed(reader: asyncio.StreamReader) -> None:
    """Read and drop what the client sends until it closes."""
    with contextlib.suppress(OSError):
        while await reader.read(_READ_CHUNK):
            pass
