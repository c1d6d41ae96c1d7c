"""``rdptrust hosts`` as a user runs it: into a pipe, on a terminal, and as JSON."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from fixtures.cli import RDPTRUST
from fixtures.documents import assert_valid
from fixtures.inventory import small_fleet
from rdptrust.store.inventory import Inventory


@pytest.fixture
def db(tmp_path: Path) -> tuple[Path, list[str]]:
    """An inventory of a small fleet, and its targets in the order hosts lists them."""
    path = tmp_path / "inv.sqlite3"
    with Inventory.open(path) as inventory:
        latest = small_fleet(inventory)
    return path, [str(t) for t in sorted(latest, key=lambda t: (t.host, t.port))]


def test_into_a_pipe_hosts_prints_plain_lines(db: tuple[Path, list[str]]) -> None:
    path, targets = db
    done = subprocess.run(
        [*RDPTRUST, "hosts", "--db", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ["Host", "Site", "State"]
    assert [line.split()[0] for line in lines[1:]] == targets


@pytest.mark.skipif(os.name != "posix", reason="a pseudo-terminal needs POSIX")
def test_on_a_terminal_hosts_prints_a_coloured_table(db: tuple[Path, list[str]]) -> None:
    import fcntl
    import pty
    import struct
    import termios

    path, targets = db
    # Given standard output on a terminal 200 columns wide
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 200, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "NO_COLOR")}
    env["TERM"] = "xterm-256color"
    proc = subprocess.Popen(
        [*RDPTRUST, "hosts", "--db", str(path)],
        stdout=follower,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 1 << 16)
        except OSError:  # EIO: the command closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=60) == 0
    text = b"".join(chunks).decode()
    # Then it is the boxed, coloured table, a line per host
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text).splitlines()
    assert plain[0].strip() == "Hosts in the inventory"
    assert plain[1].startswith("┏")
    assert "\x1b[32m" in text
    rows = [line for line in plain if line.startswith("│")]
    assert [row.split("│")[1].strip() for row in rows] == targets


def test_hosts_json_into_a_pipe_validates(db: tuple[Path, list[str]]) -> None:
    path, targets = db
    done = subprocess.run(
        [*RDPTRUST, "hosts", "--db", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert_valid(document)
    assert [h["target"] for h in document["hosts"]] == targets
    assert len(done.stdout.splitlines()) == len(targets) + 2
