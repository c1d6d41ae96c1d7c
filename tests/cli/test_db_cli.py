"""``rdptrust db migrate|check|prune`` on both backends, as a user runs them."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from contextlib import closing
from pathlib import Path

from fixtures.cli import run_rdptrust
from fixtures.documents import assert_valid
from fixtures.inventory import served
from fixtures.lab import LabFactory
from rdptrust.engine.scan import record_result
from rdptrust.lab.certs import windows_self_signed
from rdptrust.model.records import HostResult
from rdptrust.model.target import Target
from rdptrust.store.inventory import Inventory
from rdptrust.store.schema import SCHEMA_VERSION


async def test_migrate_then_check_counts_a_scan(inventory_db: str, lab_factory: LabFactory) -> None:
    # Given a new inventory, migrated before any scan
    code, out, err = await run_rdptrust("db", "migrate", "--db", inventory_db, "--json")
    assert code == 0, err
    document = json.loads(out)
    assert_valid(document)
    assert document["migrated_from"] == 0
    assert document["schema_version"] == SCHEMA_VERSION
    assert set(document["counts"].values()) == {0}
    # When a second migrate finds nothing to do, and a scan of three hosts runs
    code, out, err = await run_rdptrust("db", "migrate", "--db", inventory_db)
    assert code == 0, err
    assert "already up to date" in out
    lab = await lab_factory(count=3)
    code, _, err = await run_rdptrust("scan", "--db", inventory_db, *map(str, lab.targets))
    assert code == 0, err
    # Then check counts what the scan wrote
    code, out, err = await run_rdptrust("db", "check", "--db", inventory_db, "--json")
    assert code == 0, err
    document = json.loads(out)
    assert_valid(document)
    assert document["migrated_from"] is None
    assert document["counts"]["hosts"] == 3
    assert document["counts"]["observations"] == 3
    assert document["counts"]["certificates"] == 1
    assert document["scans"] == {"running": 0, "interrupted": 0, "done": 1}
    on_postgres = inventory_db.startswith("postgresql:")
    assert document["integrity"] == {
        "checked_with": None if on_postgres else "PRAGMA quick_check",
        "ok": None if on_postgres else True,
        "found": [],
    }
    code, out, err = await run_rdptrust("db", "check", "--db", inventory_db)
    assert code == 0, err
    assert f"schema version {SCHEMA_VERSION}" in out
    assert "3 hosts" in out
    assert ("not checked here" if on_postgres else "integrity: ok") in out
    # And migrate does not check pages
    code, out, err = await run_rdptrust("db", "migrate", "--db", inventory_db, "--json")
    assert code == 0, err
    assert json.loads(out)["integrity"] is None


def _two_hosts(path: Path) -> None:
    with Inventory.open(path) as inventory:
        for port in (1, 2):
            target = Target("127.0.0.1", port)
            _observe(inventory, target, f"WIN-{port}")


async def test_check_finds_a_damaged_index_that_counting_reads_through(tmp_path: Path) -> None:
    # Given an inventory whose index of observations by host has a damaged page header
    # (its cell count raised), so that COUNT(*), reading that index, counts wrong
    path = tmp_path / "inv.sqlite3"
    _two_hosts(path)
    with closing(sqlite3.connect(path)) as db:
        root = db.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'observations_host'"
        ).fetchone()[0]
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(path.read_bytes())
    header = (root - 1) * page_size
    data[header + 3 : header + 5] = (9).to_bytes(2, "big")
    path.write_bytes(bytes(data))
    # When db check runs, as text and as JSON
    code, out, err = await run_rdptrust("db", "check", "--db", str(path), "--json")
    # Then it is exit 74, the document saying what quick_check found
    assert code == 74, err
    document = json.loads(out)
    assert_valid(document)
    assert document["integrity"]["ok"] is False
    assert any(f"page {root}" in line for line in document["integrity"]["found"])
    assert err.count("\n") == 1, err
    assert "is damaged: PRAGMA quick_check found" in err, err
    code, out, err = await run_rdptrust("db", "check", "--db", str(path))
    assert code == 74, err
    assert "integrity: PRAGMA quick_check found problems:" in out
    assert f"On tree page {root}" in out


async def test_text_that_is_not_utf8_is_one_line_naming_the_column(tmp_path: Path) -> None:
    # Given an inventory whose host name another program replaced with bytes that are not
    # UTF-8 (and hold a terminal escape)
    path = tmp_path / "inv.sqlite3"
    _two_hosts(path)
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE hosts SET host = CAST(x'41ff1b5b33316d42' AS TEXT) WHERE port = 2")
    # When the commands that read every host run
    for args in (("hosts",), ("report", "--csv", "-"), ("report", "--html", "r.html")):
        args = tuple(str(tmp_path / a) if a.endswith(".html") else a for a in args)
        code, _, err = await run_rdptrust(*args, "--db", str(path))
        # Then each is one line naming the column, with no raw bytes or escape in it
        assert code == 74, (args, err)
        assert err.count("\n") == 1, err
        assert "holds text that is not UTF-8 (column host)" in err, err
        assert "\x1b" not in err, err
        assert "\ufffd" not in err, err
    assert not (tmp_path / "r.html").exists()


async def test_check_and_prune_never_create_an_inventory(tmp_path: Path) -> None:
    missing = tmp_path / "none.sqlite3"
    for args in (("check",), ("prune", "--keep-days", "1")):
        code, _, err = await run_rdptrust("db", *args, "--db", str(missing))
        assert code == 66, err
        assert "no inventory" in err
    assert not missing.exists()


async def test_check_refuses_an_inventory_from_a_newer_rdptrust(tmp_path: Path) -> None:
    path = tmp_path / "inv.sqlite3"
    Inventory.open(path).close()
    # sqlite3's context manager commits; closing() closes
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("INSERT INTO schema_migrations VALUES (99, '2030-01-01T00:00:00Z')")
    code, _, err = await run_rdptrust("db", "check", "--db", str(path))
    assert code == 74, err
    assert "newer than this rdptrust" in err
    assert len(err.strip().splitlines()) == 1


def _observe(inventory: Inventory, target: Target, name: str) -> None:
    scan = inventory.create_scan([str(target)], {}, [target])
    record_result(
        inventory, scan.id, 0, target, HostResult(served(target, windows_self_signed(name)))
    )
    inventory.finish_scan(scan.id, "done")


def test_prune_keeps_each_hosts_newest_observation_and_every_event(inventory_db: str) -> None:
    a, b = Target("127.0.0.1", 3389), Target("127.0.0.1", 3390)
    with Inventory.open(inventory_db) as inventory:
        # Given host a seen three times (a new certificate each time) and b once
        for name in ("A1", "A2", "A3"):
            _observe(inventory, a, name)
        _observe(inventory, b, "B1")
        events_before = inventory.history(a).events
        assert [e.kind for e in events_before] == [
            "first-seen",
            "certificate-changed",
            "certificate-changed",
        ]
        # When everything older than a day from now is pruned (everything is older)
        later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
        result = inventory.prune(1, now=later)
        # Then each host keeps only its newest observation, and every event stays
        assert result.observations == 2
        history = inventory.history(a)
        assert len(history.observations) == 1
        assert history.observations[0].certificate is not None
        assert history.observations[0].certificate.subject.endswith("A3")
        assert [(e.id, e.kind) for e in history.events] == [(e.id, e.kind) for e in events_before]
        assert len(inventory.history(b).observations) == 1
        assert sorted(h.port for h in inventory.hosts()) == [3389, 3390]
        # and the certificates the events name are kept
        assert result.certificates == 0
        assert inventory.counts()["certificates"] == 4
        # And a prune that keeps 30 days deletes nothing more
        assert inventory.prune(30).observations == 0


async def test_prune_from_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "inv.sqlite3"
    with Inventory.open(path) as inventory:
        _observe(inventory, Target("127.0.0.1", 3389), "A1")
        _observe(inventory, Target("127.0.0.1", 3389), "A2")
    code, out, err = await run_rdptrust(
        "db", "prune", "--db", str(path), "--keep-days", "0", "--json"
    )
    assert code == 0, err
    document = json.loads(out)
    assert_valid(document)
    assert document["pruned"]["deleted_observations"] == 1
    assert document["counts"]["observations"] == 1
    code, _, err = await run_rdptrust("db", "prune", "--db", str(path), "--keep-days", "-1")
    assert code == 64
    assert "Traceback" not in err
