"""A scan whose hosts are stored in batches, killed with SIGKILL, then resumed.

A scan stages each host and stores a batch of them in one transaction (a few
statements for the whole batch). A kill loses only the staged hosts, whose targets
are still pending; ``--resume`` probes those again. Run on SQLite and PostgreSQL, with
enough hosts in flight that the kill lands with full batches stored and one staged.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import pytest

from fixtures.cli import RDPTRUST, run_rdptrust
from fixtures.lab import LabFactory
from rdptrust.store.inventory import Inventory

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

HOSTS = 240


def _done(db: str, scan_id: int) -> int:
    with Inventory.open(db, read_only=True) as inventory:
        return inventory.target_states(scan_id).get("done", 0)


async def test_kill_9_mid_batch_then_resume_records_every_host_once(
    lab_factory: LabFactory, tmp_path: Path, inventory_db: str
) -> None:
    lab = await lab_factory(count=HOSTS, distinct_certs=True, latency_ms=20)
    targets = tmp_path / "targets.txt"
    targets.write_text("".join(f"{t}\n" for t in lab.targets), encoding="utf-8")
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "HOME": str(tmp_path)}
    # Given a scan of 240 lab hosts, 60 at a time, killed once two batches are stored
    proc = await asyncio.create_subprocess_exec(
        *RDPTRUST,
        "scan",
        "-i",
        str(targets),
        "--db",
        inventory_db,
        "--concurrency",
        "60",
        "--timeout",
        "20",
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with asyncio.timeout(120):
            while True:
                await asyncio.sleep(0.05)
                with contextlib.suppress(Exception):  # not created yet
                    if _done(inventory_db, 1) >= 128:
                        break
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    with Inventory.open(inventory_db, read_only=True) as inventory:
        states = inventory.target_states(1)
        stored = list(inventory.observations(scan_id=1))
        first_events = inventory.events(scan_id=1)
    # Then what is stored is whole: every done target has exactly one observation, with
    # its certificate and its first-seen event, and the rest are pending
    assert 128 <= states["done"] < HOSTS, states
    assert states["done"] + states["pending"] == HOSTS
    assert len(stored) == states["done"]
    assert len({(o.host, o.port) for o in stored}) == len(stored)
    assert all(o.ok and o.certificate is not None for o in stored)
    assert len(first_events) == len(stored)
    assert {e.kind for e in first_events} == {"first-seen"}
    # When the scan is resumed
    code, out, err = await run_rdptrust("scan", "--db", inventory_db, "--resume", env=env)
    # Then every target is recorded exactly once, each with its own certificate
    assert code == 0, err
    assert f"scan 1 done: {HOSTS} of {HOSTS} targets" in out
    with Inventory.open(inventory_db, read_only=True) as inventory:
        assert inventory.target_states(1) == {"pending": 0, "done": HOSTS}
        every = list(inventory.observations(scan_id=1))
        events = inventory.events(scan_id=1)
    assert len(every) == HOSTS
    assert {f"{o.host}:{o.port}" for o in every} == {str(t) for t in lab.targets}
    assert len({o.certificate.sha256 for o in every if o.certificate}) == HOSTS
    assert len(events) == HOSTS
    assert {e.kind for e in events} == {"first-seen"}
