"""Certificate fields with terminal control sequences must not reach the user's terminal raw.

A host may name itself ``\\x1b]0;...\\x07`` (set the window title), ``\\x1b[31m`` (colours)
or put ``\\r`` in its subject to overwrite the line a user reads. Every command that
prints certificate fields must show them inert (escaped, replaced or dropped).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from fixtures.cli import run_rdptrust
from fixtures.credentials import self_signed_with_name
from fixtures.lab import LabFactory
from rdptrust.lab.certs import HostCredentials

HOSTILE_CN = "\x1b]0;pwned\x07\x1b[31mRED\rINJECTED"
#: C0 controls and DEL, except newline: none of them may come from a certificate.
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


def hostile_credentials() -> HostCredentials:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOSTILE_CN)])
    return self_signed_with_name(name, days=20)


async def _run(tmp_path: Path, *args: str) -> tuple[int, str]:
    env = dict(os.environ)
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    env["HOME"] = str(tmp_path)
    env["COLUMNS"] = "200"
    code, out, err = await run_rdptrust(*args, env=env, timeout=60)
    return code, out + err


def _command(tmp_path: Path, name: str, target: str) -> list[str]:
    db = str(tmp_path / "inventory.sqlite3")
    return {
        "probe": ["probe", target, "--no-enumerate"],
        "diagnose": ["diagnose", target, "--no-system-trust", "--root-update", "off"],
        "check": ["check", target, "--no-system-trust"],
        "trust": ["trust", target, "--known-hosts", str(tmp_path / "pins.json")],
        "scan": ["scan", target, "--db", db],
    }[name]


@pytest.mark.parametrize(
    "command",
    ["probe", "diagnose", "check", "trust", "scan"],
)
async def test_control_characters_from_a_certificate_stay_off_the_terminal(
    lab_factory: LabFactory, tmp_path: Path, command: str
) -> None:
    # Given a host whose certificate subject carries terminal control sequences
    lab = await lab_factory()
    lab.set_credentials(hostile_credentials())
    # When the command shows that host
    code, text = await _run(tmp_path, *_command(tmp_path, command, str(lab.target)))
    assert "Traceback" not in text
    assert code in (0, 1, 2, 3), text
    # Then no control character reaches the output
    assert not CONTROL.findall(text), CONTROL.findall(text)


async def test_hosts_table_shows_a_hostile_name_inert(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    lab = await lab_factory()
    lab.set_credentials(hostile_credentials())
    db = str(tmp_path / "inventory.sqlite3")
    code, text = await _run(tmp_path, "scan", str(lab.target), "--db", db)
    assert code == 0, text
    code, text = await _run(tmp_path, "hosts", "--db", db)
    assert code == 0, text
    assert "RED" in text
    assert not CONTROL.findall(text), CONTROL.findall(text)


# --- a hostile host and responder: URLs, subject and NTLM names --------------------------

#: Window title (OSC 0), erase line, colour, bell, carriage return, right-to-left override.
EVIL = "\x1b]0;T\x07\x1b[2K\x1b[31m\r\u202e"
#: What must never reach stdout or stderr raw: C0 (but newline), DEL, C1, bidi controls.
UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def hostile_urls_credentials() -> HostCredentials:
    """A certificate whose subject, issuer, OCSP, caIssuers and CRL URLs carry *EVIL*.

    The URLs point at port 9 on loopback (nothing listens), so every retrieval fails
    fast and the URL is shown in the outcome.
    """
    import datetime as dt

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import AuthorityInformationAccessOID

    url = "http://127.0.0.1:9/\x1b]0;T\x07\x1b[2K\x1b[31m/"
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"host{EVIL}gpj.exe")])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"CA{EVIL}")])
    aia = x509.AuthorityInformationAccess(
        [
            x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(url + "ocsp")
            ),
            x509.AccessDescription(
                AuthorityInformationAccessOID.CA_ISSUERS,
                x509.UniformResourceIdentifier(url + "ca.crt"),
            ),
        ]
    )
    cdp = x509.CRLDistributionPoints(
        [x509.DistributionPoint([x509.UniformResourceIdentifier(url + "c.crl")], None, None, None)]
    )
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=20))
        .add_extension(aia, critical=False)
        .add_extension(cdp, critical=False)
        .sign(key, hashes.SHA256())
    )
    return HostCredentials((cert,), key, cert.fingerprint(hashes.SHA256()).hex())


async def test_hostile_urls_subject_and_ntlm_names_stay_inert_in_every_command(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    # Given a host whose certificate names and URLs, and whose NTLM CHALLENGE names
    # (NetBIOS computer, DNS domain, tree and computer), carry terminal and bidi controls
    chain, key = hostile_urls_credentials().write_pem(tmp_path / "creds")
    lab = await lab_factory(
        cert_file=chain,
        key_file=key,
        ntlm_computer="W\x1b[2K\u202e",
        ntlm_dns_domain="lab\u202etest\x1b]0;x\x07",
    )
    target = str(lab.target)
    db = str(tmp_path / "inventory.sqlite3")
    commands = [
        ["probe", target],
        ["diagnose", target, "--no-system-trust", "--root-update", "off"],
        ["check", target, "--no-system-trust"],
        ["check", target, "--no-system-trust", "--diagnose", "--root-update", "off"],
        ["scan", target, "--db", db, "--diagnose"],
        ["hosts", "--db", db],
        ["history", target, "--db", db],
        ["report", "--db", db, "--jsonl", "-"],
        ["probe", target, "--json"],
    ]
    for args in commands:
        # When each command shows that host
        code, text = await _run(tmp_path, *args)
        assert "Traceback" not in text, (args, text)
        assert code in (0, 1, 2, 3), (args, text)
        # Then no raw control or bidi character reaches stdout or stderr
        assert not UNSAFE.findall(text), (
            args,
            [ln for ln in text.splitlines() if UNSAFE.search(ln)],
        )
    # and what was escaped is still there to read
    code, text = await _run(tmp_path, "probe", target)
    assert "\\x1b]0;T" in text or "\\1B]0" in text
    assert "\\u202e" in text or "\\E2\\80\\AE" in text


def test_the_sanitiser_escapes_each_attack_visibly() -> None:
    from rdptrust.model.text import safe_output, safe_text

    for raw, shown in [
        ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),
        ("\x1b[2K", "\\x1b[2K"),
        ("a\rb", "a\\x0db"),
        ("\x9b31m", "\\x9b31m"),
        ("gpj\u202eexe", "gpj\\u202eexe"),
        ("\u2066x\u2069", "\\u2066x\\u2069"),
        ("a\u200fb\u061c", "a\\u200fb\\u061c"),
        ("Zürich Ωmega", "Zürich Ωmega"),
    ]:
        assert safe_text(raw) == shown
    assert safe_text("a\nb") == "a\\x0ab"
    assert safe_output("a\nb\tc\x1b") == "a\nb\tc\\x1b"


def test_has_unsafe_finds_every_character_the_sanitisers_escape() -> None:
    # the checks skip the search for printable text: every character they would miss
    # that way, over the Basic Multilingual Plane, would be one the sanitisers escape
    from rdptrust.model.text import has_unsafe, has_unsafe_layout, safe_output, safe_text

    for code in range(0x10000):
        if 0xD800 <= code <= 0xDFFF:
            continue  # surrogates: no text holds them alone
        char = chr(code)
        for text in (char, f"CN=WIN-{char}-01"):
            assert has_unsafe(text) == (safe_text(text) != text), hex(code)
            assert has_unsafe_layout(text) == (safe_output(text) != text), hex(code)
