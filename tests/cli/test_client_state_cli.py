"""``diagnose --client-state FILE`` as a user runs it, and the Windows default (live
client state) through the reader's seams."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from fixtures.cli import no_pins
from fixtures.cli import run_rdptrust as rdptrust
from fixtures.documents import assert_valid
from fixtures.lab import LabFactory
from fixtures.winreg import fake_winreg
from rdptrust.cli.client_state import with_client_state
from rdptrust.cli.main import main
from rdptrust.engine import AssessOptions, client_live
from rdptrust.lab.runner import Lab

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "client-state"


async def diagnose(lab: Lab, tmp_path: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    store = tmp_path / "k.json"
    if not store.exists():
        no_pins(store)
    code, out, err = await rdptrust(
        "diagnose",
        str(lab.target),
        "--json",
        "--fetch-timeout",
        "1",
        "--root-list-url",
        lab.root_list_url,
        "--known-hosts",
        str(store),
        "--no-system-trust",
        *extra,
    )
    document = json.loads(out)
    assert_valid(document)
    return code, document, err


async def test_method2_client_state_removes_the_trusted_list_wait(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    # Windows 10, lists black-holed: trusted, disallowed and pin rules, 15 s each
    lab = await lab_factory(cert="self-signed", root_list="blackhole")
    code, before, _ = await diagnose(lab, tmp_path)
    assert code == 2
    assert 44 <= before["predicted_stall_s"] <= 46
    code, after, err = await diagnose(
        lab, tmp_path, "--client-state", str(VECTORS / "method2.json")
    )
    # Method 2 turns off the trusted list only (WINDOWS.md §2): 30 s remain
    assert code == 2, err
    assert 29 <= after["predicted_stall_s"] <= 31
    assert after["settings"]["root_update"] is False
    assert "judging with the client state of" in err
    assert "self-signed-not-pinned" in {p["code"] for p in after["problems"]}


async def test_gpo_internal_ca_client_state_trusts_the_chain(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    lab = await lab_factory(cert="ca", crl="blackhole", require="HYBRID")
    code, before, _ = await diagnose(lab, tmp_path)
    assert before["trust"]["trusted"] is False
    # Given the client's document with the lab's CA in Root (its key is made at test time)
    assert lab.ca_cert_path is not None
    ca = x509.load_pem_x509_certificate(lab.ca_cert_path.read_bytes())
    document = json.loads((VECTORS / "gpo-internal-ca.json").read_text(encoding="utf-8"))
    document["stores"]["root"].append(
        base64.b64encode(ca.public_bytes(serialization.Encoding.DER)).decode()
    )
    state = tmp_path / "pc042.json"
    state.write_text(json.dumps(document), encoding="utf-8")
    code, after, err = await diagnose(lab, tmp_path, "--client-state", str(state))
    assert after["trust"]["trusted"] is True, err
    assert 14 <= after["predicted_stall_s"] <= 16
    assert after["causes"][0]["purpose"] == "crl"
    assert code == 2


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rdptrust.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{", "not JSON"),
        ('{"schema": "rdptrust.client-state/1"}', "missing key"),
        ('{"schema": "rdptrust.diagnosis/2"}', "schema is 'rdptrust.diagnosis/2'"),
        ("[1]", "expected an object"),
    ],
)
def test_a_bad_client_state_file_is_one_line_and_exit_65(
    tmp_path: Path, content: str, words: str
) -> None:
    path = tmp_path / "state.json"
    path.write_text(content, encoding="utf-8")
    proc = _run("diagnose", "127.0.0.1:9", "--client-state", str(path))
    assert proc.returncode == 65, proc.stderr
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(f"rdptrust: error: {path}: ")
    assert words in proc.stderr


def test_client_state_usage_errors(tmp_path: Path) -> None:
    missing = _run("diagnose", "127.0.0.1:9", "--client-state", str(tmp_path / "nope.json"))
    assert missing.returncode == 64
    both = _run(
        "diagnose",
        "127.0.0.1:9",
        "--client-state",
        str(VECTORS / "method2.json"),
        "--no-client-state",
    )
    assert both.returncode == 64
    assert "not both" in both.stderr


@pytest.fixture
def on_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process as a Windows client with Method 2 applied, through the reader's seams."""
    registry = {client_live.POLICY_AUTHROOT: {"DisableRootAutoUpdate": 1}}
    monkeypatch.setattr(client_live, "is_windows", lambda: True)
    monkeypatch.setattr(client_live, "winreg_module", lambda: fake_winreg(registry))
    monkeypatch.setattr(client_live, "enum_certificates", lambda name: [])
    monkeypatch.setattr(client_live, "windows_version", lambda: "10.0.19045")


def test_on_windows_the_live_client_state_is_the_default(on_windows: None) -> None:
    given = AssessOptions()
    live = with_client_state(given, None, False)
    assert live.windows.root_update is False
    assert live.system_trust is False
    assert live.anchors is not None
    assert len(live.anchors) == 0
    assert with_client_state(given, None, True) is given


def test_elsewhere_there_is_no_default_client_state() -> None:
    given = AssessOptions()
    assert with_client_state(given, None, False) is given


def test_diagnose_on_windows_says_it_uses_the_live_state(
    on_windows: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        with pytest.raises(SystemExit) as exited:
            main(["diagnose", f"127.0.0.1:{port}", "--timeout", "2"])
    assert exited.value.code == 3
    err = capsys.readouterr().err
    assert "judging with the client state of this Windows machine's stores and policy" in err
    with pytest.raises(SystemExit) as exited:
        main(["diagnose", f"127.0.0.1:{port}", "--timeout", "2", "--no-client-state"])
    assert "judging with" not in capsys.readouterr().err
