"""File modes and read-only opens: the umask respected, modes kept, no file created.

Modes are checked under the umask each case sets; the read-only commands run as a user
runs them, in a subprocess.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pki.certs_for_tests import issue
from rdptrust.errors import StoreError
from rdptrust.files import PRIVATE_MODE, PUBLIC_MODE, write_atomic, write_atomic_lines
from rdptrust.fix.freerdp import update_known_hosts2
from rdptrust.store.inventory import Inventory

RDPTRUST = (sys.executable, "-m", "rdptrust.cli.main")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(
    ("umask", "public", "secret"),
    [(0o022, 0o644, 0o600), (0o077, 0o600, 0o600), (0o002, 0o664, 0o600)],
)
def test_new_files_follow_the_umask_and_secrets_are_0600(
    tmp_path: Path, umask: int, public: int, secret: int
) -> None:
    old = os.umask(umask)
    try:
        write_atomic(tmp_path / "report.html", "<p>")
        write_atomic(tmp_path / "report.csv", "a,b\n", mode=PUBLIC_MODE)
        write_atomic(tmp_path / "key.pem", b"key", mode=PRIVATE_MODE)
    finally:
        os.umask(old)
    assert _mode(tmp_path / "report.html") == public
    assert _mode(tmp_path / "report.csv") == public
    assert _mode(tmp_path / "key.pem") == secret


def test_a_rewritten_file_keeps_its_mode(tmp_path: Path) -> None:
    # Given a FreeRDP known_hosts2 its owner made 0600, and another made 0640
    cert = issue("rdp01.lab.test").cert
    known = tmp_path / "known_hosts2"
    known.write_text("# FreeRDP\n")
    known.chmod(0o600)
    other = tmp_path / "notes.txt"
    other.write_text("old")
    other.chmod(0o640)
    # When rdptrust rewrites both (umask 022 would give 0644)
    old = os.umask(0o022)
    try:
        update_known_hosts2(known, "rdp01.lab.test", 3389, cert)
        write_atomic(other, "new")
    finally:
        os.umask(old)
    # Then each keeps the mode it had, and the content changed
    assert _mode(known) == 0o600
    assert "rdp01.lab.test 3389" in known.read_text()
    assert _mode(other) == 0o640
    assert other.read_text() == "new"


def _read_command(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HOME=str(tmp_path / "home"), XDG_DATA_HOME=str(tmp_path / "data"))
    return subprocess.run(
        [*RDPTRUST, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("command", [["hosts"], ["history", "rdp01"], ["report", "--csv", "-"]])
def test_read_only_commands_leave_an_empty_file_empty(tmp_path: Path, command: list[str]) -> None:
    # Given an empty file where the inventory is said to be
    db = tmp_path / "inventory.sqlite3"
    db.touch()
    before = sorted(p.name for p in tmp_path.iterdir())
    # When a read-only command is pointed at it
    done = _read_command(tmp_path, *command, "--db", str(db))
    # Then it refuses in one line, the file stays empty and nothing else appears
    assert done.returncode == 74, done.stderr
    assert done.stderr.count("\n") == 1
    assert "empty file" in done.stderr
    assert db.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("command", [["hosts"], ["history", "rdp01"], ["report", "--csv", "-"]])
def test_read_only_commands_do_not_follow_a_symbolic_link(
    tmp_path: Path, command: list[str]
) -> None:
    # Given a real inventory and a link to it planted as --db, and a link to a non-database
    real = tmp_path / "real.sqlite3"
    Inventory.open(real).close()
    link = tmp_path / "inventory.sqlite3"
    link.symlink_to(real)
    victim = tmp_path / "victim.txt"
    victim.write_text("not a database")
    to_victim = tmp_path / "planted.sqlite3"
    to_victim.symlink_to(victim)
    real_bytes = real.read_bytes()
    # When read-only commands are pointed at the links
    for path in (link, to_victim):
        done = _read_command(tmp_path, *command, "--db", str(path))
        # Then each refuses in one line naming the link, and no file behind it changes
        assert done.returncode == 74, done.stderr
        assert "symbolic link" in done.stderr
        assert done.stderr.count("\n") == 1
    assert victim.read_text() == "not a database"
    assert real.read_bytes() == real_bytes
    # while the real file itself is read (history: it holds no such host, said as such)
    done = _read_command(tmp_path, *command, "--db", str(real))
    assert "symbolic link" not in done.stderr
    assert done.returncode == (64 if command[0] == "history" else 0), done.stderr


def test_read_only_open_writes_nothing_into_the_database(tmp_path: Path) -> None:
    db = tmp_path / "inventory.sqlite3"
    Inventory.open(db).close()
    before = db.read_bytes()
    with Inventory.open(db, read_only=True) as inventory:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            inventory._db.execute("CREATE TABLE intruder (x)")
    assert db.read_bytes() == before


def test_a_missing_inventory_is_66_and_not_created(tmp_path: Path) -> None:
    db = tmp_path / "absent.sqlite3"
    done = _read_command(tmp_path, "hosts", "--db", str(db))
    assert done.returncode == 66, done.stderr
    assert not db.exists()


def _device(path: Path, minor: int) -> Path:
    """A character device node of the memory driver (1,3 null; 1,7 full), or skip."""
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
    except (AttributeError, OSError) as exc:
        pytest.skip(f"cannot make a device node here: {exc}")
    return path


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX device nodes and FIFOs")
def test_a_device_is_written_in_place_never_replaced_by_a_file(tmp_path: Path) -> None:
    # Given a null device and a full one where a report is to go (/dev/null, /dev/full)
    null, full = _device(tmp_path / "null", 3), _device(tmp_path / "full", 7)
    # When a report is written to each
    write_atomic(null, "scan_id,target\n")
    with pytest.raises(StoreError, match=r"cannot write .*full: No space left on device"):
        write_atomic(full, "scan_id,target\n")
    # Then both are still the devices they were: no regular file took their place
    assert stat.S_ISCHR(null.stat().st_mode)
    assert stat.S_ISCHR(full.stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full", "null"]
    # And a secret is never written to a device
    with pytest.raises(StoreError, match="not a regular file"):
        write_atomic(null, b"key", mode=PRIVATE_MODE)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX device nodes and FIFOs")
def test_a_pipe_gets_the_whole_report(tmp_path: Path) -> None:
    # Given a named pipe with a reader on it (as a shell's >(gzip > f) is)
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import sys; sys.stdout.write(str(len(open({str(fifo)!r}, 'rb').read())))",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        # When a report of 1 MiB is written to it
        write_atomic_lines(fifo, ("x" * 1023 + "\n" for _ in range(1024)))
        out, _ = reader.communicate(timeout=60)
    finally:
        reader.kill()
        reader.wait()
    # Then the reader got every byte and the pipe is still a pipe
    assert out == str(1 << 20)
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["report.fifo"]


def test_report_to_a_device_in_a_subprocess(tmp_path: Path) -> None:
    # The command a user runs: report --csv onto a full device is exit 74, one line
    if sys.platform == "win32":
        pytest.skip("POSIX device nodes")
    full = _device(tmp_path / "full", 7)
    db = tmp_path / "inv.sqlite3"
    Inventory.open(db).close()
    done = subprocess.run(
        [*RDPTRUST, "report", "--db", str(db), "--csv", str(full)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 74, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"rdptrust: error: cannot write {full}: No space left on device"
    ]
    assert stat.S_ISCHR(full.stat().st_mode)


def test_a_file_where_a_folder_should_be_is_named(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(StoreError, match=r"f is a file, not a folder"):
        write_atomic(tmp_path / "f" / "x.ps1", "x")
    done = subprocess.run(
        [*RDPTRUST, "client-state", "--script", "--out", str(tmp_path / "f" / "x.ps1")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 73, done.stderr
    assert "is a file, not a folder" in done.stderr
    assert (tmp_path / "f").read_text() == "x"
