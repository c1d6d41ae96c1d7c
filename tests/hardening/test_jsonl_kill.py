"""``scan --jsonl`` killed with SIGKILL: every host printed is committed, and the reverse.

Before: standard output was block-buffered when it was a pipe or a file, so a killed
scan had committed hosts it never printed (16 of 400 in one run). Now each batch's lines
are written and flushed as soon as its commit is durable, and never before.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from fixtures.cli import RDPTRUST
from fixtures.lab import LabFactory
from rdptrust.store.inventory import Inventory

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

HOSTS = 120


async def _scan_and_kill(
    tmp_path: Path, targets: list[str], kill_after: int, sig: signal.Signals = signal.SIGKILL
) -> None:
    db = tmp_path / f"inventory-{kill_after}.sqlite3"
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "HOME": str(tmp_path)}
    # Given a scan of many lab hosts printing JSON lines into a pipe
    proc = await asyncio.create_subprocess_exec(
        *RDPTRUST,
        "scan",
        *targets,
        "--db",
        str(db),
        "--jsonl",
        "--concurrency",
        "6",
        "--timeout",
        "10",
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    printed: list[dict[str, object]] = []
    try:
        async with asyncio.timeout(90):
            # When it is killed with SIGKILL once it has printed some hosts
            while len(printed) < kill_after:
                line = await proc.stdout.readline()
                assert line, "the scan ended before it could be killed"
                printed.append(json.loads(line))
            proc.send_signal(sig)
            rest = await proc.stdout.read()
            await proc.wait()
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    printed += [json.loads(line) for line in rest.splitlines() if line.strip()]
    # Then the hosts printed are exactly the hosts the inventory holds
    with Inventory.open(db, read_only=True) as inventory:
        committed = {str(r.target) for r in inventory.observations(scan_id=1)}
    shown = [str(p["target"]) for p in printed]
    assert len(shown) == len(set(shown))
    assert 0 < len(committed) < len(targets), "the kill must land mid-scan"
    assert set(shown) == committed, (len(shown), len(committed))


async def test_kill_9_during_scan_jsonl_loses_no_printed_host(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    lab = await lab_factory(count=HOSTS, latency_ms=30)
    targets = [str(t) for t in lab.targets]
    for kill_after in (5, 23, 47):
        await _scan_and_kill(tmp_path, targets, kill_after)


async def test_sigint_prints_the_last_committed_batch_too(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    lab = await lab_factory(count=HOSTS, latency_ms=30)
    await _scan_and_kill(tmp_path, [str(t) for t in lab.targets], 20, signal.SIGINT)
