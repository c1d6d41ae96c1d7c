"""HTTPS retrievals verify servers with one TLS context per process and CA bundle."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import certifi
import httpx
import pytest

from rdptrust.lab.certs import LabCa, make_host_credentials
from rdptrust.model.retrieval import FetchOutcome
from rdptrust.net.http import fetch, retrieval_client, verify_context


@contextlib.asynccontextmanager
async def https_server(chain: Path, key: Path) -> AsyncIterator[str]:
    """An HTTPS server on 127.0.0.1:0 answering 200 "ok" with *chain*; yields its URL."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain, key)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"https://127.0.0.1:{port}/aia/issuer.crt"
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture(scope="module")
def two_cas(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, Path]:
    """Root bundles of two CAs (a, b) and a 127.0.0.1 chain and key issued by a."""
    where = tmp_path_factory.mktemp("cas")
    a, b = LabCa.generate("Bundle A Root"), LabCa.generate("Bundle B Root")
    chain, key = make_host_credentials("ca", ca=a).write_pem(where)
    return a.write_root_pem(where / "a.pem"), b.write_root_pem(where / "b.pem"), chain, key


async def test_retrieval_clients_share_one_context() -> None:
    first, second = retrieval_client(5.0), retrieval_client(5.0)
    try:
        contexts = {id(client._transport._pool._ssl_context) for client in (first, second)}
    finally:
        await first.aclose()
        await second.aclose()
    assert contexts == {id(verify_context(certifi.where()))}


def test_the_shared_context_trusts_and_checks_as_httpx_default_does() -> None:
    shared = verify_context(certifi.where())
    fresh = httpx.create_ssl_context(trust_env=False)
    assert shared.get_ca_certs() == fresh.get_ca_certs()
    assert len(shared.get_ca_certs()) > 50  # the bundle, not an empty store
    assert (shared.verify_mode, shared.check_hostname) == (ssl.CERT_REQUIRED, True)
    assert (shared.verify_mode, shared.check_hostname) == (fresh.verify_mode, fresh.check_hostname)
    assert shared.verify_flags == fresh.verify_flags
    assert shared.options == fresh.options
    assert shared.minimum_version == fresh.minimum_version


async def test_each_bundle_has_its_own_context(two_cas: tuple[Path, Path, Path, Path]) -> None:
    bundle_a, bundle_b, chain, key = two_cas
    context_a, context_b = verify_context(str(bundle_a)), verify_context(str(bundle_b))
    assert context_a is not context_b
    assert verify_context(str(bundle_a)) is context_a
    async with https_server(chain, key) as url:
        outcomes = {}
        for name, verify in (
            ("a, shared", context_a),
            ("a, fresh", ssl.create_default_context(cafile=bundle_a)),
            ("b, shared", context_b),
            ("b, fresh", ssl.create_default_context(cafile=bundle_b)),
            ("a, shared again", verify_context(str(bundle_a))),
        ):
            async with httpx.AsyncClient(verify=verify, trust_env=False) as client:
                outcomes[name] = (await fetch(url, timeout=5.0, client=client)).outcome
        # the retrieval client trusts certifi's bundle, which holds neither CA
        async with retrieval_client(5.0) as client:
            outcomes["certifi"] = (await fetch(url, timeout=5.0, client=client)).outcome
    assert outcomes["a, shared"] == outcomes["a, fresh"] == outcomes["a, shared again"]
    assert outcomes["a, shared"] == FetchOutcome.OK
    assert outcomes["b, shared"] == outcomes["b, fresh"] == outcomes["certifi"]
    assert outcomes["b, shared"] != FetchOutcome.OK
