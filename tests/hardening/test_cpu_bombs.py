"""CPU bombs: hostile chains and OCSP answers end within the budget, and /-/healthy answers.

Each bomb is made at test time and served on loopback: 69 certificates that sign each
other in the served chain, and an OCSP answer of about 9 MB carrying 28,000
certificates. ``check`` must end within its time-out plus 2 s, and the exporter's scrape
within its module's time-out plus 2 s while ``/-/healthy`` answers in under 1 s.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fixtures.cli import no_pins, run_command
from fixtures.lab import LabFactory
from rdptrust.lab.certs import HostCredentials
from rdptrust.lab.runner import Lab
from rdptrust.monitor.config import parse_config, with_anchors
from rdptrust.monitor.exporter import Exporter
from rdptrust.net.httpserver import HttpLimits, HttpRequest, HttpResponse, HttpServer
from rdptrust.pki.budget import WorkBudget
from rdptrust.pki.revocation import check_ocsp
from rdptrust.pki.trust import TrustAnchors, build_path

RDPTRUST = [str(Path(sys.executable).with_name("rdptrust"))]
GRACE_S = 2.0
NOW = dt.datetime.now(dt.UTC)
CA_NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Mutual CA")])


def _cert(
    subject: x509.Name,
    public_key: Any,
    signer: ec.EllipticCurvePrivateKey,
    issuer: x509.Name = CA_NAME,
    *,
    ca: bool = True,
    ocsp_url: str | None = None,
    eku: bool = False,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=60))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ocsp_url is not None:
        builder = builder.add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        x509.oid.AuthorityInformationAccessOID.OCSP,
                        x509.UniformResourceIdentifier(ocsp_url),
                    )
                ]
            ),
            critical=False,
        )
    if eku:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False
        )
    return builder.sign(signer, hashes.SHA256())


def credentials(chain: list[x509.Certificate], key: Any) -> HostCredentials:
    digest = hashlib.sha256(chain[0].public_bytes(serialization.Encoding.DER)).hexdigest()
    return HostCredentials(tuple(chain), key, digest)


def mutual_chain(total: int = 69) -> HostCredentials:
    """A leaf and *total* - 1 CA certificates under one name, every key signing others."""
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(9)]
    cas = [
        _cert(CA_NAME, keys[i].public_key(), keys[j])
        for i in range(len(keys))
        for j in range(len(keys))
        if i != j
    ][: total - 1]
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    host = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "WIN-LAB01")])
    leaf = _cert(host, leaf_key.public_key(), keys[0], ca=False)
    return credentials([leaf, *cas], leaf_key)


def ocsp_bomb(ocsp_url: str, count: int = 28_000) -> tuple[HostCredentials, bytes, bytes]:
    """A chain under a new root whose OCSP answer carries *count* certificates.

    Returns the host's credentials, the root (PEM) and the answer (DER).
    """
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bomb Root")])
    root = _cert(root_name, root_key.public_key(), root_key, root_name)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    host = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "WIN-LAB01")])
    leaf = _cert(host, leaf_key.public_key(), root_key, root_name, ca=False, ocsp_url=ocsp_url)
    # Each carried certificate claims the root as issuer and the OCSP Signing EKU, so
    # each is a candidate signer whose check costs a signature verification.
    other = ec.generate_private_key(ec.SECP256R1())
    responder = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Responder")])
    fake = _cert(responder, other.public_key(), other, root_name, eku=True)
    answer = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=leaf,
            issuer=root,
            algorithm=hashes.SHA1(),
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=NOW,
            next_update=NOW + dt.timedelta(days=1),
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, fake)
        .certificates([fake] * count)
        .sign(other, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )
    pem = root.public_bytes(serialization.Encoding.PEM)
    return credentials([leaf], leaf_key), pem, answer


class BodyServer:
    """Answers every request with one body (the hostile OCSP responder)."""

    def __init__(self) -> None:
        self.body = b""
        self.hits = 0
        limits = HttpLimits(max_body_bytes=64 * 1024)
        self.server = HttpServer(self._answer, limits=limits)

    async def _answer(self, request: HttpRequest) -> HttpResponse:
        self.hits += 1
        return HttpResponse(200, self.body, "application/ocsp-response")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}/ocsp"


@pytest.fixture
async def responder() -> AsyncIterator[BodyServer]:
    found = BodyServer()
    async with found.server:
        yield found


async def serve(lab_factory: LabFactory, creds: HostCredentials) -> Lab:
    lab = await lab_factory(require="HYBRID")
    lab.set_credentials(creds)
    return lab


async def scrape_while_polling_health(
    server: Exporter, target: str, module: str = "default"
) -> tuple[float, float, int]:
    """Scrape *target*; meanwhile poll /-/healthy. (scrape s, worst health s, status)."""
    done = asyncio.Event()
    worst = 0.0
    async with httpx.AsyncClient(timeout=30, trust_env=False) as client:

        async def poll() -> None:
            nonlocal worst
            while not done.is_set():
                start = time.monotonic()
                answer = await client.get(f"{server.url}/-/healthy")
                assert answer.status_code == 200
                worst = max(worst, time.monotonic() - start)
                await asyncio.sleep(0.1)

        poller = asyncio.create_task(poll())
        start = time.monotonic()
        response = await client.get(
            f"{server.url}/probe", params={"target": target, "module": module}
        )
        took = time.monotonic() - start
        done.set()
        await poller
    return took, worst, response.status_code


# -- the pure steps stop at their limits ------------------------------------------------


def test_path_building_over_69_mutually_signing_certificates_is_bounded() -> None:
    creds = mutual_chain()
    start = time.monotonic()
    path = build_path(list(creds.chain), TrustAnchors((), ()))
    took = time.monotonic() - start
    assert took < 2.0
    assert path.limited is not None  # the excess is reported, not silently dropped
    assert path.certificates[0] == creds.leaf


def test_path_building_stops_at_the_deadline() -> None:
    creds = mutual_chain()
    budget = WorkBudget(time.monotonic() - 1)  # already past
    path = build_path(list(creds.chain), TrustAnchors((), ()), budget=budget)
    assert path.limited is not None
    assert "time budget" in path.limited
    assert len(path.certificates) == 1


def test_an_ocsp_answer_with_28000_certificates_is_checked_quickly() -> None:
    creds, _root_pem, answer = ocsp_bomb("http://127.0.0.1:1/ocsp")
    assert len(answer) > 8_000_000
    root = x509.load_der_x509_certificate(
        x509.load_pem_x509_certificate(_root_pem).public_bytes(serialization.Encoding.DER)
    )
    start = time.monotonic()
    check = check_ocsp(answer, creds.leaf, root)
    assert time.monotonic() - start < 2.0
    assert "28000 certificates" in check.detail


# -- whole commands and scrapes end within their budget --------------------------------


async def test_check_with_69_mutually_signing_certificates_ends_within_its_timeout(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    lab = await serve(lab_factory, mutual_chain())
    start = time.monotonic()
    code, out, _err = await run_command(
        [
            *RDPTRUST,
            *("check", str(lab.target), "--timeout", "5"),
            *("--known-hosts", str(no_pins(tmp_path / "kh.json"))),
        ],
        timeout=60,
    )
    took = time.monotonic() - start
    assert took < 5 + GRACE_S, took
    assert code in (0, 1, 2, 3)
    assert out.startswith("RDPTRUST ")


async def test_exporter_scrape_of_69_mutual_certificates_within_budget_health_answers(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    lab = await serve(lab_factory, mutual_chain())
    module = {"timeout": 10, "system_trust": False, "known_hosts": str(tmp_path / "kh.json")}
    config = with_anchors(parse_config({"modules": {"default": module}}))
    async with Exporter(config, port=0) as server:
        took, worst, status = await scrape_while_polling_health(server, str(lab.target))
    assert status == 200
    assert took < 10 + GRACE_S, took
    assert worst < 1.0, worst


async def test_ocsp_bomb_check_diagnose_and_scrape_end_within_budget(
    lab_factory: LabFactory, responder: BodyServer, tmp_path: Path
) -> None:
    creds, root_pem, answer = ocsp_bomb(responder.url)
    responder.body = answer
    root = tmp_path / "root.pem"
    root.write_bytes(root_pem)
    lab = await serve(lab_factory, creds)
    start = time.monotonic()
    _code, out, _err = await run_command(
        [
            *RDPTRUST,
            *("check", str(lab.target), "--diagnose", "--timeout", "5"),
            *("--fetch-timeout", "5", "--no-system-trust", "--ca-file", str(root)),
            *("--known-hosts", str(no_pins(tmp_path / "kh.json"))),
        ],
        timeout=120,
    )
    took = time.monotonic() - start
    assert responder.hits >= 1
    assert took < 5 + 2 * 5 + GRACE_S, (took, out)
    assert out.startswith("RDPTRUST ")

    module = {
        "timeout": 10,
        "enumerate": False,
        "diagnose": True,
        "system_trust": False,
        "ca_files": [str(root)],
        "known_hosts": str(tmp_path / "kh.json"),
        "fetch_allow": ["127.0.0.0/8"],
    }
    config = with_anchors(parse_config({"modules": {"default": module}}))
    hits = responder.hits
    async with Exporter(config, port=0) as server:
        took, worst, status = await scrape_while_polling_health(server, str(lab.target))
    assert responder.hits > hits
    assert status == 200
    assert took < 10 + GRACE_S, took
    assert worst < 1.0, worst
