"""Timed HTTP retrievals against real loopback servers: each way a fetch can end."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from types import TracebackType

import httpx
import pytest

from rdptrust.engine.ctl import sync_lists
from rdptrust.model.retrieval import FetchOutcome, HttpResult, Purpose
from rdptrust.model.windows import ClientProfile
from rdptrust.net.http import MAX_REDIRECTS, USER_AGENT_PREFIX, fetch, retrieval_client

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

TIMEOUT = 2.0
#: A failure that involves no waiting must come back well within this.
FAST_MS = 1000.0


class Request:
    """One request as the server read it."""

    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body


async def read_request(reader: asyncio.StreamReader) -> Request:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    size = int(headers.get("content-length", "0"))
    body = await reader.readexactly(size) if size else b""
    return Request(method, path, headers, body)


async def respond(
    writer: asyncio.StreamWriter,
    status: int,
    reason: str,
    body: bytes = b"",
    headers: tuple[tuple[str, str], ...] = (),
) -> None:
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()


class LoopbackServer:
    """An HTTP-ish server on 127.0.0.1:0 whose every connection runs *handler*."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections = 0
        self.port = 0

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def __aenter__(self) -> LoopbackServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            await self._handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()


def serve(handler: Handler) -> LoopbackServer:
    return LoopbackServer(handler)


def answer(status: int, reason: str, body: bytes = b"", delay: float = 0.0) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        if delay:
            await asyncio.sleep(delay)
        await respond(writer, status, reason, body)

    return handler


def assert_no_answer(result: HttpResult) -> None:
    assert result.status is None
    assert result.body is None
    assert result.error


# -- answers ----------------------------------------------------------------------------------


async def test_ok_with_body() -> None:
    body = b"0\x82\x01\x00 certificate bytes"
    async with serve(answer(200, "OK", body)) as server:
        result = await fetch(server.url("/issuing.crt"), timeout=TIMEOUT)
    assert result.outcome == FetchOutcome.OK
    assert result.status == 200
    assert result.body == body
    assert result.error is None
    assert result.url == server.url("/issuing.crt")
    assert 0.0 < result.elapsed_ms < TIMEOUT * 1000


async def test_request_looks_like_windows_and_carries_the_post_body() -> None:
    # Given a server that records what it is sent,
    seen: list[Request] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        await respond(writer, 200, "OK", b"answer")

    async with serve(record) as server:
        # when an OCSP request is posted,
        result = await fetch(
            server.url("/ocsp"),
            timeout=TIMEOUT,
            method="POST",
            content=b"\x30\x03\x02\x01\x07",
            content_type="application/ocsp-request",
        )
    # then method, path, body and headers arrive as given, with CryptoAPI's User-Agent.
    assert result.outcome == FetchOutcome.OK
    assert result.body == b"answer"
    (request,) = seen
    assert request.method == "POST"
    assert request.path == "/ocsp"
    assert request.body == b"\x30\x03\x02\x01\x07"
    assert request.headers["content-type"] == "application/ocsp-request"
    assert request.headers["user-agent"] == "Microsoft-CryptoAPI/10.0"


async def test_get_sends_no_content_type() -> None:
    seen: list[Request] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        await respond(writer, 200, "OK")

    async with serve(record) as server:
        result = await fetch(server.url(), timeout=TIMEOUT)
    assert result.outcome == FetchOutcome.OK
    assert result.body == b""
    assert seen[0].method == "GET"
    assert "content-type" not in seen[0].headers


async def test_not_found_is_an_http_error_with_status() -> None:
    async with serve(answer(404, "Not Found", b"<html>nothing here</html>")) as server:
        result = await fetch(server.url("/missing.crl"), timeout=TIMEOUT)
    assert result.outcome == FetchOutcome.HTTP_ERROR
    assert result.status == 404
    assert result.body is None
    assert result.error == "HTTP 404 Not Found"


async def test_server_error_is_an_http_error() -> None:
    async with serve(answer(503, "Service Unavailable")) as server:
        result = await fetch(server.url(), timeout=TIMEOUT)
    assert result.outcome == FetchOutcome.HTTP_ERROR
    assert result.status == 503


async def test_redirect_without_location_is_not_ok() -> None:
    # A 3xx that cannot be followed is no answer: body stays None unless 2xx.
    async with serve(answer(302, "Found", b"moved somewhere")) as server:
        result = await fetch(server.url(), timeout=TIMEOUT)
    assert result.outcome == FetchOutcome.HTTP_ERROR
    assert result.status == 302
    assert result.body is None
    assert result.error == "HTTP 302 Found"


async def test_redirect_is_followed() -> None:
    async def redirect_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        if request.path == "/old.crl":
            await respond(writer, 301, "Moved Permanently", headers=(("Location", "/new.crl"),))
        else:
            await respond(writer, 200, "OK", b"crl at " + request.path.encode())

    async with serve(redirect_once) as server:
        result = await fetch(server.url("/old.crl"), timeout=TIMEOUT)
    assert result.outcome == FetchOutcome.OK
    assert result.body == b"crl at /new.crl"
    assert result.url == server.url("/old.crl")
    assert server.connections == 2


async def test_redirect_loop_is_an_http_error_after_a_bounded_number_of_requests() -> None:
    async def loop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await respond(writer, 302, "Found", headers=(("Location", "/loop"),))

    async with serve(loop) as server:
        result = await fetch(server.url("/loop"), timeout=TIMEOUT)
    assert result.outcome == FetchOutcome.HTTP_ERROR
    assert result.error == "too many redirects"
    assert result.status is None
    assert result.body is None
    assert server.connections == MAX_REDIRECTS + 1
    assert result.elapsed_ms < FAST_MS


# -- size ---------------------------------------------------------------------------------------


async def test_body_larger_than_max_body_is_invalid() -> None:
    async with serve(answer(200, "OK", b"x" * 5000)) as server:
        result = await fetch(server.url("/huge.crl"), timeout=TIMEOUT, max_body=1000)
    assert result.outcome == FetchOutcome.INVALID
    assert result.status == 200
    assert result.body is None
    assert result.error is not None
    assert result.error.startswith("answer larger than 1000 bytes")


async def test_body_of_exactly_max_body_is_ok() -> None:
    async with serve(answer(200, "OK", b"y" * 1000)) as server:
        result = await fetch(server.url(), timeout=TIMEOUT, max_body=1000)
    assert result.outcome == FetchOutcome.OK
    assert result.body == b"y" * 1000


async def test_encoded_answer_is_unusable_and_not_decoded() -> None:
    # Given a small gzip answer that would inflate well past the limit,
    packed = gzip.compress(b"\0" * 200_000)
    assert len(packed) < 10_000
    seen: list[Request] = []

    async def bomb(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        await respond(writer, 200, "OK", packed, headers=(("Content-Encoding", "gzip"),))

    async with serve(bomb) as server:
        result = await fetch(server.url(), timeout=TIMEOUT, max_body=100_000)
    # then it is unusable data, as CryptoAPI (which asked for no encoding) sees it.
    assert result.outcome == FetchOutcome.INVALID
    assert result.body is None
    assert result.error is not None
    assert "Content-Encoding gzip" in result.error
    (request,) = seen
    assert "accept-encoding" not in request.headers


async def test_request_headers_are_cryptoapi_s_even_from_a_default_client() -> None:
    seen: list[Request] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        await respond(writer, 200, "OK", b"x")

    async with serve(record) as server, httpx.AsyncClient() as plain:
        await fetch(server.url(), timeout=TIMEOUT)
        await fetch(server.url(), timeout=TIMEOUT, client=plain)
    for request in seen:
        assert set(request.headers) == {"host", "accept", "user-agent", "connection"}
        assert request.headers["accept"] == "*/*"
        assert request.headers["user-agent"] == "Microsoft-CryptoAPI/10.0"


async def test_declared_length_over_the_cap_is_refused_before_the_body() -> None:
    # Given a server that announces 2 GiB and then sends nothing,
    async def announce(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2147483648\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(TIMEOUT * 2)

    async with serve(announce) as server:
        result = await fetch(server.url(), timeout=TIMEOUT, max_body=1000)
    # then the answer is refused at once, not waited for.
    assert result.outcome == FetchOutcome.INVALID
    assert result.error is not None
    assert "Content-Length 2147483648" in result.error
    assert result.elapsed_ms < FAST_MS


async def test_chunked_body_is_capped_as_it_arrives() -> None:
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(100):  # 100 x 1000 bytes, far over the cap
            writer.write(b"3e8\r\n" + b"z" * 1000 + b"\r\n")
            await writer.drain()
        writer.write(b"0\r\n\r\n")

    async with serve(chunked) as server:
        result = await fetch(server.url(), timeout=TIMEOUT, max_body=5000)
    assert result.outcome == FetchOutcome.INVALID
    assert result.error == "answer larger than 5000 bytes"


async def test_identity_encoding_is_plain() -> None:
    async def plain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await respond(writer, 200, "OK", b"abc", headers=(("Content-Encoding", "identity"),))

    async with serve(plain) as server:
        result = await fetch(server.url(), timeout=TIMEOUT)
    assert result.outcome == FetchOutcome.OK
    assert result.body == b"abc"


# -- failures and time --------------------------------------------------------------------------


async def test_bound_but_not_listening_port_is_refused_fast() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        result = await fetch(f"http://127.0.0.1:{port}/root.cab", timeout=TIMEOUT)
    assert result.outcome == FetchOutcome.REFUSED
    assert result.error == "connection refused"
    assert_no_answer(result)
    assert result.elapsed_ms < FAST_MS


async def test_black_hole_times_out_within_the_timeout() -> None:
    # Given a server that accepts and reads but never answers,
    async def black_hole(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    timeout = 0.5
    async with serve(black_hole) as server:
        start = time.monotonic()
        result = await fetch(server.url("/authrootstl.cab"), timeout=timeout)
        wall = time.monotonic() - start
    # then the fetch ends as a time-out, no sooner than asked and not much later.
    assert result.outcome == FetchOutcome.TIMEOUT
    assert result.error == "no answer in time"
    assert_no_answer(result)
    assert server.connections == 1
    assert timeout * 1000 - 50 <= result.elapsed_ms <= (timeout + 0.5) * 1000
    assert wall <= timeout + 0.5


async def test_timeout_binds_an_injected_client_with_a_longer_one() -> None:
    async def black_hole(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    timeout = 0.4
    async with (
        serve(black_hole) as server,
        httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(60.0)) as client,
    ):
        result = await fetch(server.url(), timeout=timeout, client=client)
        assert not client.is_closed
    assert result.outcome == FetchOutcome.TIMEOUT
    assert result.elapsed_ms <= (timeout + 0.5) * 1000


async def test_timeout_covers_a_body_that_drips() -> None:
    # Headers come at once, then one byte every 0.1 s of a body that would take 5 s.
    async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n")
        for _ in range(50):
            writer.write(b"z")
            await writer.drain()
            await asyncio.sleep(0.1)

    timeout = 0.6
    async with serve(drip) as server:
        result = await fetch(server.url(), timeout=timeout)
    assert result.outcome == FetchOutcome.TIMEOUT
    assert result.body is None
    assert result.elapsed_ms <= (timeout + 0.5) * 1000


async def test_slow_server_within_the_timeout_is_ok_and_timed() -> None:
    delay = 0.4
    async with serve(answer(200, "OK", b"late", delay=delay)) as server:
        result = await fetch(server.url(), timeout=TIMEOUT)
    assert result.outcome == FetchOutcome.OK
    assert result.body == b"late"
    assert delay * 1000 <= result.elapsed_ms < TIMEOUT * 1000


async def test_connection_reset_fails_fast() -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        sock = writer.get_extra_info("socket")
        # Linger 0: closing sends RST instead of FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async with serve(reset) as server:
        result = await fetch(server.url(), timeout=TIMEOUT)
    assert result.outcome == FetchOutcome.REFUSED
    assert result.error is not None
    assert "reset" in result.error
    assert_no_answer(result)
    assert result.elapsed_ms < FAST_MS


async def test_close_without_answer_fails_fast() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    async with serve(hang_up) as server:
        result = await fetch(server.url(), timeout=TIMEOUT)
    assert result.outcome == FetchOutcome.REFUSED
    assert_no_answer(result)
    assert result.elapsed_ms < FAST_MS


async def test_garbage_answer_is_not_ok() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"\x16\x03\x01 this is not HTTP\r\n\r\n")
        await writer.drain()

    async with serve(garbage) as server:
        result = await fetch(server.url(), timeout=TIMEOUT)
    # An answer, if an unusable one: not a refusal, which Windows would retry for 2 s
    assert result.outcome == FetchOutcome.INVALID
    assert result.error is not None
    assert result.error.startswith("not an HTTP answer (")
    assert_no_answer(result)
    assert result.elapsed_ms < FAST_MS


async def test_a_status_line_with_control_characters_is_invalid() -> None:
    async def evil(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 abc \x1b[31mevil\r\n\r\n")
        await writer.drain()

    async with serve(evil) as server:
        result = await fetch(server.url(), timeout=TIMEOUT)
    assert result.outcome == FetchOutcome.INVALID
    assert result.error is not None
    assert "\x1b" not in result.error


# -- URLs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/x.crl", "ldap:///CN=CA?certificateRevocationList"]
)
async def test_unsupported_scheme_is_invalid(url: str) -> None:
    result = await fetch(url, timeout=TIMEOUT)
    assert result.outcome == FetchOutcome.INVALID
    assert result.error is not None
    assert result.error.startswith("bad URL")
    assert_no_answer(result)


@pytest.mark.parametrize("url", ["http://[::1/x.crl", "http://127.0.0.1:99999/x", "http:///x"])
async def test_malformed_url_is_invalid_not_raised(url: str) -> None:
    # URLs come from certificates, so a hostile one must end as an outcome.
    result = await fetch(url, timeout=TIMEOUT)
    assert result.outcome == FetchOutcome.INVALID
    assert_no_answer(result)


async def test_reserved_invalid_domain_is_a_dns_error_without_any_query() -> None:
    calls: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(record)) as client:
        result = await fetch("http://crl.example.invalid/x.crl", timeout=TIMEOUT, client=client)
    assert result.outcome == FetchOutcome.DNS_ERROR
    assert_no_answer(result)
    assert calls == []


# -- classification through an injected client ----------------------------------------------


class FailingTransport(httpx.AsyncHTTPTransport):
    """A transport that fails every request as a real one would, with *cause* underneath."""

    def __init__(self, error: type[httpx.TransportError], cause: BaseException) -> None:
        super().__init__()
        self.error = error
        self.cause = cause
        self.calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        raise self.error(str(self.cause), request=request) from self.cause


async def test_dns_failure_is_a_dns_error() -> None:
    # Given a client whose transport fails name resolution the way getaddrinfo does,
    cause = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    transport = FailingTransport(httpx.ConnectError, cause)
    async with httpx.AsyncClient(transport=transport) as client:
        # when a URL is fetched through it,
        result = await fetch("http://crl.example.test/ca.crl", timeout=TIMEOUT, client=client)
        # then the outcome is a DNS error and the injected client is left open.
        assert not client.is_closed
    assert result.outcome == FetchOutcome.DNS_ERROR
    assert result.error == "name not resolved (Name or service not known)"
    assert_no_answer(result)
    assert transport.calls == 1


@pytest.mark.parametrize(
    ("error", "cause", "outcome", "words"),
    [
        (
            httpx.ConnectError,
            ConnectionRefusedError(111, "refused"),
            FetchOutcome.REFUSED,
            "refused",
        ),
        (httpx.ReadError, ConnectionResetError(104, "reset"), FetchOutcome.REFUSED, "reset"),
        (httpx.ConnectTimeout, TimeoutError(), FetchOutcome.TIMEOUT, "no answer in time"),
        (
            httpx.ConnectError,
            OSError(101, "Network is unreachable"),
            FetchOutcome.REFUSED,
            "failed",
        ),
    ],
)
async def test_transport_failures_are_classified(
    error: type[httpx.TransportError], cause: BaseException, outcome: FetchOutcome, words: str
) -> None:
    async with httpx.AsyncClient(transport=FailingTransport(error, cause)) as client:
        result = await fetch("http://ocsp.example.test/", timeout=TIMEOUT, client=client)
    assert result.outcome == outcome
    assert result.error is not None
    assert words in result.error
    assert_no_answer(result)


async def test_mock_transport_answer_is_used() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"from " + request.url.host.encode())

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        result = await fetch("http://aia.example.test/ca.crt", timeout=TIMEOUT, client=client)
    assert result.outcome == FetchOutcome.OK
    assert result.body == b"from aia.example.test"


# -- environment --------------------------------------------------------------------------------


async def test_proxy_environment_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given proxy variables that point at a closed loopback port,
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as closed:
        closed.bind(("127.0.0.1", 0))
        proxy = f"http://127.0.0.1:{closed.getsockname()[1]}"
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(name, proxy)
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        async with serve(answer(200, "OK", b"direct")) as server:
            # (a client that honours the environment goes to the proxy and is refused,
            async with httpx.AsyncClient(trust_env=True) as honouring:
                control = await fetch(server.url(), timeout=TIMEOUT, client=honouring)
            assert control.outcome == FetchOutcome.REFUSED
            # ) when fetch makes its own client,
            result = await fetch(server.url(), timeout=TIMEOUT)
    # then it goes straight to the server.
    assert result.outcome == FetchOutcome.OK
    assert result.body == b"direct"
    assert server.connections == 1


@pytest.mark.parametrize(
    ("client", "agent"),
    [
        (ClientProfile.WIN7, "Microsoft-CryptoAPI/6.1"),
        (ClientProfile.WIN81, "Microsoft-CryptoAPI/6.3"),
        (ClientProfile.WIN10, "Microsoft-CryptoAPI/10.0"),
    ],
)
async def test_the_user_agent_names_the_modelled_clients_version(
    client: ClientProfile, agent: str
) -> None:
    # WINDOWS.md §4: User-Agent Microsoft-CryptoAPI/<os version>, 6.1 in the Windows 7 log
    seen: list[Request] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        await respond(writer, 404, "Not Found")

    version = USER_AGENT_PREFIX + client.os_version
    async with serve(record) as server:
        # a revocation or AIA fetch, through the client the retrievals share
        async with retrieval_client(TIMEOUT, user_agent=version) as shared:
            await fetch(server.url("/x.crl"), timeout=TIMEOUT, client=shared)
        # and the list sync
        await sync_lists(
            (Purpose.ROOT_LIST,), server.url("/ctl/"), timeout=TIMEOUT, user_agent=version
        )
    assert [r.headers["user-agent"] for r in seen] == [agent, agent]
