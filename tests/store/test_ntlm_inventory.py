"""Which machine answered: scan --enumerate stores the NTLM host information, and an
inventory from before that column existed is migrated without losing anything."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

from fixtures.cli import run_rdptrust as rdptrust
from fixtures.lab import LabFactory
from rdptrust.store.inventory import Inventory
from rdptrust.store.schema import MIGRATIONS, SCHEMA_VERSION


async def test_scan_enumerate_stores_ntlm_names(lab_factory: LabFactory, tmp_path: Path) -> None:
    lab = await lab_factory(
        ntlm_computer="RDS-FLEET07", ntlm_domain="CONTOSO", ntlm_version="10.0.17763"
    )
    db = str(tmp_path / "inv.sqlite3")
    code, out, err = await rdptrust("scan", str(lab.target), "--db", db, "--enumerate", "--jsonl")
    assert code == 0, err
    (line,) = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    ntlm = line["ntlm"]
    assert ntlm["netbios_computer_name"] == "RDS-FLEET07"
    assert ntlm["netbios_domain_name"] == "CONTOSO"
    assert ntlm["os_version"] == "10.0.17763"
    assert dt.datetime.fromisoformat(ntlm["server_time"]).year >= 2026
    # kept in the inventory, and null for a scan that did not enumerate
    code, out, _ = await rdptrust("scan", str(lab.target), "--db", db, "--jsonl")
    assert code == 0
    (again,) = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    assert again["ntlm"] is None
    with Inventory.open(Path(db)) as inventory:
        stored = [o.ntlm for o in inventory.observations()]
    assert stored[0] is not None
    assert stored[0]["dns_domain_name"] == "lab.test"
    assert stored[1] is None


def test_version_1_inventory_is_migrated(tmp_path: Path) -> None:
    # Given an inventory written by the first schema, with a scan in it
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    for statement in MIGRATIONS[0].split(";"):
        if statement.strip():
            db.execute(statement)
    db.execute("INSERT INTO schema_migrations VALUES (1, '2026-11-01T00:00:00Z')")
    db.execute(
        "INSERT INTO scans (started_at, status, arguments, options) "
        "VALUES ('2026-11-01T00:00:00Z', 'done', '[]', '{}')"
    )
    db.commit()
    db.close()
    # When this rdptrust opens it
    with Inventory.open(path) as inventory:
        assert inventory.schema_version == SCHEMA_VERSION == 5
        assert [s.id for s in inventory.scans()] == [1]
    # Then the new column exists and the old scan is still there
    db = sqlite3.connect(path)
    try:
        columns = {r[1] for r in db.execute("PRAGMA table_info(observations)")}
        assert "ntlm" in columns
        # and migration 3's index serves the read-back of a record's events
        plan = db.execute(
            "EXPLAIN QUERY PLAN SELECT detail FROM events WHERE observation_id = 1"
        ).fetchall()
        assert "USING INDEX events_observation" in " ".join(str(row) for row in plan)
    finally:
        db.close()
