"""The lab's PKI responders on real loopback sockets, checked by httpx, raw sockets and peers.

Peers: OpenSSL (``openssl ocsp``, ``openssl crl``) and cabextract / gcab (Debian packages
``cabextract``, ``gcab``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import shutil
import socket
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509 import ocsp

from rdptrust.errors import UsageError
from rdptrust.lab.certs import CertKind, HostCredentials, LabCa, make_host_credentials
from rdptrust.lab.pki import (
    DISALLOWED_LIST_PATH,
    MAX_BODY_BYTES,
    MAX_HEADER_BYTES,
    PURPOSES,
    ROOT_LIST_PATH,
    PkiModes,
    PkiResponder,
    Purpose,
    ResponderMode,
    build_cabinet,
)

SHORT = 0.3


@pytest.fixture(scope="module")
def shared_ca() -> LabCa:
    """A CA for tests that only read from it (no revocations)."""
    return LabCa.generate()


@pytest.fixture(scope="module")
def shared_host(shared_ca: LabCa) -> HostCredentials:
    return make_host_credentials(CertKind.CA, ca=shared_ca)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # trust_env=False: no proxy from the environment may carry lab traffic elsewhere.
    async with httpx.AsyncClient(trust_env=False, timeout=5.0) as http:
        yield http


def ocsp_request(cert: x509.Certificate, issuer: x509.Certificate, nonce: bytes = b"") -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())
    if nonce:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def purpose_url(pki: PkiResponder, purpose: Purpose) -> str:
    urls = pki.urls()
    return {
        "root_list": pki.root_list_url,
        "aia": urls.ca_issuers,
        "crl": urls.crl,
        "ocsp": urls.ocsp,
    }[purpose] or ""


async def fetch(
    http: httpx.AsyncClient,
    pki: PkiResponder,
    purpose: Purpose,
    host: HostCredentials,
    timeout: float = 5.0,
) -> httpx.Response:
    url = purpose_url(pki, purpose)
    if purpose == "ocsp":
        body = ocsp_request(host.leaf, host.chain[1])
        return await http.post(
            url,
            content=body,
            headers={"content-type": "application/ocsp-request"},
            timeout=timeout,
        )
    return await http.get(url, timeout=timeout)


def parses(purpose: Purpose, content: bytes) -> bool:
    """Does *content* parse as what *purpose* serves?"""
    if purpose == "root_list":
        return content[:4] == b"MSCF" and int.from_bytes(content[8:12], "little") == len(content)
    loaders: dict[str, Callable[[bytes], object]] = {
        "aia": x509.load_der_x509_certificate,
        "crl": x509.load_der_x509_crl,
        "ocsp": ocsp.load_der_ocsp_response,
    }
    loader = loaders[purpose]
    try:
        loader(content)
    except ValueError:
        return False
    return True


# -- modes ---------------------------------------------------------------------------------


def modes_with(purpose: Purpose, mode: str) -> PkiModes:
    return PkiModes(**{purpose: ResponderMode.parse(mode)})


@pytest.mark.parametrize("purpose", PURPOSES)
async def test_ok(
    purpose: Purpose, shared_ca: LabCa, shared_host: HostCredentials, client: httpx.AsyncClient
) -> None:
    async with PkiResponder(shared_ca) as pki:
        response = await fetch(client, pki, purpose, shared_host)
        assert response.status_code == 200
        assert parses(purpose, response.content)
        assert (
            response.headers["content-type"]
            == {
                "root_list": "application/vnd.ms-cab-compressed",
                "aia": "application/pkix-cert",
                "crl": "application/pkix-crl",
                "ocsp": "application/ocsp-response",
            }[purpose]
        )
        assert [request.purpose for request in pki.requests] == [purpose]


@pytest.mark.parametrize("purpose", PURPOSES)
async def test_delay(
    purpose: Purpose, shared_ca: LabCa, shared_host: HostCredentials, client: httpx.AsyncClient
) -> None:
    async with PkiResponder(shared_ca, modes_with(purpose, f"delay:{SHORT}")) as pki:
        started = time.monotonic()
        response = await fetch(client, pki, purpose, shared_host)
        elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert parses(purpose, response.content)
    assert SHORT <= elapsed < SHORT + 2


@pytest.mark.parametrize("purpose", PURPOSES)
async def test_blackhole_accepts_reads_and_never_answers(
    purpose: Purpose, shared_ca: LabCa, shared_host: HostCredentials, client: httpx.AsyncClient
) -> None:
    async with PkiResponder(shared_ca, modes_with(purpose, "blackhole")) as pki:
        url = httpx.URL(purpose_url(pki, purpose))
        assert url.port == pki.port
        # TCP connect succeeds and the request is read ...
        reader, writer = await asyncio.open_connection(url.host, url.port)
        try:
            writer.write(f"GET {url.raw_path.decode()} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            await writer.drain()
            # ... but no byte ever comes back.
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(reader.read(1), SHORT)
            assert [request.purpose for request in pki.requests] == [purpose]
        finally:
            writer.close()
            await writer.wait_closed()
        # An HTTP client sees a read time-out, as Windows would.
        with pytest.raises(httpx.ReadTimeout):
            await fetch(client, pki, purpose, shared_host, timeout=SHORT)


@pytest.mark.parametrize("purpose", PURPOSES)
async def test_refuse(
    purpose: Purpose, shared_ca: LabCa, shared_host: HostCredentials, client: httpx.AsyncClient
) -> None:
    async with PkiResponder(shared_ca, modes_with(purpose, "refuse")) as pki:
        url = httpx.URL(purpose_url(pki, purpose))
        assert url.port != pki.port
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection(url.host, url.port)
        with pytest.raises(httpx.ConnectError):
            await fetch(client, pki, purpose, shared_host)
        # Other purposes still answer on the real port.
        other = next(p for p in PURPOSES if p != purpose)
        assert (await fetch(client, pki, other, shared_host)).status_code == 200
        refused_port = url.port
    # Once stopped, the refusing port is released too.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", refused_port))


@pytest.mark.parametrize("purpose", PURPOSES)
async def test_404(
    purpose: Purpose, shared_ca: LabCa, shared_host: HostCredentials, client: httpx.AsyncClient
) -> None:
    async with PkiResponder(shared_ca, modes_with(purpose, "404")) as pki:
        response = await fetch(client, pki, purpose, shared_host)
    assert response.status_code == 404
    assert not parses(purpose, response.content)


@pytest.mark.parametrize("purpose", PURPOSES)
async def test_garbage(
    purpose: Purpose, shared_ca: LabCa, shared_host: HostCredentials, client: httpx.AsyncClient
) -> None:
    async with PkiResponder(shared_ca, modes_with(purpose, "garbage")) as pki:
        response = await fetch(client, pki, purpose, shared_host)
    assert response.status_code == 200
    assert response.content
    assert not parses(purpose, response.content)


async def test_latency_applies_to_every_answer(
    shared_ca: LabCa, shared_host: HostCredentials, client: httpx.AsyncClient
) -> None:
    async with PkiResponder(shared_ca, latency_ms=int(SHORT * 1000)) as pki:
        for purpose in ("crl", "ocsp"):
            started = time.monotonic()
            response = await fetch(client, pki, purpose, shared_host)
            assert time.monotonic() - started >= SHORT
            assert response.status_code == 200
        started = time.monotonic()
        assert (await client.get(pki.base_url + "/nothing-here")).status_code == 404
        assert time.monotonic() - started >= SHORT
    assert [request.purpose for request in pki.requests] == ["crl", "ocsp", "other"]


async def test_without_a_ca_only_the_root_list_answers(client: httpx.AsyncClient) -> None:
    async with PkiResponder(None) as pki:
        assert (await client.get(pki.root_list_url)).status_code == 200
        for url in (pki.aia_url("root"), pki.crl_url("intermediate"), pki.ocsp_url + "/AA"):
            assert (await client.get(url)).status_code == 404
        # A CA attached later (its certificates carry the responder's URLs) is served.
        ca = LabCa.generate(urls=pki.urls())
        pki.ca = ca
        cdp = ca.intermediate.extensions.get_extension_for_class(x509.CRLDistributionPoints)
        full_name = cdp.value[0].full_name
        assert full_name is not None
        response = await client.get(full_name[0].value)
        assert x509.load_der_x509_crl(response.content).issuer == ca.root.subject


async def test_urls_and_head(shared_ca: LabCa, client: httpx.AsyncClient) -> None:
    async with PkiResponder(shared_ca) as pki:
        assert pki.base_url == f"http://127.0.0.1:{pki.port}"
        assert pki.root_list_url == pki.base_url + ROOT_LIST_PATH
        urls = pki.urls()
        assert urls.ca_issuers == pki.base_url + "/aia/intermediate.crt"
        assert urls.root_ca_issuers == pki.base_url + "/aia/root.crt"
        aia = await client.get(urls.root_ca_issuers or "")
        assert x509.load_der_x509_certificate(aia.content) == shared_ca.root
        head = await client.head(urls.ca_issuers or "")
        assert head.status_code == 200
        assert head.content == b""
        assert int(head.headers["content-length"]) == len(
            shared_ca.intermediate.public_bytes(serialization.Encoding.DER)
        )
        assert (await client.post(urls.crl or "", content=b"x")).status_code == 405
    with pytest.raises(UsageError, match="not running"):
        _ = pki.base_url


# -- limits and stopping -------------------------------------------------------------------


async def raw_exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        chunks = []
        async with asyncio.timeout(timeout):
            while chunk := await reader.read(65536):
                chunks.append(chunk)
        return b"".join(chunks)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def test_oversized_headers_and_bodies_are_refused(shared_ca: LabCa) -> None:
    async with PkiResponder(shared_ca) as pki:
        big_header = b"X-Filler: " + b"a" * (MAX_HEADER_BYTES + 10) + b"\r\n"
        answer = await raw_exchange(
            pki.port, b"GET / HTTP/1.1\r\nHost: x\r\n" + big_header + b"\r\n"
        )
        assert answer.startswith(b"HTTP/1.1 431 ")
        body = b"0" * (MAX_BODY_BYTES + 1)
        answer = await raw_exchange(
            pki.port,
            b"POST /ocsp HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body,
        )
        assert answer.startswith(b"HTTP/1.1 413 ")
        answer = await raw_exchange(pki.port, b"NOT HTTP AT ALL\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 400 ")


async def test_every_answer_closes_its_connection(shared_ca: LabCa) -> None:
    async with PkiResponder(shared_ca) as pki:
        # Two requests in one write: the first is answered, then the connection closes.
        request = b"GET /aia/root.crt HTTP/1.1\r\nHost: x\r\n\r\n"
        answer = await raw_exchange(pki.port, request * 2)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ")
        assert b"connection: close" in head.lower()
        assert x509.load_der_x509_certificate(body) == shared_ca.root
        assert [request.purpose for request in pki.requests] == ["aia"]


async def test_a_request_that_never_completes_times_out(shared_ca: LabCa) -> None:
    async with PkiResponder(shared_ca, request_timeout_s=SHORT) as pki:
        started = time.monotonic()
        answer = await raw_exchange(pki.port, b"GET /crl/root.crl HTTP/1.1\r\nHost: x\r\n")
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert SHORT <= time.monotonic() - started < SHORT + 2


async def test_connections_beyond_the_limit_are_closed(shared_ca: LabCa) -> None:
    modes = PkiModes(crl=ResponderMode("blackhole"))
    async with PkiResponder(shared_ca, modes, max_connections=2) as pki:
        held = [await asyncio.open_connection("127.0.0.1", pki.port) for _ in range(2)]
        try:
            for _, writer in held:
                writer.write(b"GET /crl/root.crl HTTP/1.1\r\nHost: x\r\n\r\n")
            await asyncio.sleep(0.1)
            # The third connection is accepted by the kernel and closed by the lab at once.
            try:
                answer = await raw_exchange(
                    pki.port, b"GET /aia/root.crt HTTP/1.1\r\nHost: x\r\n\r\n"
                )
            except ConnectionResetError:
                answer = b""  # closed with our request unread: the kernel sends a reset
            assert answer == b""
            assert [request.purpose for request in pki.requests] == ["crl", "crl"]
        finally:
            for _, writer in held:
                writer.close()
                await writer.wait_closed()


async def test_stop_closes_held_connections_promptly(shared_ca: LabCa) -> None:
    modes = PkiModes(aia=ResponderMode("blackhole"), crl=ResponderMode("delay", 60))
    pki = PkiResponder(shared_ca, modes)
    await pki.start()
    clients = []
    for path in (b"/aia/root.crt", b"/aia/intermediate.crt", b"/crl/root.crl"):
        reader, writer = await asyncio.open_connection("127.0.0.1", pki.port)
        writer.write(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        clients.append((reader, writer))
    while len(pki.requests) < 3:  # noqa: ASYNC110 - polls the responder's public log
        await asyncio.sleep(0.01)
    started = time.monotonic()
    await pki.stop()
    assert time.monotonic() - started < 1.0
    assert asyncio.all_tasks() == {asyncio.current_task()}  # no connection task left behind
    try:
        for reader, _ in clients:
            assert await asyncio.wait_for(reader.read(1), 1.0) == b""
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", pki.port)
    finally:
        for _, writer in clients:
            writer.close()
            await writer.wait_closed()
    await pki.stop()  # a second stop is harmless


# -- OCSP with cryptography ----------------------------------------------------------------


async def test_ocsp_good_revoked_unknown_unauthorized_malformed(client: httpx.AsyncClient) -> None:
    ca = LabCa.generate()
    host = make_host_credentials(CertKind.CA, ca=ca)
    stranger = LabCa.generate()
    strange_host = make_host_credentials(CertKind.CA, ca=stranger)
    async with PkiResponder(ca) as pki:

        async def ask(body: bytes, via_get: bool = False) -> ocsp.OCSPResponse:
            if via_get:
                encoded = urllib.parse.quote(base64.b64encode(body).decode(), safe="")
                response = await client.get(f"{pki.ocsp_url}/{encoded}")
            else:
                response = await client.post(pki.ocsp_url, content=body)
            assert response.status_code == 200
            return ocsp.load_der_ocsp_response(response.content)

        good = await ask(ocsp_request(host.leaf, ca.intermediate, nonce=b"n" * 16))
        assert good.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
        assert good.certificate_status is ocsp.OCSPCertStatus.GOOD
        assert good.serial_number == host.leaf.serial_number
        ca.intermediate_key.public_key().verify(
            good.signature, good.tbs_response_bytes, padding.PKCS1v15(), hashes.SHA256()
        )
        assert good.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"n" * 16

        ca.revoke(host.leaf.serial_number, reason=x509.ReasonFlags.cessation_of_operation)
        revoked = await ask(ocsp_request(host.leaf, ca.intermediate), via_get=True)
        assert revoked.certificate_status is ocsp.OCSPCertStatus.REVOKED
        assert revoked.revocation_reason is x509.ReasonFlags.cessation_of_operation
        revocation = ca.revocation(host.leaf.serial_number)
        assert revocation is not None
        assert revoked.revocation_time_utc == revocation.revoked_at

        # The intermediate, asked of the root, is good and signed by the root.
        upper = await ask(ocsp_request(ca.intermediate, ca.root))
        assert upper.certificate_status is ocsp.OCSPCertStatus.GOOD
        assert (
            upper.responder_key_hash
            == x509.SubjectKeyIdentifier.from_public_key(ca.root_key.public_key()).digest
        )

        never_issued = (
            ocsp.OCSPRequestBuilder()
            .add_certificate_by_hash(
                good.issuer_name_hash, good.issuer_key_hash, 424242, hashes.SHA1()
            )
            .build()
            .public_bytes(serialization.Encoding.DER)
        )
        unknown = await ask(never_issued)
        assert unknown.certificate_status is ocsp.OCSPCertStatus.UNKNOWN

        foreign = await ask(ocsp_request(strange_host.leaf, stranger.intermediate))
        assert foreign.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED
        malformed = await ask(b"\x30\x03\x02\x01\x00")
        assert malformed.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


# -- real peers ----------------------------------------------------------------------------

OPENSSL = shutil.which("openssl")


async def run_peer(*argv: str | os.PathLike[str], timeout: float = 20.0) -> tuple[int, str]:
    """Run a peer without blocking the event loop that serves it."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


@pytest.fixture
async def lab_pki(tmp_path: Path) -> AsyncIterator[tuple[PkiResponder, LabCa, HostCredentials]]:
    async with PkiResponder(None) as pki:
        ca = LabCa.generate(urls=pki.urls())
        pki.ca = ca
        host = make_host_credentials(CertKind.CA, ca=ca)
        ca.write_root_pem(tmp_path / "root.pem")
        ca.write_intermediate_pem(tmp_path / "intermediate.pem")
        (tmp_path / "leaf.pem").write_bytes(host.leaf.public_bytes(serialization.Encoding.PEM))
        yield pki, ca, host


@pytest.mark.peer
@pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")
async def test_openssl_ocsp_verifies_good_then_revoked(
    tmp_path: Path, lab_pki: tuple[PkiResponder, LabCa, HostCredentials]
) -> None:
    pki, ca, host = lab_pki
    assert OPENSSL is not None
    url = host.leaf.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    ocsp_url = next(
        d.access_location.value for d in url if d.access_method.dotted_string.endswith(".1")
    )
    argv = [
        OPENSSL, "ocsp", "-issuer", tmp_path / "intermediate.pem", "-cert", tmp_path / "leaf.pem",
        "-url", ocsp_url, "-CAfile", tmp_path / "root.pem",
    ]  # fmt: skip
    code, out = await run_peer(*argv)
    assert code == 0, out
    assert "Response verify OK" in out
    assert "leaf.pem: good" in out

    ca.revoke(host.leaf.serial_number)
    code, out = await run_peer(*argv)
    assert code == 0, out
    assert "Response verify OK" in out
    assert "leaf.pem: revoked" in out
    assert "Reason: keyCompromise" in out
    assert [r.purpose for r in pki.requests] == ["ocsp", "ocsp"]


@pytest.mark.peer
@pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")
async def test_openssl_crl_accepts_the_crl_and_lists_the_revoked_serial(
    tmp_path: Path, lab_pki: tuple[PkiResponder, LabCa, HostCredentials], client: httpx.AsyncClient
) -> None:
    pki, ca, host = lab_pki
    assert OPENSSL is not None
    ca.revoke(host.leaf.serial_number)
    response = await client.get(pki.urls().crl or "")
    crl_path = tmp_path / "intermediate.crl"
    crl_path.write_bytes(response.content)
    code, out = await run_peer(OPENSSL, "crl", "-inform", "DER", "-in", crl_path, "-noout", "-text")
    assert code == 0, out
    listed = re.findall(r"Serial Number: ([0-9A-F]+)", out)
    assert [int(serial, 16) for serial in listed] == [host.leaf.serial_number]
    assert "Key Compromise" in out
    code, out = await run_peer(
        OPENSSL, "crl", "-inform", "DER", "-in", crl_path, "-noout", "-verify",
        "-CAfile", tmp_path / "intermediate.pem",
    )  # fmt: skip
    assert code == 0, out
    assert "verify OK" in out
    # A CRL signed by the root does not verify against the intermediate.
    root_crl = tmp_path / "root.crl"
    root_crl.write_bytes((await client.get(pki.urls().issuer_crl or "")).content)
    code, out = await run_peer(
        OPENSSL, "crl", "-inform", "DER", "-in", root_crl, "-noout", "-verify",
        "-CAfile", tmp_path / "intermediate.pem",
    )  # fmt: skip
    assert code != 0 or "verify OK" not in out


CABEXTRACT = shutil.which("cabextract")
GCAB = shutil.which("gcab")


@pytest.mark.peer
@pytest.mark.skipif(CABEXTRACT is None, reason="cabextract is not installed (Debian cabextract)")
async def test_cabextract_lists_and_tests_the_root_lists(
    tmp_path: Path, client: httpx.AsyncClient
) -> None:
    assert CABEXTRACT is not None
    async with PkiResponder(None) as pki:
        for url, member in (
            (pki.root_list_url, "authroot.stl"),
            (pki.base_url + DISALLOWED_LIST_PATH, "disallowedcert.stl"),
        ):
            cab = tmp_path / url.rsplit("/", 1)[1]
            cab.write_bytes((await client.get(url)).content)
            code, out = await run_peer(CABEXTRACT, "-l", cab)
            assert code == 0, out
            assert member in out
            code, out = await run_peer(CABEXTRACT, "-t", cab)
            assert code == 0, out
            assert f"{member}  OK" in out


@pytest.mark.peer
@pytest.mark.skipif(CABEXTRACT is None, reason="cabextract is not installed (Debian cabextract)")
@pytest.mark.parametrize("size", [0, 1, 2, 3, 5, 32768, 40003])
async def test_cabinet_checksums_and_blocks_pass_cabextract(tmp_path: Path, size: int) -> None:
    assert CABEXTRACT is not None
    content = os.urandom(size)
    cab = tmp_path / "x.cab"
    cab.write_bytes(build_cabinet("x.bin", content))
    code, out = await run_peer(CABEXTRACT, "-q", "-d", tmp_path / "out", cab)
    assert code == 0, out
    assert (tmp_path / "out" / "x.bin").read_bytes() == content
    corrupted = bytearray(cab.read_bytes())
    if size:
        corrupted[-1] ^= 0xFF
        cab.write_bytes(corrupted)
        code, out = await run_peer(CABEXTRACT, "-t", cab)
        assert code != 0, out


@pytest.mark.peer
@pytest.mark.skipif(GCAB is None, reason="gcab is not installed (Debian gcab)")
async def test_gcab_lists_the_root_list(tmp_path: Path, client: httpx.AsyncClient) -> None:
    assert GCAB is not None
    async with PkiResponder(None) as pki:
        cab = tmp_path / "authrootstl.cab"
        cab.write_bytes((await client.get(pki.root_list_url)).content)
    code, out = await run_peer(GCAB, "-l", cab)
    assert code == 0, out
    assert out.split()[0] == "authroot.stl"


async def test_a_port_in_use_is_a_usage_error(shared_ca: LabCa) -> None:
    async with PkiResponder(shared_ca) as first:
        with pytest.raises(UsageError, match="cannot listen"):
            async with PkiResponder(shared_ca, port=first.port):
                pass


async def test_ipv6_loopback(shared_ca: LabCa, client: httpx.AsyncClient) -> None:
    if not socket.has_ipv6:
        pytest.skip("this Python has no IPv6 support")
    try:
        pki = PkiResponder(shared_ca, PkiModes(crl=ResponderMode("refuse")), host="::1")
        await pki.start()
    except UsageError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    try:
        assert pki.base_url == f"http://[::1]:{pki.port}"
        response = await client.get(pki.aia_url("root"))
        assert x509.load_der_x509_certificate(response.content) == shared_ca.root
        with pytest.raises(httpx.ConnectError):
            await client.get(pki.crl_url("root"))
    finally:
        await pki.stop()
