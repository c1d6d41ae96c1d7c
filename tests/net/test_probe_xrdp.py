"""probe_host against a real RDP server: Debian's xrdp on loopback."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes

from fixtures.documents import probe_json
from fixtures.peers import XrdpServer
from rdptrust.model.target import Target
from rdptrust.net.probe import probe_host

pytestmark = pytest.mark.peer

EXPECTED = {
    # security_layer → accepted per protocol (xrdp 0.9 speaks neither CredSSP nor RDSTLS)
    "tls": {"RDP": False, "SSL": True, "HYBRID": False, "HYBRID_EX": False, "RDSTLS": False},
    "negotiate": {"RDP": True, "SSL": True, "HYBRID": False, "HYBRID_EX": False, "RDSTLS": False},
    "rdp": {"RDP": True, "SSL": False, "HYBRID": False, "HYBRID_EX": False, "RDSTLS": False},
}


@pytest.mark.parametrize("layer", ["tls", "negotiate", "rdp"])
async def test_probe_matches_xrdp_configuration(
    xrdp_server: Callable[..., XrdpServer], layer: str
) -> None:
    # Given xrdp with a certificate this test made
    server = xrdp_server(security_layer=layer)
    # When we probe it
    result = await probe_host(Target("127.0.0.1", server.port), timeout=5)
    doc = probe_json(result)
    # Then the protocols are what xrdp's configuration allows
    assert result.error is None
    for name, accepted in EXPECTED[layer].items():
        assert doc["protocols"][name]["accepted"] is accepted, (name, doc["protocols"][name])
    if layer == "tls":
        assert doc["protocols"]["RDP"]["failure"] == "SSL_REQUIRED_BY_SERVER"
    if layer == "rdp":
        # xrdp 0.9 answers an SSL request with RDP_NEG_RSP selecting PROTOCOL_RDP rather than
        # Windows' SSL_NOT_ALLOWED_BY_SERVER: still "not accepted", and we say what it chose.
        assert doc["protocols"]["SSL"]["selected"] == "RDP"
        assert doc["negotiation"]["selected"] == "RDP"
        assert doc["certificate"] is None
        assert doc["tls"] is None
        return
    # and the certificate is exactly the one xrdp was given
    assert doc["certificate"]["sha256"] == server.certificate.fingerprint(hashes.SHA256()).hex()
    assert doc["certificate"]["sha1"] == server.certificate.fingerprint(hashes.SHA1()).hex()
    assert doc["certificate"]["self_signed"] is True
    assert doc["certificate"]["subject"] == "CN=WIN-LAB01"
    assert len(doc["chain"]) == 1
    assert doc["tls"]["version"] in {"TLSv1.2", "TLSv1.3"}
    assert doc["tls_versions"]["TLSv1.2"]["accepted"] is True
    assert doc["tls_versions"]["TLSv1.0"]["accepted"] is False
    assert doc["timings_ms"]["total"] >= doc["timings_ms"]["connect"] > 0


def test_openssl_agrees_on_fingerprint_and_validity(
    xrdp_server: Callable[..., XrdpServer],
) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    server = xrdp_server(security_layer="tls")
    out = subprocess.run(
        [sys.executable, "-m", "rdptrust.cli.main", "probe", f"127.0.0.1:{server.port}", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    doc = json.loads(out.stdout)
    ssl_out = subprocess.run(
        [
            "openssl",
            "x509",
            "-in",
            str(server.cert_path),
            "-noout",
            "-fingerprint",
            "-sha256",
            "-enddate",
            "-startdate",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    fields = dict(line.split("=", 1) for line in ssl_out.splitlines())
    assert fields["sha256 Fingerprint"].replace(":", "").lower() == doc["certificate"]["sha256"]

    def openssl_date(text: str) -> str:
        parsed = dt.datetime.strptime(text.replace("  ", " "), "%b %d %H:%M:%S %Y GMT")
        return parsed.replace(tzinfo=dt.UTC).isoformat().replace("+00:00", "Z")

    assert openssl_date(fields["notAfter"]) == doc["certificate"]["not_after"]
    assert openssl_date(fields["notBefore"]) == doc["certificate"]["not_before"]


SSLYZE = Path(__file__).resolve().parents[2] / ".venv-sslyze" / "bin" / "sslyze"


def test_sslyze_agrees_on_fingerprint_and_validity(
    xrdp_server: Callable[..., XrdpServer], tmp_path: Path
) -> None:
    if not SSLYZE.exists():
        pytest.skip("sslyze is not installed in .venv-sslyze (./run test installs it)")
    server = xrdp_server(security_layer="tls")
    out_json = tmp_path / "sslyze.json"
    subprocess.run(
        [
            str(SSLYZE),
            "--starttls",
            "rdp",
            "--certinfo",
            "--json_out",
            str(out_json),
            f"127.0.0.1:{server.port}",
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    report = json.loads(out_json.read_text())
    certinfo = report["server_scan_results"][0]["scan_result"]["certificate_info"]["result"]
    leaf = certinfo["certificate_deployments"][0]["received_certificate_chain"][0]
    ours = probe_json(asyncio.run(probe_host(Target("127.0.0.1", server.port), timeout=5)))[
        "certificate"
    ]
    # sslyze gives the fingerprint in base64
    assert base64.b64decode(leaf["fingerprint_sha256"]).hex() == ours["sha256"]
    assert leaf["not_valid_after"].replace("+00:00", "Z").startswith(ours["not_after"][:19])
