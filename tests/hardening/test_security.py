"""Security properties as a user meets them: key modes, anonymous NTLM, loopback lab.

Key files are checked under umask 000, so a 0600 mode is rdptrust's doing, not the
environment's. What the client sends is captured on the lab's side of TLS.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import rdptrust.lab.rdp.credssp as lab_credssp
from fixtures.cli import run_rdptrust
from fixtures.lab import LabFactory
from rdptrust.protocol.credssp import TSRequest
from rdptrust.protocol.ntlm import MessageType, NegotiateFlags, NegotiateMessage, parse_negotiate

RDPTRUST = str(Path(sys.executable).with_name("rdptrust"))


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    env["HOME"] = str(tmp_path / "home")
    env["TMPDIR"] = str(tmp_path / "tmp")
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return env


def _umask_000() -> None:
    os.umask(0)


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RDPTRUST, *args],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=_umask_000,
    )


def _secret_files(root: Path) -> Iterator[Path]:
    """Files that hold a private key or a key's password."""
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if (
            b"PRIVATE KEY" in data
            or path.suffix in {".pfx", ".p12", ".key"}
            or "password" in path.name.lower()
        ):
            yield path


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_ca_init_and_issue_write_keys_0600_under_umask_000(tmp_path: Path) -> None:
    # Given umask 000 (every file would be world-readable by default)
    ca_dir = tmp_path / "ca"
    out = tmp_path / "rdp01"
    # When the CA is created and issues a host certificate
    init = _cli(tmp_path, "ca", "init", "--dir", str(ca_dir), "--name", "Hardening CA")
    assert init.returncode == 0, init.stderr
    issue = _cli(tmp_path, "ca", "issue", "rdp01.lab.test", "--dir", str(ca_dir), "--out", str(out))
    assert issue.returncode == 0, issue.stderr
    # Then every key, .pfx and password file is 0600 and there is at least one of each
    secrets = list(_secret_files(tmp_path))
    names = {path.suffix for path in secrets}
    assert ".pfx" in names
    assert any(
        b"PRIVATE KEY" in path.read_bytes() for path in secrets if path.is_relative_to(ca_dir)
    )
    assert any(b"PRIVATE KEY" in path.read_bytes() for path in secrets if path.is_relative_to(out))
    for path in secrets:
        assert _mode(path) == 0o600, path
    # and every other file follows the umask, as any program's new file does
    # (the lock files excepted: 0644, so no other user can hold the CA's lock)
    for path in tmp_path.rglob("*"):
        if path.is_file() and path not in secrets:
            expected = 0o644 if path.suffix == ".lock" else 0o666
            assert _mode(path) == expected, path


def test_lab_cli_key_files_are_0600_and_its_folder_private(tmp_path: Path) -> None:
    env = _env(tmp_path)
    proc = subprocess.Popen(
        [RDPTRUST, "lab", "--cert", "ca", "--count", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_umask_000,
    )
    try:
        assert proc.stdout is not None
        info: dict[str, Any] = json.loads(proc.stdout.readline())
        lab_dir = Path(info["ca_cert"]).parent
        assert lab_dir.is_relative_to(tmp_path / "tmp")
        assert _mode(lab_dir) == 0o700
        secrets = list(_secret_files(lab_dir))
        assert secrets, "the lab wrote no key file"
        for path in secrets:
            assert _mode(path) == 0o600, path
        # The listening sockets of the lab process: loopback only.
        listening = _listening_addresses(proc.pid)
        assert listening, "the lab listens on nothing"
        assert all(address.startswith("127.") for address in listening), listening
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    assert not (lab_dir).exists()


def test_pinned_store_is_0600_under_umask_000(tmp_path: Path) -> None:
    # trust needs a host to pin: an in-process lab would block on subprocess.run, so
    # the lab runs as its own process too.
    lab = subprocess.Popen([RDPTRUST, "lab"], env=_env(tmp_path), stdout=subprocess.PIPE, text=True)
    try:
        assert lab.stdout is not None
        info = json.loads(lab.stdout.readline())
        store = tmp_path / "pins" / "known_hosts.json"
        done = _cli(
            tmp_path, "trust", info["rdp"][0], "--known-hosts", str(store), "--timeout", "5"
        )
        assert done.returncode == 0, done.stderr
        assert _mode(store) == 0o600
    finally:
        lab.send_signal(signal.SIGTERM)
        lab.communicate(timeout=20)


def _listening_addresses(pid: int) -> list[str]:
    out = subprocess.run(
        ["ss", "-H", "-l", "-t", "-n", "-p"], capture_output=True, text=True, check=True
    ).stdout
    addresses = []
    for line in out.splitlines():
        if f"pid={pid}," in line:
            local = line.split()[3]
            addresses.append(local.rsplit(":", 1)[0])
    return addresses


def test_lab_binds_what_host_says(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [RDPTRUST, "lab", "--host", "127.0.0.2"],
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert info["rdp"][0].startswith("127.0.0.2:")
        assert set(_listening_addresses(proc.pid)) == {"127.0.0.2"}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)


# -- what the client sends --------------------------------------------------------------


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """Record every TSRequest and NTLM NEGOTIATE the lab parses from clients."""
    seen: dict[str, list[Any]] = {"ts_requests": [], "negotiates": []}
    parse_ts_request = lab_credssp.parse_ts_request

    def record_ts(data: bytes) -> tuple[TSRequest, int] | None:
        parsed = parse_ts_request(data)
        if parsed is not None:
            seen["ts_requests"].append(parsed[0])
        return parsed

    def record_negotiate(data: bytes) -> NegotiateMessage:
        seen["negotiates"].append(data)
        return parse_negotiate(data)

    monkeypatch.setattr(lab_credssp, "parse_ts_request", record_ts)
    monkeypatch.setattr(lab_credssp, "parse_negotiate", record_negotiate)
    return seen


async def _run(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    return await run_rdptrust(*args, env=_env(tmp_path), timeout=60)


async def test_ntlm_exchange_is_anonymous(
    lab_factory: LabFactory, captured: dict[str, list[Any]], tmp_path: Path
) -> None:
    # Given a lab that answers CredSSP with an NTLM CHALLENGE (and would take a logon)
    lab = await lab_factory(cert="ca")
    target = str(lab.target)
    # When probe, check and scan run against it as a user runs them
    runs = [
        await _run(tmp_path, "probe", target, "--timeout", "5", "--json"),
        await _run(tmp_path, "check", target, "--timeout", "5", "--no-system-trust"),
    ]
    for _, _, err in runs:
        assert "Traceback" not in err
    assert runs[0][0] == 0, runs[0][2]
    assert json.loads(runs[0][1])["ntlm"]["netbios_computer_name"] == "WIN-LAB01"
    # Then the lab saw NTLM NEGOTIATE messages only, each without a name in it
    assert captured["negotiates"], "no NTLM NEGOTIATE reached the lab"
    for token in captured["negotiates"]:
        assert token[:8] == b"NTLMSSP\x00"
        assert int.from_bytes(token[8:12], "little") == MessageType.NEGOTIATE
        message = parse_negotiate(token)
        assert message.domain_name is None
        assert message.workstation is None
        assert not message.flags & NegotiateFlags.OEM_DOMAIN_SUPPLIED
        assert not message.flags & NegotiateFlags.OEM_WORKSTATION_SUPPLIED
        # Domain and workstation fields: zero length, zero maximum length.
        assert token[16:20] == b"\x00\x00\x00\x00"
        assert token[24:28] == b"\x00\x00\x00\x00"
    # and never a second TSRequest (AUTHENTICATE, authInfo or pubKeyAuth)
    for request in captured["ts_requests"]:
        assert request.auth_info is None
        assert request.pub_key_auth is None
        assert len(request.nego_tokens) == 1
        assert int.from_bytes(request.nego_tokens[0][8:12], "little") == MessageType.NEGOTIATE
    for endpoint in lab.endpoints:
        assert not any(record.authenticate for record in endpoint.connections)
    assert any(r.ntlm_negotiate for e in lab.endpoints for r in e.connections)
