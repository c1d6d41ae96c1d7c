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

from rdptrust.errors import DataError, UsageError
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


def _damage(folder: Path, how: str) -> None:
    if how == "json":
        (folder / "ca.json").write_text("{not json")
    elif how == "json-shape":
        (folder / "ca.json").write_text('{"schema": "rdptrust.ca/1", "urls": 1}')
    elif how == "key":
        (folder / "ca-key.pem").write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n")
    elif how == "cert":
        (folder / "ca.pem").write_text("garbage")
    elif how == "other-key":
        other = folder.parent / "other"
        assert run_cli("ca", "init", "--dir", str(other)).returncode == 0
        (folder / "ca-key.pem").write_bytes((other / "ca-key.pem").read_bytes())


@pytest.mark.parametrize("how", ["json", "json-shape", "key", "cert", "other-key"])
def test_damaged_ca_is_exit_65_in_one_line_and_issues_nothing(tmp_path: Path, how: str) -> None:
    # Given a CA folder whose files are damaged, or whose key is another CA's
    folder = tmp_path / "ca"
    assert run_cli("ca", "init", "--dir", str(folder)).returncode == 0
    _damage(folder, how)
    # When it is listed, or asked to issue
    for args in (("list",), ("issue", "h.lab.test", "--out", str(tmp_path / "o"))):
        proc = run_cli("ca", *args, "--dir", str(folder))
        # Then it is one line and exit 65 (the folder's content), never 3 (a host's fault)
        assert proc.returncode == 65, (how, args, proc.stderr)
        assert proc.stderr.count("\n") == 1, proc.stderr
        assert "damaged" in proc.stderr or "not an RSA key" in proc.stderr
    assert not (tmp_path / "o").exists()
    if how == "other-key":
        assert "is not the key of ca.pem" in proc.stderr


def test_a_bundle_that_cannot_be_written_leaves_no_record(tmp_path: Path) -> None:
    # Given a CA, and an --out under a file (so the bundle cannot be written)
    folder = tmp_path / "ca"
    assert run_cli("ca", "init", "--dir", str(folder)).returncode == 0
    (tmp_path / "f").write_text("x")
    proc = run_cli(
        "ca", "issue", "orphan.lab.test", "--dir", str(folder), "--out", str(tmp_path / "f" / "sub")
    )
    assert proc.returncode == 73, proc.stderr
    # Then the register holds no certificate whose key exists nowhere
    listed = run_cli("ca", "list", "--dir", str(folder), "--json")
    assert listed.returncode == 0, listed.stderr
    assert "orphan.lab.test" not in listed.stdout
    # And a bundle that is written is recorded
    ok = run_cli("ca", "issue", "kept.lab.test", "--dir", str(folder), "--out", str(tmp_path / "o"))
    assert ok.returncode == 0, ok.stderr
    assert "kept.lab.test" in run_cli("ca", "list", "--dir", str(folder)).stdout


def test_names_the_ca_cannot_issue_and_an_expired_ca_are_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "ca"
    assert run_cli("ca", "init", "--dir", str(folder)).returncode == 0
    # a valid DNS name over 64 characters cannot be a common name
    label = "a" * 60
    proc = run_cli(
        "ca", "issue", f"{label}.{label}.test", "--dir", str(folder), "--out", str(tmp_path / "o")
    )
    assert proc.returncode == 64, proc.stderr
    assert "at most 64" in proc.stderr
    assert "internal error" not in proc.stderr
    # a CA whose certificate has expired issues nothing
    authority = CertificateAuthority.load(folder)
    with pytest.raises(DataError, match="expired on"):
        authority.issue("late.lab.test", now=authority.certificate.not_valid_after_utc)


def test_a_utf16_password_file_is_read(tmp_path: Path) -> None:
    folder = tmp_path / "ca"
    assert run_cli("ca", "init", "--dir", str(folder)).returncode == 0
    password = tmp_path / "pw.txt"
    password.write_bytes("pässwörd\r\n".encode("utf-16"))  # Notepad's "Unicode"
    proc = run_cli(
        "ca",
        "issue",
        "p.lab.test",
        "--dir",
        str(folder),
        "--out",
        str(tmp_path / "o"),
        "--password-file",
        str(password),
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "o" / "p.lab.test.pfx-password.txt").read_text().strip() == "pässwörd"
    password.write_bytes(b"\xff\xfe\x00\xd8")  # a lone surrogate: no text
    bad = run_cli(
        "ca",
        "issue",
        "q.lab.test",
        "--dir",
        str(folder),
        "--out",
        str(tmp_path / "q"),
        "--password-file",
        str(password),
    )
    assert bad.returncode == 65, bad.stderr
    assert "UTF-8 or UTF-16" in bad.stderr


def test_a_colon_separated_serial_is_found(tmp_path: Path) -> None:
    folder = tmp_path / "ca"
    assert run_cli("ca", "init", "--dir", str(folder)).returncode == 0
    authority = CertificateAuthority.load(folder)
    issued = authority.issue("s.lab.test")
    text = format(issued.record.serial, "x")
    text = ("0" + text) if len(text) % 2 else text
    colons = ":".join(text[i : i + 2] for i in range(0, len(text), 2)).upper()
    assert [r.serial for r in authority.find(colons)] == [issued.record.serial]


def test_an_address_given_as_a_dns_name_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "ca"
    assert run_cli("ca", "init", "--dir", str(folder)).returncode == 0
    proc = run_cli(
        "ca",
        "issue",
        "h.lab.test",
        "--dns",
        "10.0.0.9",
        "--dir",
        str(folder),
        "--out",
        str(tmp_path / "o"),
    )
    assert proc.returncode == 64, proc.stderr
    assert "give it with --ip" in proc.stderr
    assert not (tmp_path / "o").exists()
