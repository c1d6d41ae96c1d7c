"""FreeRDP store entries: subject text exactly as OpenSSL's one-line form; file updates."""

from __future__ import annotations

import base64
import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from rdptrust.fix.freerdp import (
    freerdp3_store_path,
    known_hosts2_line,
    openssl_oneline,
    update_known_hosts2,
)

KEY = ec.generate_private_key(ec.SECP256R1())


def cert_with(name: x509.Name) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(KEY.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(KEY, hashes.SHA256())
    )


NAMES = [
    x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "WIN-LAB01")]),
    x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "A, B"),
            x509.NameAttribute(NameOID.COMMON_NAME, 'x"y<z> \\ é'),
        ]
    ),
    x509.Name(
        [
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "ou"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "#lead"),
                ]
            ),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.EMAIL_ADDRESS, "a@b.test")]),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "lab")]),
        ]
    ),
]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
@pytest.mark.parametrize("name", NAMES)
def test_oneline_matches_openssl(name: x509.Name, tmp_path: Path) -> None:
    pem = tmp_path / "c.pem"
    pem.write_bytes(cert_with(name).public_bytes(serialization.Encoding.PEM))
    out = subprocess.run(
        ["openssl", "x509", "-in", str(pem), "-noout", "-subject", "-nameopt", "oneline"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.strip()
    assert out.removeprefix("subject=") == openssl_oneline(name)


def test_known_hosts2_line_matches_freerdp_format() -> None:
    cert = cert_with(NAMES[0])
    line = known_hosts2_line("LAB-Host", 3389, cert)
    host, port, fingerprint, subject, issuer = line.split(" ")
    assert (host, port) == ("lab-host", "3389")
    assert fingerprint == cert.fingerprint(hashes.SHA256()).hex(":")
    assert base64.b64decode(subject) == b"CN = WIN-LAB01"
    assert subject == "Q04gPSBXSU4tTEFCMDE="
    assert issuer == subject


def test_update_replaces_only_its_own_line(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts2"
    path.write_text("# comment\nother 3389 aa:bb X Y\nhost 3389 cc:dd X Y\nhost 3390 ee:ff X Y\n")
    cert = cert_with(NAMES[0])
    update_known_hosts2(path, "host", 3389, cert)
    lines = path.read_text().splitlines()
    assert lines[:3] == ["# comment", "other 3389 aa:bb X Y", "host 3390 ee:ff X Y"]
    assert lines[3] == known_hosts2_line("host", 3389, cert)


def test_freerdp3_path() -> None:
    assert freerdp3_store_path(Path("/c"), "Host.Lab", 3389) == Path("/c/server/host.lab_3389.pem")
    assert freerdp3_store_path(Path("/c"), "::1", 3389) == Path("/c/server/..1_3389.pem")
