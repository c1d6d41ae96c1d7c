"""Local files: read-only commands never create an inventory, a local write failure is
exit 73 or 74, host lists from Windows tools are read."""

from __future__ import annotations

import codecs
import contextlib
import errno
import hashlib
import json
import socket
import sqlite3
import subprocess
from pathlib import Path

import pytest

from fixtures.cli import RDPTRUST
from fixtures.cli import run_rdptrust as rdptrust
from fixtures.lab import LabFactory
from rdptrust.cli.exits import EXIT_CANT_CREATE, EXIT_IO_ERROR, store_exit_code
from rdptrust.errors import StoreError
from rdptrust.pki.pinning import KnownHosts


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [*RDPTRUST, *args], capture_output=True, input=stdin, timeout=60, check=False
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


def refused_targets(count: int) -> list[str]:
    with contextlib.ExitStack() as bound:
        sockets = [bound.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [f"127.0.0.1:{sock.getsockname()[1]}" for sock in sockets]


def one_line_error(done: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert done.returncode == code, (done.stdout, done.stderr)
    assert done.stderr.startswith("rdptrust: error:"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    for word in words:
        assert word in done.stderr


# -- read-only commands ----------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["hosts"],
        ["hosts", "--json"],
        ["history", "rdp01"],
        ["report", "--html", "{out}"],
        ["report", "--csv", "-"],
        ["report", "--jsonl", "-"],
    ],
)
def test_read_only_commands_never_create_an_inventory(tmp_path: Path, command: list[str]) -> None:
    db = tmp_path / "no" / "such" / "inv.sqlite3"
    args = [a.format(out=tmp_path / "r.html") for a in command]
    done = run(*args, "--db", str(db))
    one_line_error(done, 66, f"no inventory at {db}")
    assert done.stdout == ""
    assert not (tmp_path / "no").exists()
    assert not (tmp_path / "r.html").exists()


def test_read_only_commands_do_not_use_the_default_folder(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"HOME": str(home), "XDG_DATA_HOME": str(home / "data"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [*RDPTRUST, "hosts"], capture_output=True, text=True, timeout=60, check=False, env=env
    )
    assert done.returncode == 66, done.stderr
    assert "'rdptrust scan' creates one, or give another with --db" in done.stderr
    assert not home.exists()


def test_read_only_commands_leave_the_inventory_as_it_was(tmp_path: Path) -> None:
    db = tmp_path / "inv.sqlite3"
    targets = refused_targets(2)
    assert run("scan", "--db", str(db), *targets).returncode == 0
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    for args in (["hosts", "--json"], ["history", targets[0]], ["report", "--csv", "-"]):
        done = run(*args, "--db", str(db))
        assert done.returncode == 0, (args, done.stderr)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_a_file_that_is_not_an_inventory_is_refused_unchanged(tmp_path: Path) -> None:
    empty = tmp_path / "empty.sqlite3"
    sqlite3.connect(empty).close()
    done = run("hosts", "--db", str(empty))
    one_line_error(done, 74, "not an rdptrust inventory")
    assert empty.stat().st_size == 0
    text = tmp_path / "notes.txt"
    text.write_text("hello\n" * 100)
    one_line_error(run("hosts", "--db", str(text)), 74, "not an rdptrust inventory")


# -- local write failures --------------------------------------------------------------


def _a_file(tmp_path: Path) -> Path:
    """A plain file: nothing can be created under it (ENOTDIR, even for root)."""
    path = tmp_path / "plain-file"
    path.write_text("x")
    return path


def test_write_failures_are_73_never_3(tmp_path: Path) -> None:
    blocked = _a_file(tmp_path)
    db = tmp_path / "inv.sqlite3"
    assert run("scan", "--db", str(db), *refused_targets(1)).returncode == 0
    for args in (
        ["scan", "--db", str(blocked / "inv.sqlite3"), "127.0.0.1:1"],
        ["report", "--db", str(db), "--html", str(blocked / "r.html")],
        ["report", "--db", str(db), "--csv", str(blocked / "r.csv")],
        ["policy", "root-autoupdate", "--disable", "--out", str(blocked / "gpo")],
        ["ca", "init", "--dir", str(blocked / "ca")],
    ):
        done = run(*args)
        one_line_error(done, EXIT_CANT_CREATE, str(blocked))
        assert "Traceback" not in done.stderr


async def test_trust_pins_nothing_when_its_files_cannot_be_written(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    lab = await lab_factory()
    store = tmp_path / "known_hosts.json"
    blocked = _a_file(tmp_path)
    # When the import files cannot be written
    code, _, err = await rdptrust(
        "trust", str(lab.target), "--known-hosts", str(store), "--out", str(blocked / "t")
    )
    # Then it is exit 73, not 3 ("could not probe"), and no pin was made
    assert code == EXIT_CANT_CREATE, err
    assert "rdptrust: error: cannot write" in err
    assert not store.exists()
    # And FreeRDP's store likewise
    code, _, err = await rdptrust(
        "trust", str(lab.target), "--known-hosts", str(store),
        "--freerdp", "3", "--freerdp-dir", str(blocked / "freerdp"),
    )  # fmt: skip
    assert code == EXIT_CANT_CREATE, err
    assert not store.exists()
    # When the pinned-host store itself cannot be written, it is 73 too
    code, _, err = await rdptrust(
        "trust", str(lab.target), "--known-hosts", str(blocked / "known_hosts.json")
    )
    assert code == EXIT_CANT_CREATE, err
    # And once the files can be written, the pin is made
    code, _, err = await rdptrust(
        "trust", str(lab.target), "--known-hosts", str(store), "--out", str(tmp_path / "t")
    )
    assert code == 0, err
    assert len(KnownHosts.load(store)) == 1


@pytest.mark.parametrize(
    ("cause", "code"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), EXIT_IO_ERROR),
        (OSError(errno.EIO, "Input/output error"), EXIT_IO_ERROR),
        (PermissionError(errno.EACCES, "Permission denied"), EXIT_CANT_CREATE),
        (OSError(errno.EROFS, "Read-only file system"), EXIT_CANT_CREATE),
        (NotADirectoryError(errno.ENOTDIR, "Not a directory"), EXIT_CANT_CREATE),
        (None, EXIT_IO_ERROR),
    ],
)
def test_store_errors_map_to_73_or_74(cause: OSError | None, code: int) -> None:
    def write() -> None:
        try:
            if cause is not None:
                raise cause
            raise StoreError("inventory x: database is locked")
        except OSError as exc:
            raise StoreError(f"cannot write x: {exc.strerror}") from exc

    with pytest.raises(StoreError) as caught:
        write()
    assert store_exit_code(caught.value) == code


# -- host lists from Windows -----------------------------------------------------------


def _encodings() -> dict[str, tuple[bytes, str]]:
    return {
        "utf-16-le-bom": (codecs.BOM_UTF16_LE, "utf-16-le"),  # PowerShell 5.1 '>'
        "utf-16-be-bom": (codecs.BOM_UTF16_BE, "utf-16-be"),
        "utf-8-bom": (codecs.BOM_UTF8, "utf-8"),  # Notepad, PowerShell 5.1 Out-File -Encoding utf8
        "utf-8": (b"", "utf-8"),
    }


@pytest.mark.parametrize("name", list(_encodings()))
@pytest.mark.parametrize("from_stdin", [False, True], ids=["file", "stdin"])
def test_host_lists_in_utf16_and_with_a_bom_are_read(
    tmp_path: Path, name: str, from_stdin: bool
) -> None:
    bom, codec = _encodings()[name]
    targets = refused_targets(3)
    text = "# hosts from Get-ADComputer\r\n" + "\r\n".join(targets) + "\r\n"
    data = bom + text.encode(codec)
    path = tmp_path / "hosts.txt"
    path.write_bytes(data)
    db = tmp_path / "inv.sqlite3"
    if from_stdin:
        done = run("scan", "--db", str(db), "--jsonl", "-i", "-", stdin=data)
    else:
        done = run("scan", "--db", str(db), "--jsonl", "-i", str(path))
    assert done.returncode == 0, done.stderr
    assert sorted(json.loads(line)["target"] for line in done.stdout.splitlines()) == sorted(
        targets
    )


def test_a_host_list_in_another_encoding_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "hosts.txt"
    path.write_bytes("rdp01\nserveur-é\n".encode("latin-1"))
    done = run("scan", "--db", str(tmp_path / "inv.sqlite3"), "-i", str(path))
    one_line_error(done, 64, f"{path}:2: not UTF-8 text (nor UTF-16 with a byte order mark)")
