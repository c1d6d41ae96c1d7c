"""The HTTP server core over real loopback sockets: keep-alive, pipelining, limits, time-outs."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from rdptrust.errors import UsageError
from rdptrust.net.httpserver import HttpLimits, HttpRequest, HttpResponse, HttpServer

SHORT = 0.3


@dataclass
class Recorder:
    """A handler that answers ``METHOD TARGET BODY-LENGTH`` and remembers each request."""

    requests: list[HttpRequest]
    rejected: list[str]

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        text = f"{request.method} {request.target} {len(request.body)}\n"
        return HttpResponse(200, text.encode(), headers=(("X-Seen", str(len(self.requests))),))


@contextlib.asynccontextmanager
async def serving(
    handler: object = None, *, keep_alive: bool = True, **limits: float
) -> AsyncIterator[tuple[HttpServer, Recorder]]:
    recorder = Recorder([], [])
    server = HttpServer(
        handler or recorder,  # type: ignore[arg-type]
        limits=HttpLimits(**limits),  # type: ignore[arg-type]
        keep_alive=keep_alive,
        server_name="rdptrust-test",
        on_rejected=recorder.rejected.append,
    )
    async with server:
        yield server, recorder


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


async def read_answer(reader: asyncio.StreamReader, *, head: bool = False) -> Answer:
    raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = 0 if head else int(headers.get("content-length", "0"))
    body = await asyncio.wait_for(reader.readexactly(length), 5)
    return Answer(status, headers, body)


@contextlib.asynccontextmanager
async def connection(
    port: int,
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def closed_by_server(reader: asyncio.StreamReader, timeout: float = 5.0) -> bool:
    """True when the server closes (EOF or reset) within *timeout*, all unread bytes dropped."""
    try:
        async with asyncio.timeout(timeout):
            while await reader.read(65536):
                pass
    except ConnectionResetError:
        pass
    return True


def get(target: str = "/", *extra: str) -> bytes:
    lines = [f"GET {target} HTTP/1.1", "Host: 127.0.0.1", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# -- answering ---------------------------------------------------------------------------


async def test_a_normal_get() -> None:
    async with serving() as (server, recorder):
        async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
            response = await client.get(f"http://127.0.0.1:{server.port}/path?a=1&b=2")
    assert response.status_code == 200
    assert response.text == "GET /path?a=1&b=2 0\n"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["server"] == "rdptrust-test"
    assert response.headers["x-seen"] == "1"
    [request] = recorder.requests
    assert (request.path, request.query) == ("/path", "a=1&b=2")
    assert request.header("HOST") == f"127.0.0.1:{server.port}"
    assert request.header("x-absent") is None
    assert request.peer.startswith("127.0.0.1:")
    assert 0 < request.received_at <= time.monotonic()
    assert recorder.rejected == []


async def test_keep_alive_serves_two_requests_on_one_connection() -> None:
    async with serving() as (server, recorder), connection(server.port) as (reader, writer):
        writer.write(get("/one"))
        first = await read_answer(reader)
        writer.write(get("/two"))
        second = await read_answer(reader)
        assert (first.status, first.body) == (200, b"GET /one 0\n")
        assert (second.status, second.body) == (200, b"GET /two 0\n")
        assert "connection" not in first.headers
        assert len({request.peer for request in recorder.requests}) == 1
        assert server.connections == 1


async def test_pipelined_requests_are_answered_in_order() -> None:
    async with serving() as (server, recorder), connection(server.port) as (reader, writer):
        post = b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        writer.write(get("/a") + post + get("/c", "Connection: close"))
        answers = [await read_answer(reader) for _ in range(3)]
        assert [a.body for a in answers] == [b"GET /a 0\n", b"POST /b 3\n", b"GET /c 0\n"]
        assert [a.headers["x-seen"] for a in answers] == ["1", "2", "3"]
        # The client asked the last one to close the connection: the server does.
        assert answers[2].headers["connection"] == "close"
        assert await reader.read() == b""
    assert [r.body for r in recorder.requests] == [b"", b"abc", b""]


async def test_head_gets_the_length_and_no_body() -> None:
    async with serving() as (server, _), connection(server.port) as (reader, writer):
        writer.write(b"HEAD /x HTTP/1.1\r\nHost: x\r\n\r\n" + get("/y"))
        head = await read_answer(reader, head=True)
        after = await read_answer(reader)
    assert head.status == 200
    assert int(head.headers["content-length"]) == len(b"HEAD /x 0\n")
    assert after.body == b"GET /y 0\n"  # no body bytes of the HEAD answer came in between


async def test_without_keep_alive_every_answer_closes() -> None:
    async with (
        serving(keep_alive=False) as (server, recorder),
        connection(server.port) as (reader, writer),
    ):
        writer.write(get("/a") + get("/b"))
        answer = await read_answer(reader)
        assert answer.headers["connection"] == "close"
        assert await reader.read() == b""
    assert [r.target for r in recorder.requests] == ["/a"]


async def test_expect_100_continue_is_honoured() -> None:
    async with serving() as (server, _), connection(server.port) as (reader, writer):
        writer.write(
            b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert interim.startswith(b"HTTP/1.1 100 ")
        writer.write(b"data")
        assert (await read_answer(reader)).body == b"POST /p 4\n"


async def test_a_handler_that_fails_gets_500_and_the_server_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(request: HttpRequest) -> HttpResponse:
        if request.path == "/bug":
            raise RuntimeError("a bug in the handler")
        return HttpResponse(200, b"fine\n")

    async with serving(broken) as (server, _):
        async with connection(server.port) as (reader, writer):
            writer.write(get("/bug"))
            answer = await read_answer(reader)
            assert answer.status == 500
            assert answer.headers["connection"] == "close"
            assert b"Traceback" not in answer.body
        async with connection(server.port) as (reader, writer):
            writer.write(get("/ok"))
            assert (await read_answer(reader)).body == b"fine\n"
    assert "a bug in the handler" in caplog.text


async def test_no_answer_holds_the_connection_until_the_client_leaves() -> None:
    async def silent(request: HttpRequest) -> None:
        return None

    async with serving(silent) as (server, _):
        async with connection(server.port) as (reader, writer):
            writer.write(get("/"))
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(reader.read(1), SHORT)
            assert server.connections == 1
        deadline = time.monotonic() + 5
        while server.connections:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)


# -- limits --------------------------------------------------------------------------------


async def test_a_head_over_the_limit_sent_in_one_byte_pieces_is_refused() -> None:
    async with serving(max_head_bytes=1024) as (server, recorder):
        async with connection(server.port) as (reader, writer):
            data = get("/", "X-Pad: " + "a" * 1100)
            answer = b""
            try:
                for index in range(len(data)):
                    writer.write(data[index : index + 1])
                    await writer.drain()
                    await asyncio.sleep(0)
            except (ConnectionResetError, BrokenPipeError):
                pass  # the server closed while we were still sending: allowed
            with contextlib.suppress(ConnectionResetError):
                answer = await asyncio.wait_for(reader.read(), 5)
        assert answer == b"" or answer.startswith(b"HTTP/1.1 431 "), answer
        assert recorder.requests == []
        assert recorder.rejected == ["too_large"]


async def test_a_head_over_the_limit_completed_by_a_second_read_is_refused() -> None:
    # h11's own limit counts only unparsed bytes: a head just under it, then the rest
    # with the blank line, would pass it. The core counts the whole head.
    async with serving(max_head_bytes=1024) as (server, recorder):
        async with connection(server.port) as (reader, writer):
            data = get("/", "X-Pad: " + "a" * 1100)
            writer.write(data[:1000])
            await writer.drain()
            await asyncio.sleep(0.1)
            writer.write(data[1000:])
            answer = await read_answer(reader)
            assert answer.status == 431
            assert answer.headers["connection"] == "close"
            assert await closed_by_server(reader)
        assert recorder.requests == []


async def test_a_head_at_the_limit_is_served() -> None:
    async with serving(max_head_bytes=1024) as (server, _):
        async with connection(server.port) as (reader, writer):
            head = get("/")
            data = get("/", "X-Pad: " + "a" * (1024 - len(head) - len("X-Pad: \r\n")))
            assert len(data) == 1024
            writer.write(data[:600])
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(data[600:])
            assert (await read_answer(reader)).status == 200


async def test_a_slow_loris_hits_the_header_timeout() -> None:
    async with serving(header_timeout_s=SHORT) as (server, recorder):
        # Stamped before the connection opens: the server's clock starts at its accept,
        # which may run before this task resumes from the connect.
        started = time.monotonic()
        async with connection(server.port) as (reader, writer):

            async def drip() -> None:
                with contextlib.suppress(OSError):
                    for byte in b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
                        writer.write(bytes([byte]))
                        await writer.drain()
                        await asyncio.sleep(0.05)

            dripping = asyncio.create_task(drip())
            try:
                answer = await read_answer(reader)
            finally:
                dripping.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await dripping
            elapsed = time.monotonic() - started
        assert answer.status == 408
        assert SHORT <= elapsed < SHORT + 1.5
        assert recorder.requests == []
        assert recorder.rejected == ["timeout"]


async def test_a_body_that_never_completes_hits_the_body_timeout() -> None:
    async with serving(body_timeout_s=SHORT) as (server, recorder):
        async with connection(server.port) as (reader, writer):
            writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
            assert (await read_answer(reader)).status == 408
        assert recorder.rejected == ["timeout"]


async def test_an_idle_connection_is_closed() -> None:
    async with serving(idle_timeout_s=SHORT, header_timeout_s=SHORT) as (server, recorder):
        # A kept-alive connection that asks nothing more is closed after the idle time ...
        # (each clock stamped before the moment the server starts its own: before the
        # request for the idle time, before the connect for the header time-out)
        async with connection(server.port) as (reader, writer):
            started = time.monotonic()
            writer.write(get("/"))
            assert (await read_answer(reader)).status == 200
            assert await reader.read() == b""
            assert SHORT <= time.monotonic() - started < SHORT + 1.5
        assert recorder.rejected == []  # an idle close is no refusal
        # ... and one that never asks anything after the header time-out, without answer.
        started = time.monotonic()
        async with connection(server.port) as (reader, writer):
            assert await reader.read() == b""
            assert SHORT <= time.monotonic() - started < SHORT + 1.5
        assert recorder.rejected == ["timeout"]


async def test_a_body_over_the_cap_gets_413() -> None:
    async with serving(max_body_bytes=100) as (server, recorder):
        # A declared length over the cap is refused before the body is read ...
        async with connection(server.port) as (reader, writer):
            body = b"x" * 101
            writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n" + body)
            answer = await read_answer(reader)
            assert answer.status == 413
            assert answer.headers["connection"] == "close"
        # ... and a chunked body as soon as it grows over it.
        async with connection(server.port) as (reader, writer):
            chunk = b"x" * 60
            writer.write(
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                + (b"3c\r\n" + chunk + b"\r\n") * 2
            )
            assert (await read_answer(reader)).status == 413
        # A body at the cap is served.
        async with connection(server.port) as (reader, writer):
            writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"x" * 100)
            assert (await read_answer(reader)).body == b"POST / 100\n"
    assert recorder.rejected == ["too_large", "too_large"]
    assert [len(r.body) for r in recorder.requests] == [100]


async def test_bytes_that_are_no_http_get_400() -> None:
    async with serving() as (server, recorder), connection(server.port) as (reader, writer):
        writer.write(b"\x16\x03\x01 not http at all\r\n\r\n")
        answer = await read_answer(reader)
        assert answer.status == 400
        assert await closed_by_server(reader)
    assert recorder.rejected == ["bad_request"]


@pytest.mark.parametrize("version", [b"HTTP/9.9", b"HTTP/2.0", b"HTTP/1.2"])
async def test_a_version_the_server_does_not_speak_gets_505(version: bytes) -> None:
    # h11 reads any HTTP/d.d and would answer it as 1.1
    async with serving() as (server, recorder), connection(server.port) as (reader, writer):
        writer.write(b"GET / " + version + b"\r\nHost: x\r\n\r\n")
        answer = await read_answer(reader)
        assert answer.status == 505
        assert await closed_by_server(reader)
    assert recorder.rejected == ["bad_request"]
    assert recorder.requests == []


async def test_http_1_0_is_still_served() -> None:
    async with serving() as (server, recorder), connection(server.port) as (reader, writer):
        writer.write(b"GET / HTTP/1.0\r\n\r\n")
        answer = await read_answer(reader)
        assert answer.status == 200
    assert recorder.rejected == []


async def test_the_connection_cap_is_respected() -> None:
    release = asyncio.Event()

    async def waiting(request: HttpRequest) -> HttpResponse:
        await release.wait()
        return HttpResponse(200, b"done\n")

    async with serving(waiting, max_connections=2) as (server, recorder):
        held = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(2)]
        try:
            for _, writer in held:
                writer.write(get("/"))
                await writer.drain()
            deadline = time.monotonic() + 5
            while server.connections < 2:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
            # A third connection is accepted by the kernel and closed by the server at once.
            async with connection(server.port) as (reader, writer):
                writer.write(get("/"))
                assert await closed_by_server(reader)
            assert recorder.rejected == ["connections"]
            # Once the held ones are answered and gone, a new connection is served.
            release.set()
            for reader, writer in held:
                assert (await read_answer(reader)).body == b"done\n"
                writer.close()
                await writer.wait_closed()
            deadline = time.monotonic() + 5
            while server.connections:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
            async with connection(server.port) as (reader, writer):
                writer.write(get("/"))
                assert (await read_answer(reader)).body == b"done\n"
        finally:
            for _, writer in held:
                writer.close()


async def test_stop_ends_every_connection_and_leaves_no_task() -> None:
    async def forever(request: HttpRequest) -> HttpResponse:
        await asyncio.sleep(3600)
        raise AssertionError("never reached")

    async with serving(forever) as (server, _):
        clients = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(3)]
        clients[0][1].write(get("/"))
        clients[1][1].write(b"GET / HTTP/1.1\r\n")
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await server.stop()
        assert time.monotonic() - started < 1.0
        assert asyncio.all_tasks() == {asyncio.current_task()}
        for reader, writer in clients:
            assert await closed_by_server(reader, 1.0)
            writer.close()
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", server.port)
        await server.stop()  # a second stop is harmless


async def test_a_port_in_use_is_a_usage_error() -> None:
    async with serving() as (server, _):
        with pytest.raises(UsageError, match="cannot listen"):
            async with HttpServer(Recorder([], []), port=server.port):
                pass


@pytest.mark.parametrize(
    "limits",
    [
        {"max_head_bytes": 0},
        {"max_body_bytes": -1},
        {"max_connections": 0},
        {"header_timeout_s": 0},
        {"idle_timeout_s": float("inf")},
        {"body_timeout_s": float("nan")},
    ],
)
def test_limits_must_be_positive(limits: dict[str, float]) -> None:
    with pytest.raises(UsageError):
        HttpLimits(**limits)  # type: ignore[arg-type]


def test_a_response_status_must_be_a_final_one() -> None:
    with pytest.raises(ValueError, match="200 to 599"):
        HttpResponse(101)
    with pytest.raises(UsageError, match="port"):
        HttpServer(Recorder([], []), port=70000)
