"""The internal CA: issued certificates, CRL and PKCS#12 checked by openssl; the CLI; modes."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12

from rdptrust.errors import UsageError
from rdptrust.pki.ca import CaUrls, CertificateAuthority
from rdptrust.pki.certbuilder import RDP_AUTH_EKU

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rdptrust.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def openssl(*args: str) -> subprocess.CompletedProcess[str]:
    assert OPENSSL is not None
    return subprocess.run([OPENSSL, *args], capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority.init(
        tmp_path_factory.mktemp("ca"),
        name="Test RDP CA",
        key_size=2048,
        urls=CaUrls(crl="http://127.0.0.1:1/rdp.crl", ca_issuers="http://127.0.0.1:1/ca.cer"),
    )


def test_key_is_private_and_init_refuses_overwrite(authority: CertificateAuthority) -> None:
    assert stat.S_IMODE(authority.key_path.stat().st_mode) == 0o600
    with pytest.raises(UsageError, match="--force"):
        CertificateAuthority.init(authority.directory)


def test_issued_certificate_is_fit_for_rdp(authority: CertificateAuthority) -> None:
    issued = authority.issue("rdp01.lab.test", dns_names=("rdp01",), ip_addresses=("127.0.0.1",))
    cert = issued.certificate
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in eku
    assert RDP_AUTH_EKU in eku
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["rdp01.lab.test", "rdp01"]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert cdp[0].full_name is not None
    assert cdp[0].full_name[0].value == "http://127.0.0.1:1/rdp.crl"
    assert CertificateAuthority.load(authority.directory).find("rdp01.lab.test")


@needs_openssl
def test_openssl_verifies_issued_certificate(
    authority: CertificateAuthority, tmp_path: Path
) -> None:
    issued = authority.issue("host-a.lab.test")
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(issued.certificate.public_bytes(Encoding.PEM))
    proc = openssl(
        "verify", "-CAfile", str(authority.cert_path), "-purpose", "sslserver", str(leaf)
    )
    assert proc.returncode == 0, proc.stderr
    assert f"{leaf}: OK" in proc.stdout


@needs_openssl
def test_revoke_and_crl_read_by_openssl(authority: CertificateAuthority) -> None:
    issued = authority.issue("to-revoke.lab.test")
    authority.revoke("to-revoke.lab.test", reason="superseded")
    authority.crl()
    proc = openssl(
        "crl",
        "-inform",
        "DER",
        "-in",
        str(authority.directory / "crl.der"),
        "-noout",
        "-text",
        "-CAfile",
        str(authority.cert_path),
    )
    assert proc.returncode == 0, proc.stderr
    assert "verify OK" in proc.stderr + proc.stdout
    assert format(issued.certificate.serial_number, "X").lstrip("0") in proc.stdout.upper()
    assert "Superseded" in proc.stdout
    with pytest.raises(UsageError, match="no valid certificate"):
        authority.revoke("to-revoke.lab.test")


@needs_openssl
def test_cli_issue_bundle(tmp_path: Path) -> None:
    ca_dir = tmp_path / "ca"
    init = run_cli("ca", "init", "--dir", str(ca_dir), "--name", "CLI CA", "--json")
    assert init.returncode == 0, init.stderr
    again = run_cli("ca", "init", "--dir", str(ca_dir))
    assert again.returncode == 64
    assert "--force" in again.stderr
    out = tmp_path / "bundle"
    proc = run_cli(
        "ca",
        "issue",
        "rdp02.lab.test",
        "--dir",
        str(ca_dir),
        "--ip",
        "127.0.0.2",
        "--out",
        str(out),
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    files = {k: Path(v) for k, v in doc["files"].items()}
    for name in ("pfx", "password", "key_pem"):
        assert stat.S_IMODE(files[name].stat().st_mode) == 0o600, name
    password = files["password"].read_text().strip()
    # openssl reads the PKCS#12 with the password
    info = openssl(
        "pkcs12",
        "-in",
        str(files["pfx"]),
        "-passin",
        f"pass:{password}",
        "-nokeys",
        "-info",
    )
    assert info.returncode == 0, info.stderr
    assert "CN=rdp02.lab.test" in info.stdout.replace(" = ", "=")
    wrong = openssl("pkcs12", "-in", str(files["pfx"]), "-passin", "pass:wrong", "-nokeys")
    assert wrong.returncode != 0
    key, cert, extra = pkcs12.load_key_and_certificates(
        files["pfx"].read_bytes(), password.encode()
    )
    assert cert is not None
    assert key is not None
    assert cert.fingerprint(hashes.SHA1()).hex() == doc["certificate"]["sha1"]
    assert len(extra) == 1
    script = files["install_host"].read_text(encoding="utf-8-sig")
    assert f"$expected = '{doc['certificate']['sha1'].upper()}'" in script
    assert "Win32_TSGeneralSetting" in script
    assert "S-1-5-20" in script
    listing = run_cli("ca", "list", "--dir", str(ca_dir), "--json")
    assert [r["host"] for r in json.loads(listing.stdout)["issued"]] == ["rdp02.lab.test"]
    revoked = run_cli("ca", "revoke", "rdp02.lab.test", "--dir", str(ca_dir))
    assert revoked.returncode == 0, revoked.stderr
    assert (ca_dir / "crl.der").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["ca", "issue", "bad host;rm -rf /"],
        ["ca", "issue", "ok.lab.test", "--ip", "not-an-ip"],
        ["ca", "issue", "ok.lab.test", "--days", "0"],
    ],
)
def test_cli_issue_refuses_bad_names(tmp_path: Path, args: list[str]) -> None:
    ca_dir = tmp_path / "ca"
    assert run_cli("ca", "init", "--dir", str(ca_dir)).returncode == 0
    proc = run_cli(*args, "--dir", str(ca_dir), "--out", str(tmp_path / "o"))
    assert proc.returncode == 64, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()


def test_cli_without_ca(tmp_path: Path) -> None:
    proc = run_cli("ca", "issue", "x.lab.test", "--dir", str(tmp_path / "none"))
    assert proc.returncode == 64
    assert "rdptrust ca init" in proc.stderr


def test_damaged_ca_is_reported(tmp_path: Path) -> None:
    assert run_cli("ca", "init", "--dir", str(tmp_path)).returncode == 0
    (tmp_path / "ca.json").write_text("{not json")
    proc = run_cli("ca", "list", "--dir", str(tmp_path))
    assert proc.returncode == 3
    assert "cannot read the CA" in proc.stderr
