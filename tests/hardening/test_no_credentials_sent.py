"""A CDP/AIA/OCSP URL with user information (``http://user:pass@host/...``) is fetched
without it: no ``Authorization`` header, no userinfo anywhere in the request, on the first
request and on a redirect to another such URL (CryptoAPI never sends credentials it reads
from a certificate, and rdptrust never sends credentials at all)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import pytest

from rdptrust.model.retrieval import FetchOutcome
from rdptrust.net.http import fetch, retrieval_client, without_userinfo


class Recorder:
    """A loopback HTTP server keeping every request head it receives."""

    def __init__(self) -> None:
        self.heads: list[bytes] = []
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        except (asyncio.IncompleteReadError, TimeoutError):
            writer.close()
            return
        self.heads.append(head)
        if head.startswith((b"GET /redirect", b"POST /redirect")):
            location = f"http://bob:hunter2@127.0.0.1:{self.port}/answer"
            writer.write(
                f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n"
                "Connection: close\r\n\r\n".encode()
            )
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    server_state = Recorder()
    server = await asyncio.start_server(server_state.handle, "127.0.0.1", 0)
    server_state.port = server.sockets[0].getsockname()[1]
    async with server:
        yield server_state


SECRETS = (b"alice", b"s3cret", b"bob", b"hunter2", base64.b64encode(b"alice:s3cret"))


def _clean(heads: list[bytes]) -> None:
    assert heads
    for head in heads:
        assert b"authorization" not in head.lower(), head
        for secret in SECRETS:
            assert secret not in head, head


@pytest.mark.parametrize("path", ["/crl/ca.crl", "/redirect"])
@pytest.mark.parametrize("shared_client", [False, True])
async def test_get_with_userinfo_sends_no_credentials(
    recorder: Recorder, path: str, shared_client: bool
) -> None:
    url = f"http://alice:s3cret@127.0.0.1:{recorder.port}{path}"
    if shared_client:
        async with retrieval_client(5.0) as client:
            result = await fetch(url, timeout=5.0, client=client)
    else:
        result = await fetch(url, timeout=5.0)
    assert result.outcome == FetchOutcome.OK, result.detail
    assert result.body == b"ok"
    _clean(recorder.heads)
    assert len(recorder.heads) == (2 if path == "/redirect" else 1)


async def test_ocsp_post_with_userinfo_sends_no_credentials(recorder: Recorder) -> None:
    result = await fetch(
        f"http://alice:s3cret@127.0.0.1:{recorder.port}/ocsp",
        timeout=5.0,
        method="POST",
        content=b"\x30\x00",
        content_type="application/ocsp-request",
    )
    assert result.outcome == FetchOutcome.OK, result.detail
    _clean(recorder.heads)
    assert recorder.heads[0].startswith(b"POST /ocsp ")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://u:p@h.test/a.crl", "http://h.test/a.crl"),
        ("http://u@h.test:8080/x?y=1", "http://h.test:8080/x?y=1"),
        ("http://a:b@c@h.test/", "http://h.test/"),
        ("http://h.test/a.crl", "http://h.test/a.crl"),
    ],
)
def test_without_userinfo(url: str, expected: str) -> None:
    assert without_userinfo(url) == expected
