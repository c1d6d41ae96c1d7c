"""Hostile PKI responders against rdptrust's memory: a ``gzip, gzip`` decompression bomb,
and hundreds of CRL URLs of a few MiB each. The client runs in a subprocess whose peak
resident size (``ru_maxrss``) is read; the servers run here, on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from pki.certs_for_tests import issue
from rdptrust.lab.pki import PkiModes, PkiResponder, ResponderMode
from rdptrust.lab.pki.content import BOMB_INFLATED_BYTES

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"),
    reason="peak resident size is read with getrusage, whose unit differs off Linux",
)

MIB = 1024 * 1024
#: The ceiling the bomb must stay under, as the hardening issue sets it.
BOMB_PEAK_LIMIT_MIB = 120
CRL_URLS = 400
#: Body bytes in flight at once in the bounded run (the retrievals' budget).
BUDGET_MIB = 4


async def _client(script: str, *args: str) -> dict[str, float]:
    """Run *script* in a fresh interpreter; its last stdout line is a JSON object."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        textwrap.dedent(script),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    out, err = await asyncio.wait_for(process.communicate(), 240)
    assert process.returncode == 0, err.decode(errors="replace")
    result: dict[str, float] = json.loads(out.decode().strip().splitlines()[-1])
    return result


_BOMB_CLIENT = """
import asyncio, json, resource, sys
from rdptrust.net.http import fetch

def peak_mib():
    # VmHWM is this process's own peak; ru_maxrss keeps the parent's across exec
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

before = peak_mib()
result = asyncio.run(fetch(sys.argv[1], timeout=20.0))
print(json.dumps({"before": before, "after": peak_mib(), "outcome": result.outcome.value,
                  "error": result.error}))
"""


async def test_gzip_gzip_bomb_stays_under_120_mib() -> None:
    # Given a CRL URL that answers a few KiB of "Content-Encoding: gzip, gzip" that
    # inflate to 2 GiB,
    assert BOMB_INFLATED_BYTES == 2 * 1024 * MIB
    async with PkiResponder(None, PkiModes(crl=ResponderMode("gzip-bomb"))) as pki:
        # when rdptrust fetches it,
        seen = await _client(_BOMB_CLIENT, pki.crl_url("intermediate"))
    # then the answer is unusable data and the peak memory stays low.
    assert seen["outcome"] == "invalid", seen
    assert "Content-Encoding gzip, gzip" in str(seen["error"])
    assert seen["after"] < BOMB_PEAK_LIMIT_MIB, seen
    print(f"gzip,gzip bomb: peak RSS {seen['before']:.0f} -> {seen['after']:.0f} MiB")


def _crl(issuer_cert: x509.Certificate, key: object, entries: int, padding: int) -> bytes:
    """A CRL of *entries* revoked serials and *padding* bytes of a private, non-critical
    extension (a large CRL made fast: the parser and the signature still see every byte)."""
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer_cert.subject)
        .last_update(now - dt.timedelta(minutes=1))
        .next_update(now + dt.timedelta(days=1))
        .add_extension(
            x509.UnrecognizedExtension(
                x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"),
                b"\x04\x84" + padding.to_bytes(4) + b"\xa5" * padding,
            ),
            critical=False,
        )
    )
    for serial in range(1, entries + 1):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(now - dt.timedelta(days=1))
            .build()
        )
    der: bytes = builder.sign(key, hashes.SHA256()).public_bytes(  # type: ignore[arg-type]
        serialization.Encoding.DER
    )
    return der


@pytest_asyncio.fixture
async def many_crls(tmp_path: Path) -> AsyncIterator[tuple[Path, Path, int]]:
    """A CA, a leaf naming CRL_URLS CRL URLs, and a server answering each with the same
    CRL of 1 MiB; yields the leaf and root PEM files and the CRL's size."""
    root = issue("Memory Root", ca=True, days=3650)
    urls: list[str] = []
    server: asyncio.Server | None = None
    body = _crl(root.cert, root.key, 2_000, MIB)
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(head)
            view = memoryview(body)
            for start in range(0, len(body), 256 * 1024):
                writer.write(view[start : start + 256 * 1024])
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=512)
    port = server.sockets[0].getsockname()[1]
    urls = [f"http://127.0.0.1:{port}/{n}.crl" for n in range(CRL_URLS)]
    leaf = issue("rdp-memory.example.test", issuer=root, crl_urls=urls)
    leaf_pem = tmp_path / "leaf.pem"
    root_pem = tmp_path / "root.pem"
    leaf_pem.write_bytes(leaf.pem)
    root_pem.write_bytes(root.pem)
    try:
        yield leaf_pem, root_pem, len(body)
    finally:
        server.close()
        await server.wait_closed()


_CRL_CLIENT = """
import asyncio, json, resource, sys
from cryptography import x509
from rdptrust.engine.retrievals import RetrievalPlan, make_retrievals
from rdptrust.pki.limits import RetrievalLimits
from rdptrust.pki.trust import TrustAnchors, build_path

def peak_mib():
    # VmHWM is this process's own peak; ru_maxrss keeps the parent's across exec
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

leaf = x509.load_pem_x509_certificate(open(sys.argv[1], "rb").read())
root = x509.load_pem_x509_certificate(open(sys.argv[2], "rb").read())
budget = int(sys.argv[3])
anchors = TrustAnchors((root,), ("test",))
path = build_path([leaf], anchors)
plan = RetrievalPlan(60.0, None, limits=RetrievalLimits(revocation_urls_per_cert=1000),
                     budget_bytes=budget)
before = peak_mib()
run = asyncio.run(make_retrievals([leaf], path, anchors, plan, pinned=False))
good = sum(1 for f in run.fetched if f.revocation is not None and f.revocation.value == "good")
print(json.dumps({"before": before, "after": peak_mib(), "good": good,
                  "fetched": len(run.fetched)}))
"""


async def test_hundreds_of_crl_urls_stay_bounded_by_the_budget(
    many_crls: tuple[Path, Path, int],
) -> None:
    # Given a leaf with 400 CRL URLs, each answering a CRL of 1 MiB (400 MiB in all),
    leaf, root, size = many_crls
    assert size > MIB
    # when every one is fetched and judged with a 4 MiB body budget,
    bounded = await _client(_CRL_CLIENT, str(leaf), str(root), str(BUDGET_MIB * MIB))
    # then each CRL was judged, and the peak grew by far less than the bodies' sum:
    # the budget, one body over it, one being judged, and the connections' buffers.
    assert bounded["fetched"] == CRL_URLS
    assert bounded["good"] == CRL_URLS
    grown = bounded["after"] - bounded["before"]
    total_mib = CRL_URLS * size / MIB
    assert grown < 60, (grown, total_mib)
    print(
        f"{CRL_URLS} CRLs of {size / MIB:.1f} MiB ({total_mib:.0f} MiB): peak RSS "
        f"{bounded['before']:.0f} -> {bounded['after']:.0f} MiB"
    )
