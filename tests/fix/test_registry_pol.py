"""Registry.pol: byte-exact against the MS-GPREG layout, round trips, Samba's parser, bad files."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rdptrust.errors import RemoteProtocolError
from rdptrust.fix.policy import AUTHROOT_POLICY_KEY, root_autoupdate, write_policy_artifacts
from rdptrust.fix.registry_pol import (
    PolicyEntry,
    RegType,
    build_registry_pol,
    parse_registry_pol,
)

SAMBA_PYTHON = "/usr/bin/python3"


def spec_layout(key: str, name: str, type_: int, data: bytes) -> bytes:
    """Built independently from MS-GPREG 2.2.1, character by character."""

    def u(text: str) -> bytes:
        return text.encode("utf-16-le")

    return (
        bytes.fromhex("50 52 65 67 01 00 00 00")
        + u("[")
        + u(key)
        + b"\x00\x00"
        + u(";")
        + u(name)
        + b"\x00\x00"
        + u(";")
        + struct.pack("<I", type_)
        + u(";")
        + struct.pack("<I", len(data))
        + u(";")
        + data
        + u("]")
    )


def test_method2_file_is_byte_exact() -> None:
    policy = root_autoupdate(disable=True)
    expected = spec_layout(AUTHROOT_POLICY_KEY, "DisableRootAutoUpdate", 4, b"\x01\x00\x00\x00")
    assert build_registry_pol(policy.entries) == expected
    assert parse_registry_pol(expected) == policy.entries
    assert policy.entries[0].value == 1


def test_enable_is_the_reverse() -> None:
    assert root_autoupdate(disable=False).entries[0].value == 0


def test_several_entries_and_types_round_trip() -> None:
    entries = (
        PolicyEntry.dword(r"Software\Policies\A", "One", 1),
        PolicyEntry.string(r"Software\Policies\A", "Name", "héllo wörld"),
        PolicyEntry(r"Software\Policies\B", "**del.Old", RegType.REG_SZ, b" \x00\x00\x00"),
        PolicyEntry(r"Software\Policies\B", "Blob", RegType.REG_BINARY, bytes(range(7))),
        PolicyEntry(r"Software\Policies\B", "Q", RegType.REG_QWORD, struct.pack("<Q", 2**40)),
    )
    data = build_registry_pol(entries)
    parsed = parse_registry_pol(data)
    assert parsed == entries
    assert parsed[1].value == "héllo wörld"
    assert parsed[4].value == 2**40


@pytest.mark.parametrize(
    ("data", "fragment", "offset"),
    [
        (b"", "shorter than the 8-byte", 0),
        (b"NOPE\x01\x00\x00\x00", "PReg signature", 0),
        (b"PReg\x02\x00\x00\x00", "version 2", 4),
        (b"PReg\x01\x00\x00\x00x", "'['", 8),
        (spec_layout("K", "V", 4, b"\x01\x00\x00\x00")[:-2], "']'", 38),
        (
            (lambda b: b[:28] + struct.pack("<I", 100) + b[32:])(
                spec_layout("K", "V", 4, b"\x01\x00\x00\x00")
            ),
            "runs past the end",
            28,
        ),
        (b"PReg\x01\x00\x00\x00[\x00K\x00", "not terminated", 10),
    ],
)
def test_corrupt_files_name_the_problem(data: bytes, fragment: str, offset: int | None) -> None:
    with pytest.raises(RemoteProtocolError, match=re.escape(fragment)) as info:
        parse_registry_pol(data)
    if offset is not None:
        assert info.value.offset == offset


@given(st.binary(max_size=200))
def test_fuzz_only_protocol_errors(data: bytes) -> None:
    try:
        parse_registry_pol(b"PReg\x01\x00\x00\x00" + data)
    except RemoteProtocolError:
        pass


names = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x2FFF, exclude_characters="\x7f"),
    min_size=1,
    max_size=30,
)


@given(key=names, name=names, value=st.integers(0, 2**32 - 1))
def test_round_trip_property(key: str, name: str, value: int) -> None:
    entry = PolicyEntry.dword(key, name, value)
    assert parse_registry_pol(build_registry_pol([entry])) == (entry,)


def samba_available() -> bool:
    if not Path(SAMBA_PYTHON).exists():
        return False
    probe = subprocess.run(
        [SAMBA_PYTHON, "-c", "import samba.dcerpc.preg"], capture_output=True, timeout=30
    )
    return probe.returncode == 0


@pytest.mark.peer
def test_samba_reads_our_file(tmp_path: Path) -> None:
    if not samba_available():
        pytest.skip("Samba's Python bindings are not installed (Debian python3-samba)")
    files = write_policy_artifacts(root_autoupdate(disable=True), tmp_path)
    script = (
        "import sys, json\n"
        "from samba.dcerpc import preg\n"
        "from samba.ndr import ndr_unpack\n"
        "f = ndr_unpack(preg.file, open(sys.argv[1], 'rb').read())\n"
        "print(json.dumps([[e.keyname, e.valuename, e.type, e.data] for e in f.entries]))\n"
    )
    out = subprocess.run(
        [SAMBA_PYTHON, "-c", script, str(files["pol"])],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(out.stdout) == [[AUTHROOT_POLICY_KEY, "DisableRootAutoUpdate", 4, 1]]


def test_reg_and_powershell_files(tmp_path: Path) -> None:
    files = write_policy_artifacts(root_autoupdate(disable=True), tmp_path)
    reg = files["reg"].read_bytes()
    assert reg.startswith(b"\xff\xfe")
    text = reg[2:].decode("utf-16-le")
    assert text.startswith("Windows Registry Editor Version 5.00\r\n")
    assert (
        "[HKEY_LOCAL_MACHINE\\Software\\Policies\\Microsoft\\SystemCertificates\\AuthRoot]" in text
    )
    assert '"DisableRootAutoUpdate"=dword:00000001' in text
    ps1 = files["ps1"].read_text(encoding="utf-8-sig")
    assert "-Name 'DisableRootAutoUpdate' -PropertyType DWord -Value 1" in ps1
    assert "HKLM:\\Software\\Policies\\Microsoft\\SystemCertificates\\AuthRoot" in ps1


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rdptrust.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_write_then_show(tmp_path: Path) -> None:
    out = tmp_path / "gpo"
    proc = run_cli("policy", "root-autoupdate", "--disable", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert (out / "Registry.pol").exists()
    shown = run_cli("policy", "show", str(out / "Registry.pol"), "--json")
    assert shown.returncode == 0
    doc = json.loads(shown.stdout)
    assert doc["entries"] == [
        {
            "key": AUTHROOT_POLICY_KEY,
            "value_name": "DisableRootAutoUpdate",
            "type": "REG_DWORD",
            "data": "01000000",
            "value": 1,
        }
    ]


def test_cli_timeouts(tmp_path: Path) -> None:
    proc = run_cli(
        "policy", "retrieval-timeouts", "--url-timeout-ms", "3000", "--out", str(tmp_path), "--json"
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    values = {e["value_name"]: e["value"] for e in doc["entries"]}
    assert values == {
        "ChainUrlRetrievalTimeoutMilliseconds": 3000,
        "ChainRevAccumulativeUrlRetrievalTimeoutMilliseconds": 20000,
    }
    assert parse_registry_pol((tmp_path / "Registry.pol").read_bytes())[0].value == 3000


def test_cli_refuses_corrupt_file(tmp_path: Path) -> None:
    bad = tmp_path / "Registry.pol"
    bad.write_bytes(b"PReg\x01\x00\x00\x00[\x00garbage")
    proc = run_cli("policy", "show", str(bad))
    assert proc.returncode == 64
    assert proc.stderr.count("\n") == 1
    assert "not a valid Registry.pol" in proc.stderr
    assert "Traceback" not in proc.stderr
    missing = run_cli("policy", "show", str(tmp_path / "none.pol"))
    assert missing.returncode == 64
    assert "cannot read" in missing.stderr


def test_cli_needs_a_mode(tmp_path: Path) -> None:
    proc = run_cli("policy", "root-autoupdate", "--out", str(tmp_path))
    assert proc.returncode == 64
    assert not shutil.which("nonexistent-binary")


def test_show_escapes_names_and_data_each_on_one_line(tmp_path: Path) -> None:
    # Given a Registry.pol whose value name holds a terminal title escape (with its BEL)
    # and whose REG_SZ data holds a CR LF
    pol = tmp_path / "Registry.pol"
    hostile = PolicyEntry.string(
        r"Software\Policies\Test", "Name\x1b]0;pwned\x07", "line one\r\nline two"
    )
    pol.write_bytes(build_registry_pol([hostile]))
    # When it is shown on the terminal table
    shown = run_cli("policy", "show", str(pol))
    # Then no control character reaches the output, and the data stays on one row
    assert shown.returncode == 0, shown.stderr
    assert "\x1b" not in shown.stdout
    assert "\x07" not in shown.stdout
    assert "\r" not in shown.stdout
    (row,) = [line for line in shown.stdout.splitlines() if "Name" in line and "pwned" in line]
    assert "line one" in row
    assert "line two" in row
