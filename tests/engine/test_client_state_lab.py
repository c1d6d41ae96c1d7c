"""The three hand-written client states of tests/vectors/client-state/ against the lab:
each changes the verdict and the predicted wait as WINDOWS.md §2, §3 and §6 say.

- Method 2 applied (§2: ``DisableRootAutoUpdate`` turns the trusted CTL off): a
  self-signed certificate no longer waits for the black-holed root list; the prompt stays.
- An internal CA in Root by Group Policy: the chain is trusted instead of untrusted, so
  revocation is checked (§1 phase 2: only for chains ending in a trusted root) and a
  black-holed CRL becomes the wait.
- A static WinHTTP proxy (§6) and a 5 s ChainUrlRetrievalTimeoutMilliseconds (§3): the
  retrievals are to go through the proxy, and a URL that never answers costs 5 s, not 15.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from fixtures.lab import LabFactory
from rdptrust.engine import AssessOptions, assess
from rdptrust.engine.client_state import load_client_state, options_with_client_state
from rdptrust.lab.runner import Lab
from rdptrust.model.assessment import Assessment
from rdptrust.model.client_state import ClientState, WinHttpProxy
from rdptrust.model.retrieval import Purpose
from rdptrust.net import http
from rdptrust.pki.windows import CTL_PURPOSES as LIST_PURPOSES

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "client-state"
URL_TIMEOUT = 1.0


def vector(name: str) -> ClientState:
    return load_client_state(VECTORS / name)


def base_options(lab: Lab, tmp_path: Path) -> AssessOptions:
    """This machine's judgement: no system store, the lab's root list, no pins."""
    return AssessOptions(
        fetch_timeout_s=URL_TIMEOUT,
        probe_timeout_s=5.0,
        root_list_url=lab.root_list_url,
        known_hosts=tmp_path / "known_hosts.json",
        system_trust=False,
    )


def codes(result: Assessment) -> set[str]:
    return {p.code for p in result.problems}


def counted(result: Assessment, *purposes: Purpose) -> list[str]:
    return [r.outcome.value for r in result.retrievals if r.counted and r.purpose in purposes]


def lab_ca_der(lab: Lab) -> bytes:
    assert lab.ca_cert_path is not None
    cert = x509.load_pem_x509_certificate(lab.ca_cert_path.read_bytes())
    return cert.public_bytes(serialization.Encoding.DER)


async def test_method2_removes_the_root_list_wait(lab_factory: LabFactory, tmp_path: Path) -> None:
    lab = await lab_factory(cert="self-signed", root_list="blackhole")
    # Given this machine's judgement: the three lists of a Windows 10 client (trusted,
    # disallowed, pin rules) are fetched and never answer, 15 s each (WINDOWS.md §2)
    before = await assess(lab.target, base_options(lab, tmp_path))
    assert before.predicted_stall_s == pytest.approx(45.0, abs=1.0)
    assert counted(before, Purpose.ROOT_LIST) == ["timeout"]
    assert before.verdict == "critical"
    # When the client has Method 2 applied
    options = options_with_client_state(base_options(lab, tmp_path), vector("method2.json"))
    assert options.windows.root_update is False
    after = await assess(lab.target, options)
    # Then no root-list wait; Method 2 leaves the disallowed list and the pin rules
    # (WINDOWS.md §2: it turns off the trusted list only), and the prompt stays
    assert after.predicted_stall_s == pytest.approx(30.0, abs=1.0)
    assert counted(after, Purpose.ROOT_LIST) == []
    assert "predicted-stall" in codes(after)
    assert "self-signed-not-pinned" in codes(after)
    assert after.trusted is False
    assert after.verdict == "critical"


async def test_gpo_internal_ca_is_trusted_and_revocation_is_checked(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    lab = await lab_factory(cert="ca", crl="blackhole", require="HYBRID")
    # Given this machine, which does not have the internal CA: untrusted, no revocation
    before = await assess(lab.target, base_options(lab, tmp_path))
    assert before.trusted is False
    assert "untrusted-root" in codes(before) or "incomplete-chain" in codes(before)
    assert counted(before, Purpose.CRL, Purpose.OCSP) == []
    # When the client's Root store holds the CA (deployed by Group Policy)
    state = vector("gpo-internal-ca.json")
    state = dataclasses.replace(state, roots=(*state.roots, lab_ca_der(lab)))
    after = await assess(lab.target, options_with_client_state(base_options(lab, tmp_path), state))
    # Then the chain is trusted, revocation is checked and the black-holed CRL is the wait
    assert after.trusted is True
    assert after.anchor is not None
    assert not codes(after) & {"untrusted-root", "incomplete-chain"}
    assert "timeout" in counted(after, Purpose.CRL)
    assert after.predicted_stall_s == pytest.approx(15.0, abs=1.0)
    assert after.causes[0].purpose == Purpose.CRL
    assert counted(after, Purpose.ROOT_LIST) == []
    assert after.verdict == "critical"


async def test_a_disallowed_ca_distrusts_the_chain(lab_factory: LabFactory, tmp_path: Path) -> None:
    lab = await lab_factory(cert="ca", require="HYBRID")
    trusted = dataclasses.replace(vector("gpo-internal-ca.json"), roots=(lab_ca_der(lab),))
    ok = await assess(lab.target, options_with_client_state(base_options(lab, tmp_path), trusted))
    assert ok.verdict == "ok", ok.problems
    banned = dataclasses.replace(trusted, disallowed=(lab_ca_der(lab),))
    result = await assess(
        lab.target, options_with_client_state(base_options(lab, tmp_path), banned)
    )
    assert result.trusted is False
    assert "disallowed-certificate" in codes(result)
    assert result.verdict == "critical"


class ForwardProxy:
    """A loopback HTTP forward proxy (absolute-form requests) that records what it got."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(10):
                head = await reader.readuntil(b"\r\n\r\n")
                method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
                self.requests.append(target)
                parts = urlsplit(target)
                assert parts.hostname == "127.0.0.1"  # loopback only
                lines = head.decode().split("\r\n")[1:]
                length = next(
                    (
                        int(v)
                        for k, _, v in (ln.partition(":") for ln in lines)
                        if k.lower() == "content-length"
                    ),
                    0,
                )
                body = await reader.readexactly(length) if length else b""
                up_reader, up_writer = await asyncio.open_connection(parts.hostname, parts.port)
                path = parts.path + (f"?{parts.query}" if parts.query else "")
                kept = [ln for ln in lines if ln and not ln.lower().startswith("proxy-")]
                up_writer.write(
                    f"{method} {path or '/'} HTTP/1.1\r\n".encode()
                    + "\r\n".join([*kept, "Connection: close"]).encode()
                    + b"\r\n\r\n"
                    + body
                )
                await up_writer.drain()
                writer.write(await up_reader.read())
                await writer.drain()
        except (TimeoutError, OSError, ValueError, AssertionError, asyncio.IncompleteReadError):
            pass
        finally:
            # the upstream connection too, when its answer never came (a black-holed URL)
            for opened in (up_writer, writer):
                if opened is not None:
                    with contextlib.suppress(OSError):
                        opened.close()


@pytest_asyncio.fixture
async def forward_proxy() -> AsyncIterator[ForwardProxy]:
    proxy = ForwardProxy()
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()


async def test_static_proxy_and_short_url_timeout(
    lab_factory: LabFactory, tmp_path: Path, forward_proxy: ForwardProxy
) -> None:
    lab = await lab_factory(cert="self-signed", root_list="blackhole")
    before = await assess(lab.target, base_options(lab, tmp_path))
    assert before.predicted_stall_s == pytest.approx(45.0, abs=1.0)
    assert before.verdict == "critical"
    state = vector("static-proxy.json")
    assert state.proxy.server == "http=127.0.0.1:3128;https=127.0.0.1:3129"
    # the document's proxy, moved to the port this test's proxy listens on
    state = dataclasses.replace(
        state, proxy=WinHttpProxy(f"http=127.0.0.1:{forward_proxy.port}", state.proxy.bypass)
    )
    options = options_with_client_state(base_options(lab, tmp_path), state)
    # the retrievals are to go through the client's proxy, for http:// URLs
    assert options.proxy == f"http://127.0.0.1:{forward_proxy.port}"
    assert options.windows.url_timeout_s == 5.0
    assert options.windows.disallowed_update is False
    result = await assess(lab.target, options)
    # the never-answering root list costs the list wait (15 s, a setting of its own: no
    # document ties a list fetch to ChainUrlRetrievalTimeoutMilliseconds, WINDOWS.md §2),
    # not the client's 5 s URL time-out
    assert counted(result, Purpose.ROOT_LIST) == ["timeout"]
    assert result.predicted_stall_s == pytest.approx(15.0, abs=0.5)
    assert result.verdict == "critical"
    (cause,) = result.causes
    assert (cause.rule, cause.basis) == ("ctl-fetch-wait", "assumed")
    # and with the list wait set to 5 s, 5 s: under the 10 s critical threshold, a warning
    short = dataclasses.replace(
        options, windows=dataclasses.replace(options.windows, list_timeout_s=5.0)
    )
    result = await assess(lab.target, short)
    assert result.predicted_stall_s == pytest.approx(5.0, abs=0.5)
    assert result.verdict == "warning"
    assert "predicted-stall" in codes(result)
    if "proxy" in inspect.signature(http.fetch).parameters:
        # a fetcher that honours AssessOptions.proxy sends the root list through it
        folder = lab.root_list_url.rsplit("/", 1)[0]
        assert any(r.startswith(folder) for r in forward_proxy.requests)


async def test_the_bypass_list_sends_what_it_names_direct(
    lab_factory: LabFactory, tmp_path: Path, forward_proxy: ForwardProxy
) -> None:
    # Given a client whose WinHTTP proxy bypasses the lab's address (127.0.0.1)
    lab = await lab_factory(cert="self-signed")
    proxy = WinHttpProxy(f"127.0.0.1:{forward_proxy.port}", "<local>;127.0.0.*")
    state = dataclasses.replace(vector("static-proxy.json"), proxy=proxy)
    options = options_with_client_state(base_options(lab, tmp_path), state)
    assert options.proxy_bypass == "<local>;127.0.0.*"
    # When the host is assessed
    result = await assess(lab.target, options)
    # Then the trust lists went direct: the proxy saw none of them, and they answered
    assert set(counted(result, Purpose.ROOT_LIST)) == {"ok"}
    assert forward_proxy.requests == []
    # And without the bypass list the same retrievals go through the proxy
    plain = dataclasses.replace(options, proxy_bypass=None)
    await assess(lab.target, plain)
    folder = lab.root_list_url.rsplit("/", 1)[0]
    assert any(r.startswith(folder) for r in forward_proxy.requests)


async def test_a_root_dir_url_mirror_takes_the_list_syncs_off_windows_update(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    # Given a host whose clients' Windows Update lists are black-holed, and a mirror (a
    # second lab's list folder, which answers)
    lab = await lab_factory(cert="self-signed", root_list="blackhole")
    mirror = await lab_factory(cert="self-signed")
    folder = mirror.root_list_url.rsplit("/", 1)[0] + "/"
    before = await assess(lab.target, base_options(lab, tmp_path))
    assert before.predicted_stall_s == pytest.approx(45.0, abs=1.0)
    # When the clients have RootDirUrl set to the mirror (rule root-dir-url)
    options = base_options(lab, tmp_path)
    options = dataclasses.replace(
        options, windows=dataclasses.replace(options.windows, root_dir_url=folder)
    )
    result = await assess(lab.target, options)
    # Then every list is fetched from the mirror, none from Windows Update's URL, and the
    # wait is gone
    lists = [r for r in result.retrievals if r.purpose in LIST_PURPOSES]
    assert lists
    assert all(r.url.startswith(folder) for r in lists), [r.url for r in lists]
    assert {r.outcome.value for r in lists} == {"ok"}
    assert result.predicted_stall_s is not None
    assert result.predicted_stall_s < 1.0
    assert "root-dir-url" in {b.rule for b in result.prediction.basis}
