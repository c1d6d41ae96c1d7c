"""``rdptrust scan --workers N`` as a user runs it: same results, one line per failure."""

from __future__ import annotations

import json
from pathlib import Path

from fixtures.cli import run_rdptrust
from fixtures.documents import assert_valid
from fixtures.lab import LabFactory


async def test_scan_with_workers_records_what_one_process_records(
    tmp_path: Path, lab_factory: LabFactory
) -> None:
    lab = await lab_factory(count=24)
    targets = tmp_path / "targets.txt"
    targets.write_text("".join(f"{t}\n" for t in lab.targets), encoding="utf-8")
    results = {}
    for workers in ("1", "3"):
        db = str(tmp_path / f"w{workers}.sqlite3")
        # Given the same targets, scanned by one process and by three
        code, out, err = await run_rdptrust(
            "scan", "--db", db, "-i", str(targets), "--workers", workers, "--jsonl"
        )
        assert code == 0, err
        documents = [json.loads(line) for line in out.splitlines()]
        for document in documents:
            assert_valid(document)
        # Then each target is printed once, with the same certificate and verdict
        assert sorted(d["target"] for d in documents) == sorted(map(str, lab.targets))
        results[workers] = {
            d["target"]: (
                d["ok"],
                d["certificate"]["sha256"],
                d["verdict"],
                sorted(p["code"] for p in d["problems"]),
            )
            for d in documents
        }
        code, out, err = await run_rdptrust("hosts", "--db", db, "--json")
        assert code == 0, err
        assert len(json.loads(out)["hosts"]) == 24
    assert results["1"] == results["3"]
    assert {row[1] for row in results["3"].values()} == {lab.certificate_sha256}


async def test_workers_must_be_a_positive_count(tmp_path: Path) -> None:
    code, _, err = await run_rdptrust(
        "scan", "--db", str(tmp_path / "inv.sqlite3"), "127.0.0.1:1", "--workers", "0"
    )
    assert code == 64
    assert "--workers" in err
    assert "Traceback" not in err
