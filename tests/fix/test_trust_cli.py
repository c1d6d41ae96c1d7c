"""Method 1 on the lab: pin, refuse a changed certificate (and say whether it looks like the
six-month recreation), --replace, --list, --remove, and hostile subjects kept inert."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from fixtures.cli import run_rdptrust as rdptrust
from fixtures.documents import assert_valid
from fixtures.lab import LabFactory


async def test_pin_then_refuse_recreated_certificate(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    lab = await lab_factory(cert="self-signed")
    store = tmp_path / "pins.json"
    target = str(lab.target)
    # Given the host pinned
    code, out, err = await rdptrust(
        "trust", target, "--known-hosts", str(store), "--out", str(tmp_path / "o"), "--json"
    )
    assert code == 0, err
    first = json.loads(out)
    assert_valid(first)
    assert first["pinned"] is True
    assert first["certificate"]["sha256"] == lab.certificate_sha256
    assert (tmp_path / "o" / f"{lab.target.host}_{lab.target.port}.cer").exists()
    # Pinning again is a no-op that still succeeds
    code, out, _ = await rdptrust("trust", target, "--known-hosts", str(store), "--json")
    assert code == 0
    assert_valid(again := json.loads(out))
    assert again["pin"]["status"] == "match"
    # When Windows recreates its self-signed certificate
    lab.regenerate_certificate()
    code, out, err = await rdptrust("trust", target, "--known-hosts", str(store))
    # Then trust refuses, shows old and new, and recognises the recreation
    assert code == 2, out + err
    assert first["certificate"]["sha256"] in out
    assert lab.certificate_sha256 in out
    assert "six-month recreation" in out
    assert "--replace" in out
    code, out, _ = await rdptrust(
        "trust", target, "--known-hosts", str(store), "--replace", "--json"
    )
    assert code == 0
    assert json.loads(out)["certificate"]["sha256"] == lab.certificate_sha256
    code, out, _ = await rdptrust("trust", "--list", "--known-hosts", str(store), "--json")
    assert_valid(json.loads(out))
    assert [p["sha256"] for p in json.loads(out)["pins"]] == [lab.certificate_sha256]
    code, out, _ = await rdptrust("trust", target, "--remove", "--known-hosts", str(store))
    assert code == 0
    code, out, _ = await rdptrust("trust", "--list", "--known-hosts", str(store), "--json")
    assert json.loads(out)["pins"] == []


async def test_ca_issued_replacement_is_not_called_recreation(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    lab = await lab_factory(cert="self-signed")
    store = tmp_path / "pins.json"
    code, _, err = await rdptrust("trust", str(lab.target), "--known-hosts", str(store))
    assert code == 0, err
    other = await lab_factory(cert="ca")
    lab.set_credentials(other.credentials)
    code, out, _ = await rdptrust("trust", str(lab.target), "--known-hosts", str(store), "--json")
    assert code == 2
    doc = json.loads(out)
    assert_valid(doc)
    assert doc["pinned"] is False
    assert doc["pin"]["status"] == "changed"
    assert doc["pin"]["looks_like_recreation"] is False
    assert "interception" in doc["pin"]["explanation"]


HOSTILE_CN = "x'; Remove-Item C:\\ -Recurse; $(calc)"
HOSTILE_O = '`id` <script>alert(1)</script>"'


async def test_hostile_subject_stays_inert(lab_factory: LabFactory, tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, HOSTILE_O),
            x509.NameAttribute(NameOID.COMMON_NAME, HOSTILE_CN),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "c.pem", tmp_path / "k.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    lab = await lab_factory(cert_file=cert_file, key_file=key_file)
    out_dir = tmp_path / "out"
    code, _, err = await rdptrust(
        "trust", str(lab.target), "--known-hosts", str(tmp_path / "p.json"), "--out", str(out_dir)
    )
    assert code == 0, err
    ps1 = next(out_dir.glob("*.ps1")).read_text(encoding="utf-8-sig").split("\r\n")
    cmd = next(out_dir.glob("*.cmd")).read_text().split("\r\n")
    # the subject only ever appears on the comment line, never in code
    assert any("Remove-Item" in line for line in ps1[:1])
    assert not any("Remove-Item" in line or "calc" in line for line in ps1[1:])
    assert not any("Remove-Item" in line for line in cmd)


async def test_current_user_files_and_advice_never_say_elevate(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    # Given a host trusted for the connecting user only (Cert:\CurrentUser\Root)
    lab = await lab_factory(cert="self-signed")
    out_dir = tmp_path / "o"
    code, out, err = await rdptrust(
        "trust",
        str(lab.target),
        "--known-hosts",
        str(tmp_path / "pins.json"),
        "--out",
        str(out_dir),
        "--current-user",
    )
    assert code == 0, err
    stem = f"{lab.target.host}_{lab.target.port}"
    ps1 = (out_dir / f"trust-{stem}.ps1").read_text(encoding="utf-8-sig")
    cmd = (out_dir / f"trust-{stem}.cmd").read_text()
    # Then both scripts import into the user's own Root store, and nothing says elevate:
    # elevated as another admin, they would import into that admin's store
    assert "Cert:\\CurrentUser\\Root" in ps1
    assert "certutil -user -addstore" in cmd
    for text in (ps1, cmd, out):
        assert "Run elevated" not in text
        assert "(elevated)" not in text
    assert "as the user who connects" in out


async def test_list_writes_ipv6_in_brackets_and_escapes_the_subject(tmp_path: Path) -> None:
    from pki.certs_for_tests import issue
    from rdptrust.model.target import Target
    from rdptrust.pki.pinning import KnownHosts, pin_from_certificate

    # Given a pinned IPv6 host whose certificate's subject holds a terminal escape
    hostile = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "WIN-\x1b]0;pwned\x07\x1b[31mX")])
    cert = issue("x", subject=hostile).cert
    store = KnownHosts(tmp_path / "pins.json")
    store.add(pin_from_certificate(Target("::1", 3390), cert))
    store.save()
    # When the pins are listed
    code, out, err = await rdptrust("trust", "--list", "--known-hosts", str(tmp_path / "pins.json"))
    # Then the host is written as every command writes it, and no control character of the
    # subject reaches the terminal
    assert code == 0, err
    assert out.startswith("[::1]:3390  "), out
    assert "\x1b" not in out
    assert "\x07" not in out
    assert "pwned" in out
