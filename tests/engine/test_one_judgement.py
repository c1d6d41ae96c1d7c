"""One host, four ways in: diagnose, check --diagnose, scan --diagnose + report --jsonl and
the exporter's diagnose module all give the same predicted wait, verdict and problem codes.

They share one engine (:func:`rdptrust.engine.assessment`); this test fails when one of them
judges on its own again.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from fixtures.cli import no_pins
from fixtures.cli import run_rdptrust as rdptrust
from fixtures.lab import LabFactory
from rdptrust.monitor.config import parse_config, with_anchors
from rdptrust.monitor.exporter import Exporter


async def test_the_four_ways_agree(lab_factory: LabFactory, tmp_path: Path) -> None:
    # Given a default Windows host (self-signed, NLA required) whose root list black-holes
    lab = await lab_factory(cert="self-signed", root_list="blackhole", require="HYBRID")
    target = str(lab.target)
    known = str(no_pins(tmp_path / "known_hosts.json"))
    common = ("--fetch-timeout", "1", "--root-list-url", lab.root_list_url, "--known-hosts", known)

    # When diagnose judges it
    code, out, err = await rdptrust("diagnose", target, "--json", *common)
    assert code == 2, err
    diagnosis = json.loads(out)
    expected = (
        diagnosis["predicted_stall_s"],
        diagnosis["verdict"],
        sorted(p["code"] for p in diagnosis["problems"] + diagnosis["findings"]),
    )
    # WINDOWS.md §2: trusted list, disallowed list and pin rules, 15 s per black-holed sync
    assert expected[0] == 45.0
    assert expected[1] == "critical"
    assert "predicted-stall" in expected[2]

    # and check --diagnose
    code, out, err = await rdptrust("check", target, "--diagnose", "--json", *common)
    check = json.loads(out)
    assert code == check["exit_code"] == 2, err
    assert (
        check["predicted_stall_s"],
        check["verdict"],
        sorted(p["code"] for p in check["problems"] + check["findings"]),
    ) == expected

    # and scan --diagnose, read back with report --jsonl
    db = str(tmp_path / "inventory.sqlite3")
    code, _, err = await rdptrust("scan", target, "--db", db, "--diagnose", *common)
    assert code in (0, 1, 2), err
    code, out, err = await rdptrust("report", "--db", db, "--jsonl", "-")
    assert code == 0, err
    (host,) = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert (
        host["predicted_stall_s"],
        host["verdict"],
        sorted(p["code"] for p in host["problems"]),
    ) == expected

    # and the exporter's diagnose module
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
    samples = {
        sample.name: sample
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name != "rdptrust_problem"
    }
    codes = sorted(
        sample.labels["code"]
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == "rdptrust_problem"
    )
    verdicts = {0: "ok", 1: "warning", 2: "critical", 3: "unknown"}
    assert (
        samples["rdptrust_predicted_stall_seconds"].value,
        verdicts[int(samples["rdptrust_verdict"].value)],
        codes,
    ) == expected


async def test_scan_without_diagnose_judges_like_check(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    # Given a self-signed host with NLA required, judged without any retrieval
    lab = await lab_factory(cert="self-signed", root_list="blackhole", require="HYBRID")
    target = str(lab.target)
    known = str(no_pins(tmp_path / "known_hosts.json"))

    # When check (no --diagnose) judges it
    code, out, err = await rdptrust("check", target, "--json", "--known-hosts", known)
    check = json.loads(out)
    assert code == check["exit_code"], err
    expected = (
        check["verdict"],
        sorted(p["code"] for p in check["problems"] + check["findings"]),
    )
    assert "self-signed-not-pinned" in expected[1]

    # and a scan without --diagnose records it, read back with report --jsonl
    db = str(tmp_path / "inventory.sqlite3")
    code, _, err = await rdptrust("scan", target, "--db", db, "--known-hosts", known)
    assert code in (0, 1, 2), err
    code, out, err = await rdptrust("report", "--db", db, "--jsonl", "-")
    assert code == 0, err
    (host,) = [json.loads(line) for line in out.splitlines() if line.strip()]

    # Then the scan's verdict and codes are check's, and nothing was predicted
    assert (host["verdict"], sorted(p["code"] for p in host["problems"])) == expected
    assert host["predicted_stall_s"] is None
    assert host["retrievals"] is None
