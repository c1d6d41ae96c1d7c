"""Replayed attacks from issue 18 that a limit must stop, each in a whole command:

- 3,000 mutually signing certificates served over AIA (they took 189 s before the
  limits): the AIA answer limit (``MaxAIAUrlRetrievalByteCount``, 100,000 bytes) stops
  the bundle, and a bundle just under it is cut by path building's own limits;
- 2,000 CRL URLs in the host certificate, black-holed, with a 2 s fetch time-out (43 s
  before): the per-certificate URL limit stops them.

Each ends within the command's time budget (a bound generous enough for a loaded 2-core
machine) and the result names the limit that stopped it: the excess is reported, never
dropped silently.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from fixtures.cli import no_pins, run_command
from fixtures.documents import assert_valid
from fixtures.lab import LabFactory
from rdptrust.lab.certs import HostCredentials
from rdptrust.net.httpserver import HttpLimits, HttpRequest, HttpResponse, HttpServer
from rdptrust.pki.limits import WINDOWS_LIMITS

RDPTRUST = [str(Path(sys.executable).with_name("rdptrust"))]
#: The wall-clock bound of one command here (its own budget is far less: probe 5 s plus
#: two rounds of 2 s fetches); generous for a loaded 2-core machine.
BOUND_S = 30.0
NOW = dt.datetime.now(dt.UTC)
CA_NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Mutual CA")])
HOST_NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "WIN-LAB01")])


def _cert(
    subject: x509.Name,
    public_key: Any,
    signer: ec.EllipticCurvePrivateKey,
    issuer: x509.Name = CA_NAME,
    *,
    ca: bool = True,
    extensions: tuple[x509.ExtensionType, ...] = (),
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
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(signer, hashes.SHA256())


def _credentials(chain: list[x509.Certificate], key: Any) -> HostCredentials:
    digest = hashlib.sha256(chain[0].public_bytes(serialization.Encoding.DER)).hexdigest()
    return HostCredentials(tuple(chain), key, digest)


def mutual_cas(count: int) -> tuple[list[ec.EllipticCurvePrivateKey], list[x509.Certificate]]:
    """*count* CA certificates under one name, made of enough keys that each signs others."""
    n = 2
    while n * (n - 1) < count:
        n += 1
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(n)]
    cas = [
        _cert(CA_NAME, keys[i].public_key(), keys[j]) for i in range(n) for j in range(n) if i != j
    ][:count]
    return keys, cas


class Responder:
    """Serves one body on every path, or (``blackhole``) accepts and never answers."""

    def __init__(self, body: bytes = b"", *, blackhole: bool = False) -> None:
        self.body = body
        self.blackhole = blackhole
        self.hits = 0
        self.server = HttpServer(self._answer, limits=HttpLimits(max_body_bytes=1024))

    async def _answer(self, request: HttpRequest) -> HttpResponse:
        self.hits += 1
        if self.blackhole:
            await asyncio.sleep(3600)
        return HttpResponse(200, self.body, "application/pkix-cert")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.port}{path}"


@pytest.fixture
async def responder() -> AsyncIterator[Responder]:
    found = Responder()
    async with found.server:
        yield found


def _aia(url: str) -> x509.AuthorityInformationAccess:
    return x509.AuthorityInformationAccess(
        [
            x509.AccessDescription(
                AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(url)
            )
        ]
    )


async def _diagnose(lab_target: str, tmp_path: Path, *extra: str) -> tuple[float, dict[str, Any]]:
    start = time.monotonic()
    code, out, err = await run_command(
        [
            *RDPTRUST,
            *("diagnose", lab_target, "--json", "--timeout", "5", "--fetch-timeout", "2"),
            *("--no-system-trust", "--known-hosts", str(no_pins(tmp_path / "kh.json"))),
            *extra,
        ],
        timeout=120,
    )
    took = time.monotonic() - start
    assert code in (0, 1, 2), err
    document = json.loads(out)
    assert_valid(document)
    return took, document


async def _check(lab_target: str, tmp_path: Path, *extra: str) -> tuple[float, str]:
    start = time.monotonic()
    code, out, _err = await run_command(
        [
            *RDPTRUST,
            *("check", lab_target, "--diagnose", "--timeout", "5", "--fetch-timeout", "2"),
            *("--no-system-trust", "--known-hosts", str(no_pins(tmp_path / "kh.json"))),
            *extra,
        ],
        timeout=120,
    )
    assert code in (0, 1, 2, 3)
    assert out.startswith("RDPTRUST ")
    return time.monotonic() - start, out


async def test_3000_mutually_signing_certificates_over_aia(
    lab_factory: LabFactory, responder: Responder, tmp_path: Path
) -> None:
    # Given a host that sends its leaf only, whose AIA URL serves 3,000 CA certificates
    # under its issuer's name, every key signing others
    keys, cas = mutual_cas(3000)
    responder.body = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in cas)
    assert len(responder.body) > 10 * WINDOWS_LIMITS.aia_bytes
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = _cert(
        HOST_NAME,
        leaf_key.public_key(),
        keys[0],
        ca=False,
        extensions=(_aia(responder.url("/mutual.p7c")),),
    )
    lab = await lab_factory(require="HYBRID")
    lab.set_credentials(_credentials([leaf], leaf_key))
    # When diagnose and check --diagnose judge it
    took, document = await _diagnose(str(lab.target), tmp_path)
    # Then each ends well within the bound, and the result names the limit: the AIA
    # answer is over Windows' AIA byte limit, so it is not used
    assert took < BOUND_S, took
    assert responder.hits >= 1
    aia = [r for r in document["retrievals"] if r["purpose"] == "aia"]
    assert aia
    assert all(r["outcome"] == "invalid" for r in aia)
    assert f"larger than {WINDOWS_LIMITS.aia_bytes} bytes" in aia[0]["detail"]
    took, _out = await _check(str(lab.target), tmp_path)
    assert took < BOUND_S, took


async def test_a_bundle_under_the_aia_limit_is_cut_by_path_building(
    lab_factory: LabFactory, responder: Responder, tmp_path: Path
) -> None:
    # Given an AIA answer just under the AIA byte limit, all of it mutual CAs
    keys, cas = mutual_cas(400)
    ders = [c.public_bytes(serialization.Encoding.DER) for c in cas]
    kept: list[bytes] = []
    for der in ders:
        if sum(map(len, kept)) + len(der) + 64 > WINDOWS_LIMITS.aia_bytes:
            break
        kept.append(der)
    responder.body = pkcs7.serialize_certificates(
        [x509.load_der_x509_certificate(d) for d in kept], serialization.Encoding.DER
    )
    assert len(responder.body) <= WINDOWS_LIMITS.aia_bytes
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = _cert(
        HOST_NAME,
        leaf_key.public_key(),
        keys[0],
        ca=False,
        extensions=(_aia(responder.url("/mutual.p7c")),),
    )
    lab = await lab_factory(require="HYBRID")
    lab.set_credentials(_credentials([leaf], leaf_key))
    took, document = await _diagnose(str(lab.target), tmp_path)
    assert took < BOUND_S, took
    # Then the AIA answer was used, and path building says which of its limits stopped it
    (aia,) = [r for r in document["retrievals"] if r["purpose"] == "aia"]
    assert aia["outcome"] == "ok", aia
    limited = [p for p in document["problems"] if p["code"] == "path-limit"]
    assert len(limited) == 1, document["problems"]
    assert "candidate" in limited[0]["message"] or "considered" in limited[0]["message"]
    took, out = await _check(str(lab.target), tmp_path)
    assert took < BOUND_S, took
    assert "path building limited" in out


async def test_2000_black_holed_crl_urls(lab_factory: LabFactory, tmp_path: Path) -> None:
    # Given a trusted CA-issued host whose certificate names 2,000 CRL URLs, all black-holed
    hole = Responder(blackhole=True)
    async with hole.server:
        root_key = ec.generate_private_key(ec.SECP256R1())
        root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Crowded Root")])
        root = _cert(root_name, root_key.public_key(), root_key, root_name)
        points = x509.CRLDistributionPoints(
            [
                x509.DistributionPoint(
                    [x509.UniformResourceIdentifier(hole.url(f"/crl/{n}.crl"))], None, None, None
                )
                for n in range(2000)
            ]
        )
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        leaf = _cert(
            HOST_NAME, leaf_key.public_key(), root_key, root_name, ca=False, extensions=(points,)
        )
        root_file = tmp_path / "root.pem"
        root_file.write_bytes(root.public_bytes(serialization.Encoding.PEM))
        lab = await lab_factory(require="HYBRID")
        lab.set_credentials(_credentials([leaf], leaf_key))
        # When diagnose judges it with a 2 s fetch time-out
        took, document = await _diagnose(str(lab.target), tmp_path, "--ca-file", str(root_file))
        # Then it ends within the bound, fetched no more than the limit, and says so
        assert took < BOUND_S, took
        crls = [r for r in document["retrievals"] if r["purpose"] == "crl"]
        assert 0 < len(crls) <= WINDOWS_LIMITS.revocation_urls_per_cert
        assert {r["outcome"] for r in crls} == {"timeout"}
        limits = [p for p in document["problems"] if p["code"] == "retrieval-limit"]
        assert limits, document["problems"]
        assert "2000" in limits[0]["message"]
        assert hole.hits <= WINDOWS_LIMITS.revocation_urls_per_cert
        took, _out = await _check(str(lab.target), tmp_path, "--ca-file", str(root_file))
        assert took < BOUND_S, took
