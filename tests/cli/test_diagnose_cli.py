"""`rdptrust diagnose` and `rdptrust demo` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from fixtures.cli import no_pins
from fixtures.cli import run_rdptrust as rdptrust
from fixtures.documents import assert_valid
from fixtures.lab import LabFactory
from rdptrust.lab.runner import Lab
from rdptrust.lab.standard_security import parse_methods
from rdptrust.model import catalog
from rdptrust.pki.pinning import KnownHosts, pin_from_certificate
from rdptrust.report.diagnosis import FINDINGS_TITLE


async def diagnose_lab(lab: Lab, store: Path, *extra: str) -> tuple[int, str, str]:
    """``rdptrust diagnose`` of the lab's host, 1 s per URL, its root list, *store* pins
    (made empty when it is not there yet)."""
    if not store.exists():  # noqa: ASYNC240 - a local stat, before the command runs
        no_pins(store)
    return await rdptrust(
        "diagnose",
        str(lab.target),
        "--fetch-timeout",
        "1",
        "--root-list-url",
        lab.root_list_url,
        "--known-hosts",
        str(store),
        *extra,
    )


async def test_json_and_exit_codes(lab_factory: LabFactory, tmp_path: Path) -> None:
    lab = await lab_factory(cert="self-signed", root_list="blackhole")
    code, out, err = await diagnose_lab(lab, tmp_path / "k.json", "--json")
    assert code == 2, err
    doc = json.loads(out)
    assert_valid(doc)
    assert doc["schema"] == "rdptrust.diagnosis/2"
    assert doc["verdict"] == "critical"
    # WINDOWS.md §2: three list syncs (trusted, disallowed, pin rules), 15 s each
    assert 44 <= doc["predicted_stall_s"] <= 46
    (root,) = [r for r in doc["retrievals"] if r["purpose"] == "root_list"]
    assert root["outcome"] == "timeout"
    assert root["modelled"] is True
    # the sequence file comes first; without an answer the cabinet is not fetched
    assert root["url"] == lab.root_list_url.replace("authrootstl.cab", "authrootseq.txt")
    assert {"code", "severity", "message"} <= set(doc["problems"][0])
    assert doc["fixes"][0]["commands"][0]["command"].startswith("rdptrust trust")
    assert doc["probe"]["certificate"]["sha256"] == lab.certificate_sha256
    # Method 2 modelled: the disallowed list and pin rules stay
    code, out, _ = await diagnose_lab(lab, tmp_path / "k.json", "--json", "--root-update", "off")
    assert code == 2
    assert_valid(doc := json.loads(out))
    assert 29 <= doc["predicted_stall_s"] <= 31
    # with the disallowed-list switch too, only the prompt is left, a warning
    code, out, _ = await diagnose_lab(
        lab, tmp_path / "k.json", "--json", "--root-update", "off", "--disallowed-update", "off"
    )
    assert code == 1
    assert_valid(doc := json.loads(out))
    assert doc["predicted_stall_s"] == 0


async def test_pinned_is_exit_0_and_readable(lab_factory: LabFactory, tmp_path: Path) -> None:
    lab = await lab_factory(cert="self-signed", root_list="blackhole", require="HYBRID")
    store = tmp_path / "k.json"
    # Given diagnose says untrusted, with the root-list wait
    code, out, _ = await diagnose_lab(lab, store)
    assert code == 2
    assert "NOT trusted" in out
    # When the host is pinned (Method 1)
    code, _, err = await rdptrust("trust", str(lab.target), "--known-hosts", str(store))
    assert code == 0, err
    # Then diagnose says pinned, and with the disallowed-list switch (which Method 1 does
    # not replace: WINDOWS.md §2) no stall
    code, out, err = await diagnose_lab(lab, store, "--disallowed-update", "off")
    assert code == 0, out + err
    assert "assumes Method 1 deployed on the clients" in out
    assert "OK" in out
    assert "pinned by rdptrust" in out
    assert "none" in out


def test_unreachable_is_unknown() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "rdptrust.cli.main",
                "diagnose",
                f"127.0.0.1:{port}",
                "--timeout",
                "2",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert proc.returncode == 3
    assert proc.stderr.startswith("rdptrust: error:")
    assert "Traceback" not in proc.stderr


def test_usage_errors() -> None:
    for args in (
        ["diagnose"],
        ["diagnose", "h", "--root-update", "maybe"],
        ["diagnose", "h", "--ca-file", "/nonexistent"],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "rdptrust.cli.main", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 64, (args, proc.stderr)


def test_demo_tells_the_story_in_under_30_s() -> None:
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "rdptrust.cli.main", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"COLUMNS": "120", "PATH": "/usr/bin:/bin"},
    )
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stderr
    assert elapsed < 30
    out = proc.stdout
    # three black-holed list syncs (WINDOWS.md §2), each marked with what it rests on
    wait = 'Predicted wait on "Securing remote connection": first connection about 45 s'
    assert wait in out
    assert "root list" in out
    assert "[assumed; every connection]" in out
    assert "Method 1" in out
    assert "Trust: trusted, pinned by rdptrust (Method 1)" in out
    # Method 1 leaves the disallowed list and pin rules (Windows 10): 30 s
    assert "first connection about 30 s" in out
    assert "assumes Method 1 deployed on the clients" in out
    assert "Not measured: CredSSP/NLA" in out
    assert 'Predicted wait on "Securing remote connection": none' in out
    assert out.index("about 45 s") < out.index("about 30 s") < out.index(": none")


def test_demo_json() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "rdptrust.cli.main", "demo", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["before"]["predicted_stall_s"] == 45.0
    assert doc["before"]["prediction"]["later_connections"]["high_s"] == 45.0
    assert doc["before"]["verdict"] == "critical"
    # Method 1 alone: the chain is trusted, the disallowed-list and pin-rules syncs still wait
    method1 = doc["after_method1"]
    assert (method1["predicted_stall_s"], method1["verdict"]) == (30.0, "critical")
    assert {c["purpose"] for c in method1["causes"]} == {
        "disallowed_list",
        "pin_rules",
    }
    assert doc["after"]["predicted_stall_s"] == 0
    assert doc["after"]["verdict"] == "ok"


async def test_security_findings_are_shown(lab_factory: LabFactory, tmp_path: Path) -> None:
    # offers RDP, SSL, HYBRID, HYBRID_EX and completes Standard RDP Security with 128-bit RC4
    legacy = await lab_factory(cert="self-signed", rdp_methods=parse_methods("128BIT"))
    strict = await lab_factory(cert="self-signed", protocols="HYBRID,HYBRID_EX", require="HYBRID")
    found = {}
    for name, lab in (("legacy", legacy), ("strict", strict)):
        code, out, err = await diagnose_lab(lab, tmp_path / "k.json", "--json")
        assert code in (1, 2), err
        found[name] = {f["code"] for f in json.loads(out)["findings"]}
    assert {"standard-rdp-security-allowed", "nla-not-required"} <= found["legacy"]
    assert "standard-rdp-security-allowed" not in found["strict"]
    assert "nla-not-required" not in found["strict"]
    # the self-signed certificate is a problem of the chain, not a second finding
    assert "self-signed-certificate" not in found["strict"]


async def test_findings_alone_decide_the_verdict(lab_factory: LabFactory, tmp_path: Path) -> None:
    # Given a pinned host (no chain problem, no wait) that accepts Standard RDP Security
    lab = await lab_factory(cert="self-signed", rdp_methods=parse_methods("128BIT"))
    store = KnownHosts.load(tmp_path / "known_hosts.json")
    store.add(pin_from_certificate(lab.target, lab.credentials.leaf))
    store.save()
    # When diagnose judges it
    code, out, err = await diagnose_lab(lab, tmp_path / "known_hosts.json")
    # Then it is CRITICAL because of the findings, and the report says they count
    assert code == 2, err
    assert out.splitlines()[0].endswith(": CRITICAL")
    assert "Problems:" not in out
    assert FINDINGS_TITLE in out
    assert "[critical] standard-rdp-security-allowed:" in out


async def test_check_names_findings_by_their_catalog_labels(lab_factory: LabFactory) -> None:
    # Given an old host that sends no negotiation data (Standard RDP Security only)
    lab = await lab_factory(no_negotiation=True)
    # When check probes it (one connection: it sees what that connection shows)
    code, out, err = await rdptrust("check", str(lab.target))
    # Then its findings count and are named as the catalog names them
    assert code == 2, err
    assert out.startswith(f"RDPTRUST CRITICAL - {lab.target}: no certificate (no TLS); ")
    assert f"; {catalog.STANDARD_RDP_SECURITY_ALLOWED.label}" in out
    assert f"; {catalog.NLA_NOT_REQUIRED.label}" in out
