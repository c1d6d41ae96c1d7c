"""An inventory on storage nothing can write (a read-only mount, a snapshot, a DVD).

SQLite reads a WAL database only with a ``-shm`` file beside it, which it cannot create
there. The commands that only read still read such an inventory when it has no ``-wal``
(one that was closed), and say what to do when results are left in its ``-wal``.

The read-only mount is made in a mount namespace of the test's own (``unshare -m``, or
``unshare -r -m`` for a user who is not root); the test is skipped where neither works.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.cli import RDPTRUST

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or shutil.which("unshare") is None,
    reason="read-only bind mounts in a mount namespace need Linux and unshare",
)


def _unshare() -> list[str]:
    return ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-r", "-m"]


def _on_read_only_mount(folder: Path, argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run *argv* with *folder* bind-mounted read-only over itself."""
    where = shlex.quote(str(folder))
    script = (
        f"mount --bind {where} {where} && mount -o remount,bind,ro {where} || exit 99\n"
        f"touch {where}/probe 2>/dev/null && exit 98\n"
        f"exec {shlex.join(argv)}"
    )
    done = subprocess.run(
        [*_unshare(), "sh", "-c", script], capture_output=True, text=True, timeout=120
    )
    if done.returncode in (98, 99) or "unshare failed" in done.stderr:
        pytest.skip(f"no read-only bind mount here: {done.stderr.strip()[:200]}")
    return done


@pytest.fixture(scope="module")
def closed_inventory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An inventory of two hosts that refused, closed by its scan: no -wal beside it."""
    folder = tmp_path_factory.mktemp("ro")
    db = folder / "inv.sqlite3"
    done = subprocess.run(
        [*RDPTRUST, "scan", "--db", str(db), "--timeout", "2", "127.0.0.1:1", "127.0.0.1:2"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["inv.sqlite3"]
    return db


@pytest.mark.parametrize(
    "argv",
    [
        ["hosts", "--json"],
        ["history", "127.0.0.1:2", "--json"],
        ["report", "--csv", "-"],
        ["db", "check"],
    ],
    ids=lambda argv: argv[0],
)
def test_a_closed_inventory_on_read_only_storage_is_read(
    closed_inventory: Path, argv: list[str]
) -> None:
    # Given a closed inventory on a read-only mount
    db = closed_inventory
    # When a command that only reads opens it
    done = _on_read_only_mount(db.parent, [*RDPTRUST, *argv, "--db", str(db)])
    # Then it reads every host, as from writable storage
    assert done.returncode == 0, done.stderr
    assert "127.0.0.1:2" in done.stdout or "2 hosts" in done.stdout, done.stdout
    assert done.stderr == ""
    writable = subprocess.run(
        [*RDPTRUST, *argv, "--db", str(db)], capture_output=True, text=True, timeout=120
    )
    if argv[0] != "db":
        assert done.stdout == writable.stdout


def test_results_left_in_the_wal_on_read_only_storage_are_named_not_lost(
    tmp_path: Path, closed_inventory: Path
) -> None:
    # Given an inventory whose last results are still in its -wal (its writer was killed),
    # with no -shm, on storage that becomes read-only
    db = tmp_path / "inv.sqlite3"
    shutil.copyfile(closed_inventory, db)
    script = (
        "import os, sqlite3, sys\n"
        "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "db.execute('PRAGMA wal_autocheckpoint = 0')\n"
        "db.execute(\"UPDATE hosts SET host = 'wal-only' WHERE port = 2\")\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", script, str(db)], check=True, timeout=60)
    wal = tmp_path / "inv.sqlite3-wal"
    assert wal.stat().st_size > 0
    (tmp_path / "inv.sqlite3-shm").unlink()
    # When hosts opens it there
    done = _on_read_only_mount(tmp_path, [*RDPTRUST, "hosts", "--db", str(db)])
    # Then it says where the results are and what to do: one line, no stale table
    assert done.returncode == 73, (done.returncode, done.stdout, done.stderr)
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "inv.sqlite3-wal" in lines[0], lines[0]
    assert "writable" in lines[0], lines[0]
    # And where it is writable the change in the -wal is there
    with contextlib.closing(sqlite3.connect(db)) as plain:
        hosts = {row[0] for row in plain.execute("SELECT host FROM hosts")}
    assert hosts == {"127.0.0.1", "wal-only"}
