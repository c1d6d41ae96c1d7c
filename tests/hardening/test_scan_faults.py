"""A scan of a fleet where a fifth of the hosts are hostile, and a disk that fills up.

Every target must be accounted for exactly once with a typed outcome, no descriptor may
leak, no host may end as an internal error; a full disk must stop the scan with one
line and exit 74 while every completed result stays readable.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fixtures.lab import lab_config
from rdptrust.engine.scan import run_scan
from rdptrust.engine.scan_options import ScanOptions
from rdptrust.lab.rdp import HostileMode
from rdptrust.lab.runner import Lab
from rdptrust.model.target import Target
from rdptrust.store.inventory import Inventory

RDPTRUST = str(Path(sys.executable).with_name("rdptrust"))
MODES = list(HostileMode)

#: The error kinds each hostile mode may be recorded as (timeout: the host deadline).
HOSTILE_KINDS = {
    HostileMode.GARBAGE: {"remote_protocol"},
    HostileMode.LENGTH_TOO_LARGE: {"remote_protocol"},
    HostileMode.LENGTH_TOO_SMALL: {"remote_protocol"},
    HostileMode.TRUNCATED: {"connect"},
    HostileMode.RESET: {"connect"},
    HostileMode.SLOW_DRIP: {"timeout"},
    HostileMode.TLS_ALERT: {"tls"},
    HostileMode.ENDLESS: {"remote_protocol"},
    HostileMode.SILENCE: {"timeout"},
}


@dataclass
class Fleet:
    good: list[Target]
    hostile: dict[Target, HostileMode]

    @property
    def targets(self) -> list[Target]:
        return [*self.good, *self.hostile]


@contextlib.asynccontextmanager
async def fleet(size: int) -> AsyncIterator[Fleet]:
    """*size* lab endpoints, 20% hostile (the modes in turn), in labs of at most 256."""
    hostile_count = size // 5
    good_count = size - hostile_count
    labs: list[Lab] = []
    try:
        good: list[Target] = []
        while len(good) < good_count:
            lab = Lab(lab_config(count=min(256, good_count - len(good))))
            labs.append(lab)
            await lab.start()
            good.extend(lab.targets)
        hostile: dict[Target, HostileMode] = {}
        per_mode = [hostile_count // len(MODES)] * len(MODES)
        for index in range(hostile_count % len(MODES)):
            per_mode[index] += 1
        for mode, count in zip(MODES, per_mode, strict=True):
            if count:
                lab = Lab(lab_config(hostile=mode, count=count))
                labs.append(lab)
                await lab.start()
                hostile.update(dict.fromkeys(lab.targets, mode))
        yield Fleet(good, hostile)
    finally:
        for lab in reversed(labs):
            await lab.stop()


def _fds() -> dict[str, str]:
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            fds[name] = os.readlink(f"/proc/self/fd/{name}")
    return fds


@pytest.mark.parametrize("size", [250, pytest.param(1000, marks=pytest.mark.slow)])
async def test_hostile_fleet_every_target_accounted_for_no_fd_leak(
    tmp_path: Path, size: int, caplog: pytest.LogCaptureFixture
) -> None:
    # Labs included: the snapshot after is taken once they are stopped too.
    before = _fds()
    async with fleet(size) as f:
        assert len(f.targets) == size
        assert len(f.hostile) == size // 5
        with Inventory.open(tmp_path / "inv.sqlite3") as inventory:
            # Given a scan of the whole fleet
            scan = inventory.create_scan([], {}, f.targets)
            seen: list[Target] = []
            # When it runs with a short time-out (slow-drip and silence hit it)
            summary = await run_scan(
                inventory,
                scan,
                ScanOptions(concurrency=100, timeout=1.0),
                on_result=lambda record: seen.append(record.target),
            )
            records = list(inventory.observations(scan_id=scan.id))
    await asyncio.sleep(0.2)
    after = _fds()
    # Then every target is recorded once with the outcome its mode calls for
    assert summary.status == "done"
    assert summary.recorded == summary.done == size
    assert summary.errors == len(f.hostile)
    assert Counter(seen) == Counter(f.targets)
    assert len(records) == size
    kinds: Counter[str] = Counter()
    for record in records:
        if record.target in f.hostile:
            mode = f.hostile[record.target]
            assert not record.ok
            assert record.error_kind in HOSTILE_KINDS[mode], (mode, record.error_message)
            kinds[mode.value] += 1
        else:
            assert record.ok, record.error_message
    assert set(kinds) == {mode.value for mode in MODES}
    # and no descriptor is left open, nothing unhandled was logged
    assert len(after) <= len(before), {k: v for k, v in after.items() if before.get(k) != v}
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    assert "Traceback" not in caplog.text


# -- a disk that fills up --------------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 320 KiB tmpfs mounted in *tmp_path* (needs root and mount), unmounted after."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root and mount(8)")
    where = tmp_path / "tiny"
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=320k,mode=0700", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


async def test_full_disk_stops_with_one_line_and_keeps_completed_results(
    tmp_path: Path, tiny_disk: Path
) -> None:
    # Given 256 well-behaved endpoints and an inventory on a disk too small for them all
    lab = Lab(lab_config(count=256))
    await lab.start()
    try:
        targets = tmp_path / "targets.txt"
        targets.write_text("".join(f"{t}\n" for t in lab.targets))
        db = tiny_disk / "inv.sqlite3"
        # When rdptrust scan runs (an asyncio subprocess: the lab serves in this loop)
        process = await asyncio.create_subprocess_exec(
            RDPTRUST,
            "scan",
            "-i",
            str(targets),
            "--db",
            str(db),
            "--timeout",
            "3",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(120):
            out, err = await process.communicate()
    finally:
        await lab.stop()
    text = err.decode()
    # Then it stops with exit 74 and one line that names the disk
    assert process.returncode == 74, (process.returncode, text, out.decode()[-500:])
    lines = text.splitlines()
    assert len(lines) == 1, text
    assert lines[0].startswith("rdptrust: error: "), text
    assert "full" in lines[0].lower() or "space" in lines[0].lower(), text
    assert "Traceback" not in text
    # and what was recorded before is intact and consistent
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        done = connection.execute(
            "SELECT COUNT(*) FROM scan_targets WHERE state = 'done'"
        ).fetchone()[0]
        observed = connection.execute("SELECT COUNT(*) FROM observations").fetchone()[0]
        total = connection.execute("SELECT COUNT(*) FROM scan_targets").fetchone()[0]
    finally:
        connection.close()
    assert 0 < done < 256
    assert observed == done
    assert total == 256
