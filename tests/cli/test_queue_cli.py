"""Work shared through the database: two sites, worker processes, one killed mid-batch.

``scan --queue`` writes each site's scan; ``rdptrust worker --site NAME`` processes claim
batches of it. One worker is killed with SIGKILL while it holds a batch: its lease
passes and the others take over what it had not recorded. Every target is recorded
exactly once per site, no claim is left behind, and the report shows both sites.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from fixtures.cli import RDPTRUST, run_rdptrust
from fixtures.lab import LabFactory

SITES = ("hq", "branch-2")


def _query(db: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if db.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(db) as conn:
            return [tuple(r) for r in conn.execute(sql.replace("?", "%s"), params)]
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        return [tuple(r) for r in conn.execute(sql, params)]


async def _two_sites(
    db: str, tmp_path: Path, lab_factory: LabFactory, *, count: int, workers_per_site: int
) -> None:
    if sys.platform == "win32":
        pytest.skip("SIGKILL is POSIX")
    # labs of at most 250 endpoints each (a lab's limit is 256)
    every = []
    for start in range(0, count, 250):
        every.extend((await lab_factory(count=min(250, count - start))).targets)
    targets = tmp_path / "targets.txt"
    targets.write_text("".join(f"{t}\n" for t in every), encoding="utf-8")
    # Given one queued scan of the same targets per site
    scans = {}
    for site in SITES:
        code, out, err = await run_rdptrust(
            "scan", "--queue", "--site", site, "-i", str(targets), "--db", db, "--timeout", "20"
        )
        assert code == 0, err
        assert f"{count} targets for site {site}" in out
        scans[site] = int(out.split()[2].rstrip(":"))
    # When workers of both sites work them, and one of them is killed mid-batch
    procs = {}
    for site in SITES:
        for index in range(workers_per_site):
            proc = await asyncio.create_subprocess_exec(
                *RDPTRUST,
                "worker",
                "--site",
                site,
                "--db",
                db,
                "--batch",
                "150",
                "--lease",
                "3",
                "--poll",
                "0.3",
                "--exit-when-idle",
                "--concurrency",
                "64",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            procs[(site, index)] = proc
    victim = procs[("branch-2", 0)]
    name = f"{socket.gethostname() or 'localhost'}:{victim.pid}"
    held_at_kill = 0
    try:
        async with asyncio.timeout(300):
            while True:
                rows = _query(
                    db,
                    "SELECT state, COUNT(*) FROM scan_targets WHERE scan_id = ? AND worker = ? "
                    "GROUP BY state",
                    (scans["branch-2"], name),
                )
                states = dict(rows)
                if states.get("done", 0) >= 20 and states.get("pending", 0) > 0:
                    os.kill(victim.pid, signal.SIGKILL)
                    held_at_kill = states["pending"]
                    break
                if victim.returncode is not None:
                    break
                await asyncio.sleep(0.05)
            results = {}
            for key, proc in procs.items():
                _, err = await proc.communicate()
                results[key] = (proc.returncode, err.decode())
    finally:
        for proc in procs.values():
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert held_at_kill > 0, "the worker was not killed mid-batch"
    assert results[("branch-2", 0)][0] == -signal.SIGKILL
    for key, (code, err) in results.items():
        if key != ("branch-2", 0):
            assert code == 0, (key, err)
            assert "Traceback" not in err
    # Then each site's scan is done, every target recorded once, no claim left behind
    for site, scan_id in scans.items():
        ((status,),) = _query(db, "SELECT status FROM scans WHERE id = ?", (scan_id,))
        assert status == "done"
        ((observed, hosts),) = _query(
            db,
            "SELECT COUNT(*), COUNT(DISTINCT host_id) FROM observations WHERE scan_id = ? "
            "AND site = ?",
            (scan_id, site),
        )
        assert observed == hosts == count
        assert _query(
            db,
            "SELECT COUNT(*) FROM scan_targets WHERE scan_id = ? AND state = 'pending'",
            (scan_id,),
        ) == [(0,)]
    # And what the killed worker held was recorded by the others
    ((taken_over,),) = _query(
        db,
        "SELECT COUNT(*) FROM scan_targets WHERE scan_id = ? AND worker = ?",
        (scans["branch-2"], name),
    )
    assert taken_over < count
    code, out, err = await run_rdptrust("scan", "--status", str(scans["branch-2"]), "--db", db)
    assert code == 0, err
    assert f"{count} of {count} targets done, 0 claimed" in out
    # And the report shows the fleet from both sites
    code, out, err = await run_rdptrust("report", "--jsonl", "-", "--db", db)
    assert code == 0, err
    sites = [json.loads(line)["site"] for line in out.splitlines()]
    assert sorted(set(sites)) == sorted(SITES)
    assert len(sites) == 2 * count


async def test_two_sites_four_workers_on_postgresql_one_killed(
    postgres_db: str, tmp_path: Path, lab_factory: LabFactory
) -> None:
    await _two_sites(postgres_db, tmp_path, lab_factory, count=5000, workers_per_site=2)


async def test_worker_processes_share_an_sqlite_queue_one_killed(
    tmp_path: Path, lab_factory: LabFactory
) -> None:
    db = str(tmp_path / "inv.sqlite3")
    await _two_sites(db, tmp_path, lab_factory, count=600, workers_per_site=2)


async def test_status_of_an_inventory_without_queued_scans(tmp_path: Path) -> None:
    db = str(tmp_path / "inv.sqlite3")
    code, _, err = await run_rdptrust("scan", "127.0.0.1:1", "--db", db, "--timeout", "1")
    assert code == 0, err
    code, _, err = await run_rdptrust("scan", "--status", "--db", db)
    assert code == 64
    assert "no queued scan" in err
    code, _, err = await run_rdptrust("scan", "--status", "x", "--db", db)
    assert code == 64
    assert "Traceback" not in err


async def test_status_shows_every_site_queued_scan_still_running(inventory_db: str) -> None:
    # Given scans queued for two sites, nothing claimed yet
    for site, port in (("hq", "1"), ("branch-2", "2")):
        code, _, err = await run_rdptrust(
            "scan",
            "--queue",
            "--site",
            site,
            f"127.0.0.1:{port}",
            f"127.0.0.2:{port}",
            "--db",
            inventory_db,
        )
        assert code == 0, err
    # Then --status without an id shows both, per site
    code, out, err = await run_rdptrust("scan", "--status", "--db", inventory_db)
    assert code == 0, err
    lines = out.splitlines()
    assert lines == [
        "scan 1 (queued, site hq): running; 0 of 2 targets done, 0 claimed by workers, 2 waiting",
        "scan 2 (queued, site branch-2): running; 0 of 2 targets done, 0 claimed by workers, "
        "2 waiting",
    ]
    # And a queued scan is not resumed by scan, which says who works it
    code, _, err = await run_rdptrust("scan", "--resume", "2", "--db", inventory_db)
    assert code == 64
    assert "rdptrust worker --site branch-2" in err
