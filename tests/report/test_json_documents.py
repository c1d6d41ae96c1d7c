"""Every JSON document of every command, run as a user runs it, validates against its
shipped schema: probe, diagnose, check, demo, trust, scan/hosts/history/report, policy,
ca, and the line ``rdptrust lab`` prints. Hosts that answer and hosts that do not."""

from __future__ import annotations

import json
import select
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from fixtures.cli import RDPTRUST, no_pins, run_rdptrust
from fixtures.documents import assert_valid
from fixtures.lab import LabFactory
from fixtures.winreg import fake_winreg
from rdptrust.report.schemas import schema_files

#: Every document rdptrust prints; each is checked by a test below.
DOCUMENTS = {
    "rdptrust.probe/2",
    "rdptrust.diagnosis/2",
    "rdptrust.check/2",
    "rdptrust.demo/2",
    "rdptrust.trust/2",
    "rdptrust.trust-list/1",
    "rdptrust.scan-host/2",
    "rdptrust.hosts/2",
    "rdptrust.history/2",
    "rdptrust.policy/1",
    "rdptrust.registry-pol/1",
    "rdptrust.ca-init/1",
    "rdptrust.ca-issue/2",
    "rdptrust.ca-revoke/1",
    "rdptrust.ca-crl/2",
    "rdptrust.ca-list/1",
    "rdptrust.lab/1",
    "rdptrust.capi2/1",
    "rdptrust.client-state/1",
    "rdptrust.db/1",
}


def _refused_target() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"127.0.0.1:{port}"


async def _document(schema: str, *args: str, codes: tuple[int, ...] = (0,)) -> dict[str, Any]:
    """Run ``rdptrust ARGS``; its output is one *schema* document, valid against its schema."""
    code, out, err = await run_rdptrust(*args)
    assert code in codes, (args, code, err)
    document = json.loads(out)
    assert document["schema"] == schema
    assert_valid(document)
    return dict(document)


def test_every_shipped_schema_is_checked_here() -> None:
    assert set(schema_files()) == DOCUMENTS


def test_client_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Written only on Windows: here through the live reader's seams (a fake registry and
    empty stores); tests/engine/test_client_live.py fills them."""
    from rdptrust.cli.main import main
    from rdptrust.engine import client_live

    monkeypatch.setattr(client_live, "is_windows", lambda: True)
    monkeypatch.setattr(client_live, "winreg_module", lambda: fake_winreg({}))
    monkeypatch.setattr(client_live, "enum_certificates", lambda name: [])
    out = tmp_path / "state.json"
    with pytest.raises(SystemExit) as exited:
        main(["client-state", "--out", str(out)])
    assert exited.value.code == 0
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["schema"] == "rdptrust.client-state/1"
    assert_valid(document)


async def test_probe_diagnose_check(lab_factory: LabFactory, tmp_path: Path) -> None:
    lab = await lab_factory(root_list="blackhole", rdp_methods=None)
    target = str(lab.target)
    pins = str(no_pins(tmp_path / "pins.json"))
    probe = await _document("rdptrust.probe/2", "probe", target, "--json", "--timeout", "5")
    assert probe["ntlm"]["netbios_computer_name"] == "WIN-LAB01"
    await _document("rdptrust.probe/2", "probe", target, "--json", "--no-enumerate")
    diagnosis = await _document(
        "rdptrust.diagnosis/2",
        *("diagnose", target, "--json", "--root-list-url", lab.root_list_url),
        *("--fetch-timeout", "0.5", "--known-hosts", pins),
        codes=(2,),
    )
    assert diagnosis["probe"]["certificate"] == probe["certificate"] | {
        "days_left": diagnosis["probe"]["certificate"]["days_left"]
    }
    # 1 (self-signed, not pinned) or, when the lab resets the Standard RDP Security
    # connections instead of closing them, 2 (the finding then comes from the negotiation)
    await _document("rdptrust.check/2", "check", target, "--json", codes=(1, 2))
    await _document(
        "rdptrust.check/2",
        *("check", target, "--json", "--diagnose", "--root-list-url", lab.root_list_url),
        *("--fetch-timeout", "0.5"),
        codes=(1, 2),
    )


async def test_hosts_that_cannot_be_probed(tmp_path: Path) -> None:
    target = _refused_target()
    probe = await _document("rdptrust.probe/2", "probe", target, "--json", codes=(3,))
    assert probe["error"]["kind"] == "connect"
    diagnosis = await _document(
        "rdptrust.diagnosis/2",
        *("diagnose", target, "--json", "--known-hosts", str(no_pins(tmp_path / "pins.json"))),
        codes=(3,),
    )
    assert diagnosis["probe"]["error"] == probe["error"] | {
        "message": diagnosis["probe"]["error"]["message"]
    }
    check = await _document("rdptrust.check/2", "check", target, "--json", codes=(3,))
    assert check["error"]["kind"] == "connect"


async def test_demo() -> None:
    demo = await _document("rdptrust.demo/2", "demo", "--json", "--fetch-timeout", "0.2")
    assert demo["before"]["schema"] == demo["after"]["schema"] == "rdptrust.diagnosis/2"


async def test_trust(lab_factory: LabFactory, tmp_path: Path) -> None:
    lab = await lab_factory()
    store = ("--known-hosts", str(tmp_path / "pins.json"))
    target = str(lab.target)
    pinned = await _document(
        "rdptrust.trust/2", "trust", target, *store, "--out", str(tmp_path / "t"), "--json"
    )
    assert pinned["pin"]["status"] == "not-pinned"
    assert pinned["previous"] is None
    again = await _document("rdptrust.trust/2", "trust", target, *store, "--json")
    assert again["pin"]["status"] == "match"
    assert again["previous"]["sha256"] == pinned["certificate"]["sha256"]
    lab.regenerate_certificate()
    refused = await _document("rdptrust.trust/2", "trust", target, *store, "--json", codes=(2,))
    assert refused["pinned"] is False
    assert refused["pin"]["looks_like_recreation"] is True
    listed = await _document("rdptrust.trust-list/1", "trust", "--list", *store, "--json")
    assert [p["sha256"] for p in listed["pins"]] == [pinned["certificate"]["sha256"]]


async def test_scan_hosts_history_report(lab_factory: LabFactory, tmp_path: Path) -> None:
    lab = await lab_factory(root_list="blackhole", count=2)
    db = ("--db", str(tmp_path / "inventory.sqlite3"))
    targets = [*map(str, lab.targets), _refused_target()]
    passes = []
    for extra in (("--enumerate",), ("--diagnose", "--root-list-url", lab.root_list_url)):
        code, out, err = await run_rdptrust(
            "scan", *db, *targets, "--jsonl", "--fetch-timeout", "0.5", *extra
        )
        assert code == 0, err
        lines = [json.loads(line) for line in out.splitlines()]
        assert len(lines) == 3
        for line in lines:
            assert line["schema"] == "rdptrust.scan-host/2"
            assert_valid(line)
        passes.append(lines)
    enumerated, diagnosed = passes
    assert sum(line["ntlm"] is not None for line in enumerated) == 2
    assert sum(line["protocols"] != {} for line in enumerated) == 2
    assert {line["verdict"] for line in diagnosed} == {"critical", "unknown"}
    assert sum(line["retrievals"] is not None for line in diagnosed) == 3
    hosts = await _document("rdptrust.hosts/2", "hosts", *db, "--json")
    assert len(hosts["hosts"]) == 3
    for target in (targets[0], targets[-1]):
        history = await _document("rdptrust.history/2", "history", *db, target, "--json")
        assert len(history["observations"]) == 2
    out_file = tmp_path / "report.jsonl"
    code, _, err = await run_rdptrust("report", *db, "--jsonl", str(out_file))
    assert code == 0, err
    reported = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert len(reported) == 3
    for line in reported:
        assert_valid(line)


async def test_policy(tmp_path: Path) -> None:
    for args in (
        ("root-autoupdate", "--disable"),
        ("root-autoupdate", "--enable"),
        ("retrieval-timeouts", "--url-timeout-ms", "3000"),
    ):
        out = tmp_path / args[-1]
        written = await _document("rdptrust.policy/1", "policy", *args, "--out", str(out), "--json")
        shown = await _document(
            "rdptrust.registry-pol/1", "policy", "show", written["files"]["pol"], "--json"
        )
        assert shown["entries"] == written["entries"]


CAPI2_LOG = Path(__file__).resolve().parents[1] / "vectors/capi2/windows7-capi2-operational.evtx"


async def test_capi2(lab_factory: LabFactory, tmp_path: Path) -> None:
    log = CAPI2_LOG
    plain = await _document("rdptrust.capi2/1", "capi2", str(log), "--json")
    assert plain["comparison"] is None
    # with a host whose certificate the log does not hold
    lab = await lab_factory(cert="self-signed")
    store = no_pins(tmp_path / "k.json")
    host = ("--host", str(lab.target), "--known-hosts", str(store), "--fetch-timeout", "1")
    root = ("--root-list-url", lab.root_list_url)
    compared = await _document("rdptrust.capi2/1", "capi2", str(log), *host, *root, "--json")
    assert compared["chain_builds"] == []
    assert compared["comparison"]["task_id"] is None


async def test_ca(tmp_path: Path) -> None:
    ca = ("--dir", str(tmp_path / "ca"))
    init = ("ca", "init", *ca, "--crl-url", "http://pki.test/rdp.crl")
    await _document("rdptrust.ca-init/1", *init, "--json")
    issued = await _document(
        "rdptrust.ca-issue/2",
        *("ca", "issue", "rdp01.test", *ca, "--dns", "rdp01", "--out", str(tmp_path / "h")),
        "--json",
    )
    assert issued["certificate"]["san"] == ["DNS:rdp01.test", "DNS:rdp01"]
    revoked = await _document("rdptrust.ca-revoke/1", "ca", "revoke", "rdp01.test", *ca, "--json")
    assert [r["serial"] for r in revoked["revoked"]] == [issued["certificate"]["serial"]]
    crl = await _document("rdptrust.ca-crl/2", "ca", "crl", *ca, "--json")
    assert crl["revoked_count"] == 1
    listed = await _document("rdptrust.ca-list/1", "ca", "list", *ca, "--json")
    assert listed["issued"][0]["revoked_at"] is not None


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("--cert", "ca", "--count", "2", "--rdp-methods", "128BIT", "--rdp-level", "high"),
        ("--count", "2", "--distinct-certs", "--hostile", "garbage", "--no-negotiation"),
    ],
)
def test_lab_line(args: tuple[str, ...]) -> None:
    proc = subprocess.Popen(
        [*RDPTRUST, "lab", *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        assert ready, "no line from rdptrust lab"
        line = json.loads(proc.stdout.readline())
        assert line["schema"] == "rdptrust.lab/1"
        assert_valid(line)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


async def test_db(tmp_path: Path) -> None:
    db = str(tmp_path / "inv.sqlite3")
    migrated = await _document("rdptrust.db/1", "db", "migrate", "--db", db, "--json")
    assert migrated["migrated_from"] == 0
    checked = await _document("rdptrust.db/1", "db", "check", "--db", db, "--json")
    assert checked["pruned"] is None
    pruned = await _document(
        "rdptrust.db/1", "db", "prune", "--db", db, "--keep-days", "30", "--json"
    )
    assert pruned["pruned"]["deleted_observations"] == 0
