"""`rdptrust capi2` as a user runs it: the real Windows 7 log, bad inputs, and the lab
round trip (CAPI2 XML built for the lab's black-holed scenarios, model beside record)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fixtures.capi2 import ACCUMULATIVE, PER_URL, Capi2Writer, Fetch
from fixtures.cli import no_pins
from fixtures.cli import run_rdptrust as rdptrust
from fixtures.documents import assert_valid
from fixtures.lab import LabFactory
from fixtures.vectors import VECTORS
from rdptrust.lab.runner import Lab

SAMPLE = VECTORS / "capi2" / "windows7-capi2-operational.evtx"
START = dt.datetime(2026, 3, 2, 8, 0, 0, tzinfo=dt.UTC)


def _run(*args: str) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "rdptrust.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def test_sample_json_lists_42_chain_builds_and_12_network_retrievals() -> None:
    code, out, err = _run("capi2", str(SAMPLE), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert_valid(doc)
    assert doc["schema"] == "rdptrust.capi2/1"
    assert len(doc["chain_builds"]) == 42
    network = [r for b in doc["chain_builds"] for r in b["retrievals"] if r["source"] == "network"]
    assert len(network) == 12
    assert {r["timeout_s"] for r in network} == {9.976, 10.0, 9.984, 9.992, 9.859, 9.898}
    assert all(r["result"] == "0x00000000" and r["result_name"] == "S_OK" for r in network)
    first = doc["chain_builds"][0]
    assert set(first) == {
        "task_id",
        "process",
        "certificate",
        "flags",
        "revocation_timeouts",
        "started",
        "elapsed_ms",
        "trust_errors",
        "retrievals",
    }
    assert set(first["retrievals"][0]) == {
        "source",
        "url",
        "object",
        "timeout_s",
        "elapsed_ms",
        "proxy_action",
        "result",
        "result_name",
    }
    assert first["certificate"] == {
        "subject": "Microsoft Corporation",
        "sha1": "9617094a1cfb59ae7c1f7dfdb6739e4e7c40508f",
    }
    assert first["started"] == "2017-05-19T02:02:36Z"
    assert first["revocation_timeouts"] == "accumulative"
    assert doc["rdp_chain_builds"] == 0
    assert doc["waits"] == []  # every retrieval answered at once: no recorded stall
    # Setup.exe's builds settle the regime of Setup.exe, reported as such
    assert doc["settled"][0]["setting"] == "revocation_timeouts"
    assert doc["settled"][0]["observed"] == "accumulative"


def test_sample_text_says_it_holds_no_rdp_chain_build() -> None:
    code, out, err = _run("capi2", str(SAMPLE))
    assert code == 0, err
    assert "No RDP (mstsc.exe) chain build in this log" in out
    assert "Setup.exe 42" in out
    assert "PT9.976S" in out or "timeout 9.976 s" in out


def test_filters_by_process_and_thumbprint() -> None:
    code, out, _ = _run("capi2", str(SAMPLE), "--json", "--process", "SETUP.EXE")
    assert code == 0
    assert len(json.loads(out)["chain_builds"]) == 42
    code, out, _ = _run("capi2", str(SAMPLE), "--json", "--process", "mstsc.exe")
    assert code == 0
    assert json.loads(out)["chain_builds"] == []
    sha1 = "9617094A1CFB59AE7C1F7DFDB6739E4E7C40508F"
    code, out, _ = _run("capi2", str(SAMPLE), "--json", "--thumbprint", sha1)
    builds = json.loads(out)["chain_builds"]
    assert builds
    assert {b["certificate"]["sha1"] for b in builds} == {sha1.lower()}
    code, _, err = _run("capi2", str(SAMPLE), "--thumbprint", "xyz")
    assert code == 64
    assert "40 hex digits" in err


def test_xml_export_gives_the_same_json(tmp_path: Path) -> None:
    from evtx import PyEvtxParser

    xml = "\n".join(str(r["data"]) for r in PyEvtxParser(str(SAMPLE)).records())
    path = tmp_path / "capi2.xml"
    path.write_text(xml, encoding="utf-16")
    _, from_evtx, _ = _run("capi2", str(SAMPLE), "--json")
    code, from_xml, err = _run("capi2", str(path), "--json")
    assert code == 0, err
    assert json.loads(from_xml) == json.loads(from_evtx)


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    data = SAMPLE.read_bytes()
    other = Capi2Writer()
    other.chain_build(start=START, subject="x", sha1="ab" * 20)
    sysmon = other.xml().replace("Microsoft-Windows-CAPI2", "Microsoft-Windows-Sysmon")
    files = {
        "random.bin": bytes(b * 37 % 251 for b in range(5000)),
        "truncated.evtx": data[: 4096 + 3 * 65536 + 100],
        # the first chunk's first 2,000 bytes of records zeroed: the header still sound
        "damaged-chunk.evtx": data[: 4096 + 512] + bytes(2000) + data[4096 + 2512 :],
        "other-channel.xml": sysmon.encode(),
        "empty.xml": b"",
        "no-events.xml": b"<?xml version='1.0'?><Events></Events>",
    }
    paths = {}
    for name, content in files.items():
        paths[name] = tmp_path / name
        paths[name].write_bytes(content)
    return paths


def test_bad_input_is_one_line_and_exit_65(tmp_path: Path) -> None:
    for name, path in _bad_files(tmp_path).items():
        code, out, err = _run("capi2", str(path))
        assert code == 65, (name, err)
        assert out == ""
        assert err.count("\n") == 1, (name, err)
        assert err.startswith("rdptrust: error: ")
        assert "Traceback" not in err
    code, _, err = _run("capi2", str(tmp_path / "missing.evtx"))
    assert code == 64
    assert "does not exist" in err


def test_a_host_that_cannot_be_probed_is_exit_3(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = no_pins(tmp_path / "k.json")
    args = ("--host", f"127.0.0.1:{port}", "--known-hosts", str(store), "--fetch-timeout", "1")
    code, out, err = _run("capi2", str(SAMPLE), *args, "--json")
    assert code == 3
    assert err.count("\n") == 1
    doc = json.loads(out)
    assert_valid(doc)
    assert doc["comparison"] is None
    code, _, err = _run("capi2", str(SAMPLE), "--fetch-timeout", "1", "--known-hosts", str(store))
    assert code == 64
    assert "need --host" in err


def test_text_from_the_log_is_escaped(tmp_path: Path) -> None:
    writer = Capi2Writer()
    writer.chain_build(
        start=START,
        subject="evil\x9d0;owned\x9c [bold red]markup[/]",
        sha1="cd" * 20,
        fetches=[Fetch("http://pki.test/a.crl?\x9b2J\x7f", 12.0, result="80072EE2")],
    )
    path = tmp_path / "evil.xml"
    # XML 1.0 allows DEL and the C1 controls (OSC, ST, CSI), as references or raw
    path.write_text(writer.xml().replace("\x9b", "&#x9b;"), encoding="utf-8")
    code, out, err = _run("capi2", str(path))
    assert code == 0, err
    assert not any(c in out for c in "\x9b\x9c\x9d\x7f")
    assert "evil\\C2\\9D0;owned\\C2\\9C [bold red]markup[/]" in out
    assert "a.crl?\\C2\\9B2J\\7F" in out
    assert "ERROR_INTERNET_TIMEOUT" in out


# --- the lab round trip ------------------------------------------------------------------


async def _capi2_host(lab: Lab, record: Capi2Writer, tmp_path: Path, *extra: str) -> dict[str, Any]:
    path = tmp_path / "capi2.xml"
    path.write_text(record.xml(), encoding="utf-8")
    store = no_pins(tmp_path / "known_hosts.json")
    code, out, err = await rdptrust(
        "capi2",
        str(path),
        "--host",
        str(lab.target),
        "--fetch-timeout",
        "1",
        "--root-list-url",
        lab.root_list_url,
        "--known-hosts",
        str(store),
        "--json",
        *extra,
    )
    assert code == 0, err
    doc: dict[str, Any] = json.loads(out)
    assert_valid(doc)
    return doc


def _list_fetches(lab: Lab, *, trusted_list: bool) -> list[Fetch]:
    """The list syncs a Windows 10 client records while its lists are due and the folder
    black-holes (WINDOWS.md §2): each sequence file (or the pin rules) times out at 15 s."""
    folder = lab.root_list_url.rsplit("/", 1)[0]
    names = (["authrootseq.txt"] if trusted_list else []) + [
        "disallowedcertseq.txt",
        "pinrulesstl.cab",
    ]
    return [Fetch(f"{folder}/{n}", 15.0, 15.0, "CONTEXT_OID_CTL", "80072EE2") for n in names]


async def test_lab_root_list_black_hole_model_and_record_agree(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    # Given a self-signed host whose root list is black-holed, and the record a client
    # (root update on) would write: the root-list fetch times out after 15 s
    lab = await lab_factory(cert="self-signed", root_list="blackhole")
    record = Capi2Writer()
    record.chain_build(
        start=START,
        subject="WIN-LAB01",
        sha1=lab.info().certificate.sha1,
        flags=PER_URL,
        trust_errors=("CERT_TRUST_IS_UNTRUSTED_ROOT",),
        fetches=_list_fetches(lab, trusted_list=True),
    )
    doc = await _capi2_host(lab, record, tmp_path)
    comparison = doc["comparison"]
    assert comparison["sha1"] == lab.info().certificate.sha1
    assert comparison["agrees"] is True, comparison
    (wait,) = [w for w in comparison["waits"] if w["purpose"] == "root_list"]
    assert wait["purpose"] == "root_list"
    assert wait["predicted_s"] == 15.0
    assert wait["recorded_s"] == 15.0
    assert wait["result_name"] == "ERROR_INTERNET_TIMEOUT"
    assert doc["waits"][0]["fixes"][0]["id"] == "method1-trust-host-certificate"
    assert {"setting": "root_update", "observed": "on"}.items() <= doc["settled"][-1].items()


async def test_lab_method2_client_differs_and_settles_root_update(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    # Given the same host, but the client has Method 2: its record has no root-list fetch
    # (the disallowed list and pin rules stay: Method 2 turns off the trusted list only)
    lab = await lab_factory(cert="self-signed", root_list="blackhole")
    record = Capi2Writer()
    record.chain_build(
        start=START,
        subject="WIN-LAB01",
        sha1=lab.info().certificate.sha1,
        flags=PER_URL,
        trust_errors=("CERT_TRUST_IS_UNTRUSTED_ROOT",),
        fetches=_list_fetches(lab, trusted_list=False),
    )
    doc = await _capi2_host(lab, record, tmp_path)
    comparison = doc["comparison"]
    assert comparison["agrees"] is False
    (wait,) = [w for w in comparison["waits"] if w["purpose"] == "root_list"]
    assert wait["predicted_s"] == 15.0
    assert wait["recorded_s"] is None
    assert "Method 2" in wait["note"]
    assert {"setting": "root_update", "observed": "off"}.items() <= doc["settled"][-1].items()


async def test_a_log_without_the_hosts_chain_build_has_nothing_to_compare(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    # Given a record of another certificate's chain build only
    lab = await lab_factory(cert="self-signed", root_list="blackhole")
    record = Capi2Writer()
    record.chain_build(
        start=START,
        subject="OTHER",
        sha1="00" * 20,
        flags=PER_URL,
        trust_errors=("CERT_TRUST_IS_UNTRUSTED_ROOT",),
        fetches=_list_fetches(lab, trusted_list=True),
    )
    doc = await _capi2_host(lab, record, tmp_path)
    # Then the comparison says neither agree nor differ
    comparison = doc["comparison"]
    assert comparison["task_id"] is None
    assert comparison["recorded_s"] is None
    assert comparison["agrees"] is None
    path = tmp_path / "capi2.xml"
    code, out, err = await rdptrust(
        "capi2", str(path), "--host", str(lab.target), "--fetch-timeout", "1",
        "--root-list-url", lab.root_list_url, "--known-hosts", str(tmp_path / "known_hosts.json"),
    )  # fmt: skip
    assert code == 0, err
    assert "model and record: nothing to compare" in out
    assert "model and record agree" not in out
    assert "model and record differ" not in out


def _revocation_record(
    lab: Lab, sha1: str, regime: tuple[str, ...], seconds: list[float]
) -> Capi2Writer:
    pki = lab.pki_url.rstrip("/")
    urls = [f"{pki}/ocsp", f"{pki}/crl/intermediate.crl", f"{pki}/crl/root.crl"]
    kinds = ["CONTEXT_OID_OCSP_RESP", "CONTEXT_OID_CRL", "CONTEXT_OID_CRL"]
    record = Capi2Writer()
    record.chain_build(
        start=START,
        subject="WIN-LAB01",
        sha1=sha1,
        flags=regime,
        trust_errors=("CERT_TRUST_REVOCATION_STATUS_UNKNOWN", "CERT_TRUST_IS_OFFLINE_REVOCATION"),
        fetches=[
            Fetch(url, s, s, kind, "80072EE2")
            for url, kind, s in zip(urls, kinds, seconds, strict=True)
        ],
    )
    return record


async def test_lab_revocation_black_hole_record_settles_the_regime(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    # Given a CA-issued host whose OCSP and CRLs are black-holed
    lab = await lab_factory(cert="ca", crl="blackhole", ocsp="blackhole")
    assert lab.ca_cert_path is not None
    sha1 = lab.info().certificate.sha1
    # When the client recorded the accumulative regime: 10 s, then 5, then 2.5 (WINDOWS.md §3)
    record = _revocation_record(lab, sha1, ACCUMULATIVE, [10.0, 5.0, 2.5])
    doc = await _capi2_host(lab, record, tmp_path, "--ca-file", str(lab.ca_cert_path))
    comparison = doc["comparison"]
    # (the list syncs answered here and are not in this record: only revocation is compared)
    revocation = [w for w in comparison["waits"] if w["purpose"] in ("crl", "ocsp")]
    # Then every revocation URL rdptrust predicted is the one the client fetched
    assert {w["url"] for w in revocation} == {
        r["url"] for r in doc["chain_builds"][0]["retrievals"]
    }
    assert all(w["predicted_s"] is not None and w["recorded_s"] is not None for w in revocation)
    # and the record settles the regime the model left open
    (regime,) = [s for s in doc["settled"] if s["setting"] == "revocation_timeouts"]
    assert regime["observed"] == "accumulative"
    assert "PT10S" in regime["evidence"]
    # the per-URL model (15 s a URL) differs from the record's 10 s
    largest = comparison["waits"][0]
    assert largest["recorded_s"] == 10.0
    assert largest["agrees"] is (
        largest["predicted_s"] is not None and abs(largest["predicted_s"] - 10.0) <= 2
    )
    assert comparison["agrees"] is False
    assert "accumulative revocation regime" in largest["note"]
    # and the per-URL record (15 s each, 45 s in all) differs in total from the 20 s cap
    record = _revocation_record(lab, sha1, PER_URL, [15.0, 15.0, 15.0])
    doc = await _capi2_host(lab, record, tmp_path, "--ca-file", str(lab.ca_cert_path))
    (regime,) = [s for s in doc["settled"] if s["setting"] == "revocation_timeouts"]
    assert regime["observed"] == "per-url"
    assert all(w["agrees"] for w in doc["comparison"]["waits"] if w["purpose"] in ("crl", "ocsp"))
    assert doc["comparison"]["recorded_s"] == pytest.approx(45.0, abs=0.01)
    assert doc["comparison"]["agrees"] is (abs(doc["comparison"]["predicted_stall_s"] - 45) <= 9)


async def test_diagnose_assumes_the_regime_from_the_log(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    lab = await lab_factory(cert="self-signed", root_list="blackhole")
    sha1 = lab.info().certificate.sha1
    log = tmp_path / "capi2.xml"
    log.write_text(_revocation_record(lab, sha1, ACCUMULATIVE, [10.0, 5.0, 2.5]).xml())
    store = no_pins(tmp_path / "k.json")
    args = (
        "diagnose",
        str(lab.target),
        "--fetch-timeout",
        "1",
        "--root-list-url",
        lab.root_list_url,
    )
    code, out, err = await rdptrust(
        *args, "--known-hosts", str(store), "--assume-from-capi2", str(log)
    )
    assert code == 2, err
    assert "assumed from" in out
    assert "revocation_timeouts = accumulative" in out
    # a log without an mstsc chain build settles nothing of the RDP client
    code, out, err = await rdptrust(
        *args, "--known-hosts", str(store), "--assume-from-capi2", str(SAMPLE)
    )
    assert code == 65
    assert "no mstsc.exe chain build" in err
    assert err.count("\n") == 1
