"""``rdptrust report --html``: the host table as an admin reads it."""

from __future__ import annotations

import html
import re
import socket
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from fixtures.cli import run_rdptrust as rdptrust
from fixtures.credentials import self_signed_with_name
from fixtures.lab import LabFactory
from rdptrust.lab.certs import HostCredentials

#: Each attribute at the 64-character upper bound: a subject of over 250 characters.
LONG_NAME = [
    (NameOID.COMMON_NAME, "rdp-gateway-" + "a" * 52),
    (NameOID.ORGANIZATIONAL_UNIT_NAME, "Remote Desktop Services " + "b" * 40),
    (NameOID.ORGANIZATION_NAME, "Contoso Holdings International " + "c" * 34),
    (NameOID.LOCALITY_NAME, "Llanfairpwllgwyngyllgogerychwyrndrobwllllantysiliogogogoch" + "d" * 6),
    (NameOID.COUNTRY_NAME, "GB"),
]


def long_subject_credentials() -> HostCredentials:
    name = x509.Name([x509.NameAttribute(oid, value) for oid, value in LONG_NAME])
    return self_signed_with_name(name, days=90)


def cells(page: str, target: str) -> list[str]:
    """The text of each cell of *target*'s row in the host table."""
    rows = re.findall(r'<tr class="host"[^>]*>(.*?)</tr>', page, re.S)
    (row,) = [r for r in rows if f">{target}<" in r]
    return [html.unescape(c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]


async def test_host_table_keeps_subjects_whole_shows_errors_and_sha1(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    # Given a host with a long certificate subject and a port nothing listens on
    lab = await lab_factory()
    credentials = long_subject_credentials()
    lab.set_credentials(credentials)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        refused = f"127.0.0.1:{sock.getsockname()[1]}"
    db = str(tmp_path / "inv.sqlite3")
    code, _, err = await rdptrust("scan", "--db", db, str(lab.target), refused)
    assert code == 0, err
    # When the HTML report is written
    out = tmp_path / "fleet.html"
    code, _, err = await rdptrust("report", "--db", db, "--html", str(out))
    assert code == 0, err
    page = out.read_text(encoding="utf-8")
    header = re.search(r"<thead><tr>(.*?)</tr></thead>", page, re.S)
    assert header is not None
    columns = [html.unescape(c) for c in re.findall(r"<th[^>]*>(.*?)</th>", header.group(1))]
    assert "SHA-1 thumbprint" in columns
    assert "Probe error" in columns
    host = dict(zip(columns, cells(page, str(lab.target)), strict=True))
    down = dict(zip(columns, cells(page, refused), strict=True))
    # Then the subject is whole, not cut or shortened
    subject = credentials.leaf.subject.rfc4514_string()
    assert len(subject) > 250
    assert host["Subject"] == subject
    assert "…" not in host["Subject"]
    # And the SHA-1 thumbprint is the one Windows shows (certmgr, Get-ChildItem Cert:)
    assert host["SHA-1 thumbprint"] == credentials.leaf.fingerprint(hashes.SHA1()).hex()
    assert host["Probe error"] == ""
    # And the unreachable host says why, in the table itself
    assert down["State"] == "connect"
    assert "connection refused" in down["Probe error"]
    assert refused in down["Probe error"]
    assert down["SHA-1 thumbprint"] == ""
