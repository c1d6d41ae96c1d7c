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
