"""probe_host and `rdptrust probe` against hosts that are not RDP hosts, over real loopback."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from rdptrust.model.target import Target
from rdptrust.model.wire import SecurityProtocol
from rdptrust.net.probe import probe_host
from rdptrust.protocol.x224 import ConnectionConfirm, NegotiationResponse

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[int]]]:
    servers: list[asyncio.Server] = []
    tasks: set[asyncio.Task[None]] = set()

    async def start(handler: Handler) -> int:
        async def wrapped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            tasks.add(task)
            try:
                await handler(reader, writer)
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                writer.close()
                tasks.discard(task)

        server = await asyncio.start_server(wrapped, "127.0.0.1", 0)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for task in list(tasks):
        task.cancel()
    for server in servers:
        server.close()
        await server.wait_closed()


def closed_port() -> tuple[socket.socket, int]:
    """A port that refuses connections: bound, never listening."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock, sock.getsockname()[1]


async def test_refused() -> None:
    sock, port = closed_port()
    with sock:
        result = await probe_host(Target("127.0.0.1", port), timeout=2)
    assert result.error is not None
    assert result.error.kind == "connect"
    assert "refused" in result.error.message
    assert result.protocols == ()


async def test_silent_host_times_out_within_budget(
    serve: Callable[[Handler], Awaitable[int]],
) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    port = await serve(silent)
    start = time.monotonic()
    result = await probe_host(Target("127.0.0.1", port), timeout=0.5)
    assert time.monotonic() - start < 1.5
    assert result.error is not None
    assert result.error.kind == "timeout"
    assert result.timings.connect_ms is not None


async def test_http_server_is_not_rdp(serve: Callable[[Handler], Awaitable[int]]) -> None:
    async def http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    port = await serve(http)
    result = await probe_host(Target("127.0.0.1", port), timeout=2)
    assert result.error is not None
    assert result.error.kind == "remote_protocol"
    assert "TPKT" in result.error.message


async def test_close_without_answer(serve: Callable[[Handler], Awaitable[int]]) -> None:
    async def close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)

    port = await serve(close)
    result = await probe_host(Target("127.0.0.1", port), timeout=2)
    assert result.error is not None
    assert "without answering" in result.error.message


async def test_tls_refused_after_confirm(serve: Callable[[Handler], Awaitable[int]]) -> None:
    """A host that selects SSL and then sends garbage instead of a ServerHello."""

    async def bad_tls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        confirm = ConnectionConfirm(NegotiationResponse(SecurityProtocol.SSL))
        writer.write(confirm.to_bytes())
        await writer.drain()
        await reader.read(1000)
        writer.write(b"\x15\x03\x03\x00\x02\x02\x28")  # fatal handshake_failure alert
        await writer.drain()

    port = await serve(bad_tls)
    result = await probe_host(Target("127.0.0.1", port), timeout=2, enumerate_protocols=False)
    assert result.error is not None
    assert result.error.kind == "tls"
    assert result.negotiation is not None
    assert result.negotiation.selected == SecurityProtocol.SSL


def _client_hello_extensions(record: bytes) -> dict[int, bytes]:
    """The extensions of the ClientHello in the first TLS record, by type."""
    assert record[0] == 0x16  # handshake
    body = record[5 : 5 + int.from_bytes(record[3:5], "big")]
    assert body[0] == 0x01  # ClientHello
    hello = body[4 : 4 + int.from_bytes(body[1:4], "big")]
    offset = 2 + 32
    offset += 1 + hello[offset]  # session id
    offset += 2 + int.from_bytes(hello[offset : offset + 2], "big")  # cipher suites
    offset += 1 + hello[offset]  # compression methods
    end = offset + 2 + int.from_bytes(hello[offset : offset + 2], "big")
    offset += 2
    found = {}
    while offset < end:
        kind = int.from_bytes(hello[offset : offset + 2], "big")
        size = int.from_bytes(hello[offset + 2 : offset + 4], "big")
        found[kind] = hello[offset + 4 : offset + 4 + size]
        offset += 4 + size
    return found


async def test_client_hello_offers_the_groups_windows_offers(
    serve: Callable[[Handler], Awaitable[int]],
) -> None:
    # Given a host that selects SSL and keeps the ClientHello it receives
    hellos: list[bytes] = []

    async def keep_hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(ConnectionConfirm(NegotiationResponse(SecurityProtocol.SSL)).to_bytes())
        await writer.drain()
        header = await reader.readexactly(5)
        hellos.append(header + await reader.readexactly(int.from_bytes(header[3:5], "big")))

    port = await serve(keep_hello)
    await probe_host(
        Target("127.0.0.1", port),
        timeout=2,
        enumerate_protocols=False,
        enumerate_tls_versions=False,
        standard_security=False,
        ntlm=False,
    )
    # Then it offers X25519, P-256 and P-384 with one X25519 key share, like SChannel,
    # and no post-quantum hybrid share: the whole ClientHello is one small segment
    (hello,) = hellos
    extensions = _client_hello_extensions(hello)
    groups = extensions[0x000A]
    assert [int.from_bytes(groups[i : i + 2], "big") for i in range(2, len(groups), 2)] == [
        0x001D,
        0x0017,
        0x0018,
    ]
    shares = extensions[0x0033]
    assert int.from_bytes(shares[2:4], "big") == 0x001D  # the only share: X25519
    assert len(shares) == 2 + 4 + 32
    assert len(hello) < 600


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rdptrust.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_cli_refused_is_exit_3_one_line() -> None:
    sock, port = closed_port()
    with sock:
        proc = run_cli("probe", f"127.0.0.1:{port}", "--timeout", "2")
    assert proc.returncode == 3
    assert proc.stderr.strip().count("\n") == 0
    assert proc.stderr.startswith("rdptrust: error:")
    assert "Traceback" not in proc.stderr + proc.stdout


def test_cli_json_on_failure_is_still_one_document() -> None:
    sock, port = closed_port()
    with sock:
        proc = run_cli("probe", f"127.0.0.1:{port}", "--timeout", "2", "--json")
    doc = json.loads(proc.stdout)
    assert proc.returncode == 3
    assert doc["error"]["kind"] == "connect"
    assert doc["certificate"] is None


@pytest.mark.parametrize(
    "args",
    [
        ["probe"],
        ["probe", "host:notaport"],
        ["probe", "host:70000"],
        ["probe", "host", "--timeout", "-1"],
        ["probe", "[::1"],
        ["nosuchcommand"],
    ],
)
def test_cli_usage_errors_exit_64(args: list[str]) -> None:
    proc = run_cli(*args)
    assert proc.returncode == 64, proc.stderr
    assert proc.stderr.startswith("rdptrust: error:")
    assert "Traceback" not in proc.stderr


def test_cli_help_has_examples() -> None:
    proc = run_cli("probe", "--help")
    assert proc.returncode == 0
    assert "Examples:" in proc.stdout
    assert "--json" in proc.stdout
