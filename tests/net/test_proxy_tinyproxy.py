"""Retrievals through a static HTTP proxy: a real one (Debian's tinyproxy) that forwards,
one that refuses and one that black-holes, all on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
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


# -- PAC scripts and WPAD (WINDOWS.md §6) ------------------------------------------------------


@pytest_asyncio.fixture
async def pac_server() -> AsyncIterator[tuple[int, dict[str, bytes]]]:
    """A loopback HTTP server serving the scripts put in its dict by path; its port."""
    scripts: dict[str, bytes] = {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            path = head.split(" ", 2)[1]
            body = scripts.get(path)
            if body is None:
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            else:
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ns-proxy-autoconfig\r\n"
                    + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                    + body
                )
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, IndexError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1]), scripts
    finally:
        server.close()
        await server.wait_closed()


def pac_to(proxy: str) -> bytes:
    """A PAC script sending every URL through *proxy* (host:port), 'direct.test' direct."""
    return (
        "function FindProxyForURL(url, host) {\n"
        '  if (dnsDomainIs(host, ".direct.test")) return "DIRECT";\n'
        f'  return "PROXY {proxy}; DIRECT";\n'
        "}\n"
    ).encode()


async def test_a_pac_url_sends_the_chain_through_tinyproxy(
    tinyproxy: str, pac_server: tuple[int, dict[str, bytes]], tmp_path: Path
) -> None:
    from rdptrust.net.autoproxy import download_pac

    # Given a PAC script served on loopback that names tinyproxy,
    port, scripts = pac_server
    scripts["/proxy.pac"] = pac_to(tinyproxy.removeprefix("http://"))
    script, download = await download_pac(f"http://127.0.0.1:{port}/proxy.pac", timeout=TIMEOUT)
    assert script is not None, download
    assert download.outcome == FetchOutcome.OK
    assert [a.outcome.value for a in download.attempts] == ["connected"]
    # when a chain's retrievals are routed by it,
    async with PkiResponder(None) as pki:
        ca = LabCa.generate(urls=pki.urls())
        pki.ca = ca
        served = list(ca.issue("rdp01.example.test", dns_names=["rdp01.example.test"]).chain)
        anchors = TrustAnchors((ca.root,), ("test",))
        plan = RetrievalPlan(TIMEOUT, None, route=script.route())
        run = await make_retrievals(
            served, build_path(served, anchors), anchors, plan, pinned=False
        )
    # then they answer, tinyproxy carried them, and each connect went to tinyproxy's port.
    revocation = [f for f in run.fetched if f.purpose in (Purpose.CRL, Purpose.OCSP)]
    assert revocation
    assert all(f.revocation == RevocationStatus.GOOD for f in revocation), revocation
    log = (tmp_path / "tinyproxy.log").read_text(encoding="utf-8", errors="replace")
    assert "/ocsp/MF" in log
    proxy_port = int(tinyproxy.rsplit(":", 1)[1])
    assert all(a.port == proxy_port for f in revocation for a in f.result.attempts)


async def test_a_pac_file_answering_direct_goes_direct(
    tinyproxy: str, recorder: tuple[str, list[dict[str, str]]], tmp_path: Path
) -> None:
    from rdptrust.net.autoproxy import read_pac_file
    from rdptrust.net.http import retrieval_client

    url, seen = recorder
    pac = tmp_path / "direct.pac"
    pac.write_text('function FindProxyForURL(url, host) { return "DIRECT"; }\n')
    script = read_pac_file(pac)
    assert script.proxy_for(url) is None
    async with retrieval_client(TIMEOUT, route=script.route()) as client:
        result = await fetch(url + "/a.crl", timeout=TIMEOUT, client=client)
    assert result.outcome == FetchOutcome.OK
    (headers,) = seen
    assert "via" not in headers  # not through tinyproxy
    assert [a.port for a in result.attempts] == [int(url.rsplit(":", 1)[1])]


def _pinned_lookup(names: dict[str, tuple[str, int]]) -> object:
    """A resolver seam: each name in *names* to one loopback address and port; any other
    name does not resolve (no DNS query is made)."""

    async def lookup(host: str, port: int) -> list[tuple[int, int, int, str, object]]:
        if host in names:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", names[host])]
        if host.replace(".", "").isdigit():
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (host, port))]
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    return lookup


async def test_wpad_finds_the_pac_and_diagnose_goes_through_tinyproxy(
    lab_factory: LabFactory,
    tinyproxy: str,
    pac_server: tuple[int, dict[str, bytes]],
    tmp_path: Path,
) -> None:
    from rdptrust.engine import AssessOptions, assess

    # Given wpad.corp.test served on loopback (through the resolver seam; the longer
    # wpad.office.corp.test does not resolve), naming tinyproxy,
    port, scripts = pac_server
    scripts["/wpad.dat"] = pac_to(tinyproxy.removeprefix("http://"))
    lookup = _pinned_lookup({"wpad.corp.test": ("127.0.0.1", port)})
    lab = await lab_factory(cert="self-signed")
    options = AssessOptions(
        fetch_timeout_s=TIMEOUT,
        probe_timeout_s=5.0,
        root_list_url=lab.root_list_url,
        known_hosts=no_pins(tmp_path / "known_hosts.json"),
        system_trust=False,
        wpad=True,
        wpad_domain="office.corp.test",
        lookup=lookup,  # type: ignore[arg-type]
    )
    # when the host is diagnosed,
    result = await assess(lab.target, options)
    # then WPAD tried wpad.office.corp.test (no name), then wpad.corp.test (the script),
    wpad = [r for r in result.retrievals if r.purpose == Purpose.WPAD]
    assert [(r.url, r.outcome) for r in wpad] == [
        ("http://wpad.office.corp.test/wpad.dat", FetchOutcome.DNS_ERROR),
        ("http://wpad.corp.test/wpad.dat", FetchOutcome.OK),
    ]
    # the lists came through tinyproxy,
    roots = [r for r in result.retrievals if r.purpose == Purpose.ROOT_LIST]
    assert [r.outcome for r in roots] == [FetchOutcome.OK, FetchOutcome.OK]
    log = (tmp_path / "tinyproxy.log").read_text(encoding="utf-8", errors="replace")
    assert "authrootseq.txt" in log
    # and the discovery is a wait of its own, first, resting on the wpad-discovery rule.
    assert all(r.counted for r in wpad)
    assert "wpad-discovery" in {b.rule for b in result.prediction.basis}


async def test_wpad_that_finds_nothing_is_its_own_cause_and_goes_direct(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    from rdptrust.engine import AssessOptions, assess

    lab = await lab_factory(cert="self-signed")
    with socket.socket() as hole:
        # wpad.corp.test resolves to a listener that accepts and never answers
        hole.bind(("127.0.0.1", 0))
        hole.listen(8)
        lookup = _pinned_lookup({"wpad.corp.test": ("127.0.0.1", hole.getsockname()[1])})
        options = AssessOptions(
            fetch_timeout_s=0.5,
            probe_timeout_s=5.0,
            root_list_url=lab.root_list_url,
            known_hosts=no_pins(tmp_path / "known_hosts.json"),
            system_trust=False,
            wpad=True,
            wpad_domain="corp.test",
            lookup=lookup,  # type: ignore[arg-type]
        )
        result = await assess(lab.target, options)
    (wpad,) = [r for r in result.retrievals if r.purpose == Purpose.WPAD]
    assert wpad.outcome == FetchOutcome.TIMEOUT
    # bounded by the URL time-out of the model (15 s), paid at every connection
    assert wpad.wait_s == pytest.approx(15.0)
    cause = next(c for c in result.causes if c.purpose == Purpose.WPAD)
    assert cause.later is True
    assert cause.rule == "wpad-discovery"
    codes = [p.code for p in result.problems]
    assert "wpad-discovery-wait" in codes
    # and with no script found the lists went direct (the lab answers them)
    roots = [r for r in result.retrievals if r.purpose == Purpose.ROOT_LIST]
    assert roots
    assert roots[0].outcome == FetchOutcome.OK


async def test_a_refusing_or_black_holing_proxy_is_charged_as_windows_pays(
    recorder: tuple[str, list[dict[str, str]]],
) -> None:
    from rdptrust.model.windows import WindowsSettings
    from rdptrust.pki.network import result_wait

    url, _ = recorder
    windows = WindowsSettings()
    # a closed proxy port: refused here at once, about 2 s on Windows (WINDOWS.md §6)
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        refused = await fetch(
            url, timeout=TIMEOUT, proxy=f"http://127.0.0.1:{closed.getsockname()[1]}"
        )
    assert [a.outcome.value for a in refused.attempts] == ["refused"]
    charge = result_wait(refused, windows)
    assert (charge.seconds, charge.rule) == (2.0, "tcp-refused-retry")
    # a proxy that accepts and never answers: bounded by the URL time-out (15 s)
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(8)
        silent = await fetch(url, timeout=0.5, proxy=f"http://127.0.0.1:{hole.getsockname()[1]}")
    assert silent.outcome == FetchOutcome.TIMEOUT
    assert [a.outcome.value for a in silent.attempts] == ["connected"]
    assert result_wait(silent, windows).seconds == windows.url_timeout_s


async def test_a_configured_script_comes_before_wpad(tmp_path: Path) -> None:
    from rdptrust.engine import AssessOptions
    from rdptrust.engine.autoproxy import proxy_path

    # WINDOWS.md §6: static netsh winhttp proxy, then the configured settings (a
    # script), then "Automatically detect settings" (WPAD). Every wpad name refuses here.
    asked: list[str] = []

    async def lookup(host: str, port: int) -> list[tuple[int, int, int, str, object]]:
        asked.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    pac = tmp_path / "corp.pac"
    pac.write_text('function FindProxyForURL(url, host) { return "PROXY 127.0.0.1:3128"; }\n')
    base = AssessOptions(
        fetch_timeout_s=TIMEOUT,
        wpad=True,
        wpad_domain="office.corp.test",
        lookup=lookup,  # type: ignore[arg-type]
    )
    # a configured script and WPAD: the script is used and WPAD is never asked
    scripted = await proxy_path(dataclasses.replace(base, pac=str(pac)))
    assert asked == []
    assert scripted.made == ()
    assert scripted.route is not None
    assert scripted.source.startswith("proxy script")
    # WPAD alone: discovery runs
    discovered = await proxy_path(base)
    assert asked
    assert [f.purpose for f in discovered.made] == [Purpose.WPAD] * len(discovered.made)
