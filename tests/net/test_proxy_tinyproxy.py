"""Retrievals through a static HTTP proxy: a real one (Debian's tinyproxy) that forwards,
one that refuses and one that black-holes, all on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from fixtures.cli import no_pins
from fixtures.cli import run_rdptrust as rdptrust
from fixtures.lab import LabFactory
from fixtures.peers import free_port, wait_for_port
from rdptrust.engine.retrievals import RetrievalPlan, make_retrievals
from rdptrust.lab.certs import LabCa
from rdptrust.lab.pki import PkiResponder
from rdptrust.model.retrieval import FetchOutcome, Purpose, RevocationStatus
from rdptrust.net.http import fetch
from rdptrust.pki.trust import TrustAnchors, build_path

TIMEOUT = 2.0


@pytest.fixture
def tinyproxy(tmp_path: Path) -> Iterator[str]:
    """A tinyproxy on 127.0.0.1 with its own configuration (its log is tinyproxy.log in
    the test's folder); its URL."""
    binary = shutil.which("tinyproxy") or (
        "/usr/bin/tinyproxy" if Path("/usr/bin/tinyproxy").exists() else None
    )
    if binary is None:
        pytest.skip("tinyproxy is not installed (Debian package tinyproxy; .ci/run installs it)")
    port = free_port()
    config = tmp_path / "tinyproxy.conf"
    config.write_text(
        f"Port {port}\nListen 127.0.0.1\nTimeout 5\nAllow 127.0.0.1\nMaxClients 16\n"
        f'LogFile "{tmp_path / "tinyproxy.log"}"\nLogLevel Info\n'
        "DisableViaHeader No\n",
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [binary, "-d", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest_asyncio.fixture
async def recorder() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """A loopback server that answers 200 and records each request's headers."""
    seen: list[dict[str, str]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            headers = {}
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name:
                    headers[name.strip().lower()] = value.strip()
            seen.append(headers)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", seen
    finally:
        server.close()
        await server.wait_closed()


async def test_fetch_goes_through_the_proxy(
    tinyproxy: str, recorder: tuple[str, list[dict[str, str]]]
) -> None:
    url, seen = recorder
    result = await fetch(url + "/a.crl", timeout=TIMEOUT, proxy=tinyproxy)
    assert result.outcome == FetchOutcome.OK
    assert result.body == b"ok"
    (headers,) = seen
    assert "tinyproxy" in headers.get("via", "")
    assert "accept-encoding" not in headers


async def test_a_whole_chain_is_fetched_through_tinyproxy(tinyproxy: str, tmp_path: Path) -> None:
    # Given the lab's responders and a chain whose URLs point at them,
    async with PkiResponder(None) as pki:
        ca = LabCa.generate(urls=pki.urls())
        pki.ca = ca
        host = ca.issue("rdp01.example.test", dns_names=["rdp01.example.test"])
        served = list(host.chain)
        anchors = TrustAnchors((ca.root,), ("test",))
        plan = RetrievalPlan(TIMEOUT, None, proxy=tinyproxy)
        # when the retrievals go through the proxy,
        run = await make_retrievals(
            served, build_path(served, anchors), anchors, plan, pinned=False
        )
    # then the OCSP GETs and the CRLs reach the responder and answer.
    assert any(r.path.startswith("/ocsp/MF") for r in pki.requests)
    revocation = [f for f in run.fetched if f.purpose in (Purpose.CRL, Purpose.OCSP)]
    assert revocation
    assert all(f.revocation == RevocationStatus.GOOD for f in revocation), revocation
    # (and the proxy says it carried them)
    log = (tmp_path / "tinyproxy.log").read_text(encoding="utf-8", errors="replace")
    assert "/ocsp/MF" in log
    assert ".crl" in log


async def test_proxy_that_cannot_reach_the_server_answers_an_http_error(tinyproxy: str) -> None:
    dead = free_port()
    result = await fetch(f"http://127.0.0.1:{dead}/x.crl", timeout=TIMEOUT, proxy=tinyproxy)
    assert result.outcome == FetchOutcome.HTTP_ERROR
    assert result.status is not None
    assert result.status >= 500


async def test_refusing_proxy_is_refused_fast(
    recorder: tuple[str, list[dict[str, str]]],
) -> None:
    url, seen = recorder
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        proxy = f"http://127.0.0.1:{closed.getsockname()[1]}"
        result = await fetch(url, timeout=TIMEOUT, proxy=proxy)
    assert result.outcome == FetchOutcome.REFUSED
    assert result.elapsed_ms < 1000
    assert seen == []


async def test_black_hole_proxy_times_out(recorder: tuple[str, list[dict[str, str]]]) -> None:
    url, seen = recorder
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(8)  # accepted by the kernel, never answered
        proxy = f"http://127.0.0.1:{hole.getsockname()[1]}"
        result = await fetch(url, timeout=0.5, proxy=proxy)
    assert result.outcome == FetchOutcome.TIMEOUT
    assert 400 <= result.elapsed_ms < 2000
    assert seen == []


async def test_diagnose_proxy_option_takes_the_proxy_path(
    lab_factory: LabFactory, tinyproxy: str, tmp_path: Path
) -> None:
    # Given a lab host whose root list answers, and tinyproxy in front of it,
    lab = await lab_factory(cert="self-signed")
    store = tmp_path / "known_hosts.json"
    no_pins(store)
    base = ("diagnose", str(lab.target), "--fetch-timeout", "2", "--json")
    base += ("--root-list-url", lab.root_list_url, "--known-hosts", str(store))
    # when diagnose goes through the proxy, the root list arrives through it;
    code, out, err = await rdptrust(*base, "--proxy", tinyproxy)
    assert code in (0, 1, 2), err
    # (the sequence file, then the cab: WINDOWS.md §2)
    roots = [r for r in json.loads(out)["retrievals"] if r["purpose"] == "root_list"]
    assert [r["outcome"] for r in roots] == ["ok", "ok"]
    log = (tmp_path / "tinyproxy.log").read_text(encoding="utf-8", errors="replace")
    assert "authrootseq.txt" in log
    assert "authrootstl.cab" in log
    # and through a proxy that refuses, the retrieval is refused, not made directly.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        refusing = f"http://127.0.0.1:{closed.getsockname()[1]}"
        code, out, err = await rdptrust(*base, "--proxy", refusing)
    root = next(r for r in json.loads(out)["retrievals"] if r["purpose"] == "root_list")
    assert root["outcome"] == "refused", err
