"""One client state, four ways in: diagnose, check --diagnose, scan --diagnose and the
exporter's ``client_state:`` key judge a host the same way with it, and not as without."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fixtures.cli import no_pins
from fixtures.cli import run_rdptrust as rdptrust
from fixtures.lab import LabFactory
from rdptrust.engine.scan_options import ScanOptions
from rdptrust.errors import UsageError
from rdptrust.monitor.config import parse_config, with_anchors
from rdptrust.monitor.exporter import Exporter

METHOD2 = Path(__file__).resolve().parents[1] / "vectors" / "client-state" / "method2.json"


async def test_the_four_ways_agree_with_a_client_state(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    # Given a self-signed host whose root list black-holes, and a client with Method 2
    lab = await lab_factory(cert="self-signed", root_list="blackhole", require="HYBRID")
    target = str(lab.target)
    known = str(no_pins(tmp_path / "known_hosts.json"))
    common = ("--fetch-timeout", "1", "--root-list-url", lab.root_list_url, "--known-hosts", known)
    state = ("--client-state", str(METHOD2))

    code, out, err = await rdptrust("diagnose", target, "--json", *common, *state)
    diagnosis = json.loads(out)
    expected = (
        diagnosis["predicted_stall_s"],
        diagnosis["verdict"],
        sorted(p["code"] for p in diagnosis["problems"] + diagnosis["findings"]),
    )
    # Method 2 leaves the disallowed list and pin rules of a Windows 10 client (WINDOWS.md §2)
    assert expected[:2] == (30.0, "critical"), err
    assert "predicted-stall" in expected[2]

    code, out, err = await rdptrust("check", target, "--diagnose", "--json", *common, *state)
    check = json.loads(out)
    assert (
        check["predicted_stall_s"],
        check["verdict"],
        sorted(p["code"] for p in check["problems"] + check["findings"]),
    ) == expected, err
    # without it, check sees the wait
    code, out, _ = await rdptrust("check", target, "--diagnose", "--json", *common)
    assert json.loads(out)["predicted_stall_s"] == 45.0

    db = str(tmp_path / "inventory.sqlite3")
    code, _, err = await rdptrust("scan", target, "--db", db, "--diagnose", *common, *state)
    assert code in (0, 1, 2), err
    code, out, err = await rdptrust("report", "--db", db, "--jsonl", "-")
    (host,) = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert (
        host["predicted_stall_s"],
        host["verdict"],
        sorted(p["code"] for p in host["problems"]),
    ) == expected

    config = with_anchors(
        parse_config(
            {
                "modules": {
                    "diagnose": {
                        "timeout": 20,
                        "enumerate": False,
                        "diagnose": True,
                        "fetch_timeout": 1,
                        "root_list_url": lab.root_list_url,
                        "known_hosts": known,
                        "client_state": str(METHOD2),
                    }
                }
            }
        )
    )
    async with Exporter(config, port=0) as server, httpx.AsyncClient(trust_env=False) as http:
        response = await http.get(
            f"{server.url}/probe", params={"target": target, "module": "diagnose"}, timeout=30
        )
    assert response.status_code == 200, response.text
    families = list(text_string_to_metric_families(response.text))
    samples = {s.name: s for f in families for s in f.samples if s.name != "rdptrust_problem"}
    codes = sorted(
        s.labels["code"] for f in families for s in f.samples if s.name == "rdptrust_problem"
    )
    verdicts = {0: "ok", 1: "warning", 2: "critical", 3: "unknown"}
    assert (
        samples["rdptrust_predicted_stall_seconds"].value,
        verdicts[int(samples["rdptrust_verdict"].value)],
        codes,
    ) == expected


def test_the_exporter_refuses_a_bad_client_state_at_start(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{}", encoding="utf-8")
    for path, words in ((bad, "missing key"), (tmp_path / "none.json", "cannot read")):
        config = parse_config({"modules": {"m": {"client_state": str(path)}}})
        with pytest.raises(UsageError, match=f"module 'm': .*{words}"):
            with_anchors(config)
    with pytest.raises(UsageError, match="client_state"):
        parse_config({"modules": {"m": {"client_state": 3}}})


def test_a_scan_keeps_its_client_state_for_resume() -> None:
    options = ScanOptions(diagnose=True, client_state="/var/lib/rdptrust/pc042.json")
    assert ScanOptions.from_json(options.to_json()) == options


async def test_check_and_scan_refuse_a_bad_client_state(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[]", encoding="utf-8")
    code, out, _ = await rdptrust("check", "127.0.0.1:9", "--diagnose", "--client-state", str(bad))
    assert code == 3
    assert out.startswith("RDPTRUST UNKNOWN - ")
    code, _, err = await rdptrust(
        "scan",
        "127.0.0.1:9",
        "--db",
        str(tmp_path / "i.db"),
        "--diagnose",
        "--client-state",
        str(bad),
    )
    assert code == 65
    assert err.count("\n") == 1
