"""The live Windows reader, driven on any system through its seams (a fake winreg and
certificate stores), and ``rdptrust client-state`` on top of it."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest

from fixtures.documents import assert_valid
from fixtures.winreg import fake_winreg
from pki.certs_for_tests import hierarchy, issue
from rdptrust.cli.main import main
from rdptrust.engine import client_live
from rdptrust.engine.client_state import load_client_state
from rdptrust.errors import DataError, UsageError
from rdptrust.model.client_state import WinHttpProxy
from rdptrust.model.windows import ClientProfile
from rdptrust.report.client_state_script import client_state_script

# netsh winhttp set proxy proxy:8080 "<local>"
NAMED_PROXY = (
    bytes.fromhex("18000000 02000000 03000000 0a000000")
    + b"proxy:8080"
    + bytes.fromhex("07000000")
    + b"<local>"
)
# 2026-05-01T12:00:00.5Z as a FILETIME
LAST_SYNC = (134221104000000000 + 5_000_000).to_bytes(8, "little")


@pytest.fixture
def windows(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """This process as a Windows client: returns the registry and stores to fill in."""
    chain = hierarchy()
    setup: dict[str, Any] = {
        "registry": {},
        "stores": {
            "ROOT": [(chain.root.der, "x509_asn", True), (b"\x30\x00", "x509_asn", True)],
            "AuthRoot": [],
            "CA": [(chain.intermediate.der, "x509_asn", True), (b"\x30", "pkcs_7_asn", True)],
            "Disallowed": [],
        },
        "chain": chain,
        "version": "10.0.19045",
    }
    monkeypatch.setattr(client_live, "is_windows", lambda: True)
    monkeypatch.setattr(client_live, "winreg_module", lambda: fake_winreg(setup["registry"]))
    monkeypatch.setattr(client_live, "enum_certificates", lambda name: setup["stores"][name])
    monkeypatch.setattr(client_live, "windows_version", lambda: setup["version"])
    return setup


def test_a_default_client(windows: dict[str, Any]) -> None:
    state = client_live.read_live_client_state()
    chain = windows["chain"]
    # the undecodable Root entry and the PKCS #7 CA entry are left out
    assert state.roots == (chain.root.der,)
    assert state.intermediates == (chain.intermediate.der,)
    assert state.authroot == state.disallowed == ()
    assert state.authroot_ctl_present is False
    assert state.authroot_last_sync is None
    assert state.disable_root_auto_update is None
    assert state.enable_disallowed_cert_auto_update is None
    assert state.root_dir_url is None
    assert state.url_retrieval_timeout_ms is None
    assert state.proxy == WinHttpProxy(None, None)
    assert state.os_version == "10.0.19045"
    assert state.client == ClientProfile.WIN10


def test_every_policy_and_cache_value_is_read(windows: dict[str, Any]) -> None:
    banned = issue("Banned", ca=True)
    windows["stores"]["Disallowed"] = [(banned.der, "x509_asn", True)]
    windows["version"] = "6.3.9600"
    windows["registry"].update(
        {
            client_live.POLICY_AUTHROOT: {
                "DisableRootAutoUpdate": 1,
                "EnableDisallowedCertAutoUpdate": 0,
            },
            client_live.AUTO_UPDATE: {
                "EncodedCtl": b"\x30\x82",
                "LastSyncTime": LAST_SYNC,
                "RootDirUrl": "http://ctl.corp.example/ctl",
            },
            # the Group Policy path wins over the local one, value by value
            client_live.CHAIN_CONFIG_POLICY: {"ChainUrlRetrievalTimeoutMilliseconds": 5000},
            client_live.CHAIN_CONFIG_LOCAL: {
                "ChainUrlRetrievalTimeoutMilliseconds": 9000,
                "ChainRevAccumulativeUrlRetrievalTimeoutMilliseconds": 8000,
            },
            client_live.CONNECTIONS: {"WinHttpSettings": NAMED_PROXY},
        }
    )
    state = client_live.read_live_client_state()
    assert state.disallowed == (banned.der,)
    assert state.disable_root_auto_update is True
    assert state.enable_disallowed_cert_auto_update is False
    assert state.authroot_ctl_present is True
    assert state.authroot_last_sync == dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)
    assert state.root_dir_url == "http://ctl.corp.example/ctl"
    assert state.url_retrieval_timeout_ms == 5000
    assert state.rev_accumulative_timeout_ms == 8000
    assert state.proxy == WinHttpProxy("proxy:8080", "<local>")
    assert state.client == ClientProfile.WIN81


def test_a_malformed_registry_value_is_a_data_error(windows: dict[str, Any]) -> None:
    windows["registry"][client_live.CONNECTIONS] = {"WinHttpSettings": NAMED_PROXY[:20]}
    with pytest.raises(DataError, match="the client's registry: WinHttpSettings"):
        client_live.read_live_client_state()


def test_off_windows_it_says_to_use_the_script(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_live, "is_windows", lambda: False)
    with pytest.raises(UsageError, match="--script"):
        client_live.read_live_client_state()


def _main(*args: str) -> int:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    code = exited.value.code
    assert isinstance(code, int)
    return code


def test_the_command_writes_a_valid_document(windows: dict[str, Any], tmp_path: Path) -> None:
    windows["registry"][client_live.CONNECTIONS] = {"WinHttpSettings": NAMED_PROXY}
    out = tmp_path / "state.json"
    assert _main("client-state", "--out", str(out)) == 0
    document = json.loads(out.read_text(encoding="utf-8"))
    assert_valid(document)
    state = load_client_state(out)
    assert state.roots == (windows["chain"].root.der,)
    assert state.proxy.server == "proxy:8080"


def test_the_command_off_windows_is_a_usage_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(client_live, "is_windows", lambda: False)
    assert _main("client-state", "--out", str(tmp_path / "s.json")) == 64
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--script" in err
    assert not (tmp_path / "s.json").exists()


def test_the_command_malformed_registry_is_exit_65(
    windows: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    windows["registry"][client_live.AUTO_UPDATE] = {"LastSyncTime": b"\x01\x02"}
    assert _main("client-state", "--out", str(tmp_path / "s.json")) == 65
    assert "LastSyncTime" not in capsys.readouterr().out


def test_the_script_is_written_atomically_and_reads_what_the_reader_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_live, "is_windows", lambda: False)  # works on any system
    out = tmp_path / "client-state.ps1"
    assert _main("client-state", "--script", "--out", str(out)) == 0
    data = out.read_bytes()
    assert data.decode("utf-8") == client_state_script()
    assert b"\r\n" in data
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert [p.name for p in tmp_path.iterdir()] == ["client-state.ps1"]  # no temporary left
    text = data.decode().replace("\r\n", "\n")
    joined = text.replace("' +\n    '", "")  # a long key path is split over two lines
    # the same registry values and stores as the live reader
    for path in (
        client_live.POLICY_AUTHROOT,
        client_live.AUTO_UPDATE,
        client_live.CHAIN_CONFIG_POLICY,
        client_live.CHAIN_CONFIG_LOCAL,
        client_live.CONNECTIONS,
    ):
        assert f"'HKLM:\\{path}'" in joined, path
    for name in (
        "DisableRootAutoUpdate",
        "EnableDisallowedCertAutoUpdate",
        "EncodedCtl",
        "LastSyncTime",
        "RootDirUrl",
        "ChainUrlRetrievalTimeoutMilliseconds",
        "ChainRevAccumulativeUrlRetrievalTimeoutMilliseconds",
        "WinHttpSettings",
        "Get-StoreDer 'Root'",
        "Get-StoreDer 'AuthRoot'",
        "Get-StoreDer 'CA'",
        "Get-StoreDer 'Disallowed'",
    ):
        assert name in text, name
    # every key of the document, and nothing that writes to the machine but the -Out file
    vector = Path(__file__).parents[1] / "vectors" / "client-state" / "method2.json"
    for key in json.loads(vector.read_text(encoding="utf-8")):
        assert re.search(rf"^\s*{key} = ", text, re.M), key
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert not re.search(r"Set-ItemProperty|New-Item|Remove-|Import-|certutil|netsh", code)
    assert text.count("Set-Content") == 1
