"""Output into files and pipes: never hard-wrapped, and a reader that goes away early
(``| head -1``) never changes the exit code."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.cli import RDPTRUST, no_pins
from fixtures.cli import run_rdptrust as rdptrust
from fixtures.lab import LabFactory
from rdptrust.lab.runner import Lab
from rdptrust.lab.standard_security import parse_methods


def diagnose_args(lab: Lab, store: Path) -> list[str]:
    return [
        "diagnose",
        str(lab.target),
        "--fetch-timeout",
        "1",
        "--root-list-url",
        lab.root_list_url,
        "--known-hosts",
        str(no_pins(store)),
    ]


async def with_reader_gone(*args: str) -> tuple[int, str]:
    """Run ``rdptrust ARGS`` with a standard output whose reader has already gone:
    every write meets a closed pipe. Exit code and standard error."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = await asyncio.create_subprocess_exec(
            *RDPTRUST,
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=write_end,
            stderr=asyncio.subprocess.PIPE,
        )
    finally:
        os.close(write_end)
    async with asyncio.timeout(90):
        _, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, err.decode()


def assert_quiet(err: str) -> None:
    assert "BrokenPipe" not in err
    assert "Exception ignored" not in err
    assert "Traceback" not in err


# -- never hard-wrapped ----------------------------------------------------------------


async def test_piped_probe_keeps_fingerprints_and_findings_whole(lab_factory: LabFactory) -> None:
    # Given a host that completes Standard RDP Security (a long finding with its fix)
    lab = await lab_factory(rdp_methods=parse_methods("128BIT"))
    # When probe's output goes into a pipe
    code, out, err = await rdptrust("probe", str(lab.target))
    assert code == 0, err
    lines = out.splitlines()
    # Then the SHA-256 is whole, on the SHA-256 line
    (sha256,) = [line for line in lines if "SHA-256 " in line and "│" in line]
    assert lab.certificate_sha256 in sha256
    assert "…" not in out
    # And each finding is one line, its fix included
    (finding,) = [line for line in lines if "standard-rdp-security-allowed" in line]
    assert finding.rstrip().endswith("Server\\WinStations\\RDP-Tcp)")
    assert len(finding) > 200


async def test_piped_diagnose_keeps_commands_and_urls_on_one_line(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    lab = await lab_factory(root_list="blackhole")
    code, out, err = await rdptrust(*diagnose_args(lab, tmp_path / "k.json"))
    assert code == 2, err
    lines = out.splitlines()
    # The fix command is one line that a shell can run as it is
    command = f"rdptrust trust {lab.target} --out trust-127.0.0.1_{lab.target.port}"
    assert f"       rdptrust: {command}" in lines
    # The URL is whole on the retrieval line, with the outcome and the modelling note
    (retrieval,) = [line for line in lines if line.startswith("  root_list ")]
    sequence = lab.root_list_url.replace("authrootstl.cab", "authrootseq.txt")
    assert retrieval.endswith(f"{sequence} (counted as the assumed list wait)")
    # And no paragraph was folded: every problem line starts with its severity
    problems = lines[lines.index("Problems:") + 1 : lines.index("", lines.index("Problems:"))]
    assert problems
    assert all(line.startswith("  [") for line in problems), problems


async def test_piped_demo_prints_the_whole_fingerprint(tmp_path: Path) -> None:
    code, out, err = await rdptrust("demo", "--fetch-timeout", "0.5", timeout=120)
    assert code == 0, err
    (setting,) = [line for line in out.splitlines() if "SHA-256" in line]
    fingerprint = setting.split("SHA-256 ", 1)[1].split(")", 1)[0]
    assert len(fingerprint) == 64
    assert all(len(line) <= 100 for line in out.splitlines() if line.startswith("─"))


# -- a reader that goes away ---------------------------------------------------------


async def test_closed_pipe_keeps_each_commands_exit_code(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    lab = await lab_factory(root_list="blackhole")
    # probe: 0
    code, err = await with_reader_gone("probe", str(lab.target))
    assert code == 0, err
    assert_quiet(err)
    # diagnose: its verdict, 2 (critical)
    code, err = await with_reader_gone(*diagnose_args(lab, tmp_path / "k.json"))
    assert code == 2, err
    assert_quiet(err)
    # probe of a port nothing listens on: 3, and the error line still reaches stderr
    code, err = await with_reader_gone("probe", "127.0.0.1:1")
    assert code == 3
    assert "rdptrust: error:" in err
    assert_quiet(err)
    # --json too
    code, err = await with_reader_gone("probe", str(lab.target), "--json", "--no-enumerate")
    assert code == 0, err
    assert_quiet(err)


def _refused_targets(count: int) -> list[str]:
    with contextlib.ExitStack() as bound:
        sockets = [bound.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [f"127.0.0.1:{sock.getsockname()[1]}" for sock in sockets]


@pytest.fixture(scope="module")
def long_inventory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An inventory of 300 hosts: its hosts --json and reports are far larger than a
    pipe holds (and than 32 KiB)."""
    db = tmp_path_factory.mktemp("long") / "inv.sqlite3"
    targets = _refused_targets(300)
    done = subprocess.run(
        [*RDPTRUST, "scan", "--db", str(db), "--timeout", "2", *targets],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return db


def test_head_of_a_long_output_keeps_exit_0(long_inventory: Path) -> None:
    # Given an inventory whose hosts --json is far larger than a pipe holds
    db = long_inventory
    # When a reader takes the first line and goes away, for each streaming output
    for args in (
        ["hosts", "--db", str(db), "--json"],
        ["hosts", "--db", str(db)],
        ["report", "--db", str(db), "--jsonl", "-"],
        ["report", "--db", str(db), "--csv", "-"],
    ):
        proc = subprocess.Popen(
            [*RDPTRUST, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        assert proc.stderr is not None
        first = proc.stdout.readline()
        proc.stdout.close()
        err = proc.stderr.read()
        proc.stderr.close()
        # Then the command still exits 0, quietly
        assert proc.wait(timeout=60) == 0, (args, err)
        assert first
        assert_quiet(err)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash for pipefail")
def test_shell_pipe_into_head(tmp_path: Path) -> None:
    db = tmp_path / "inv.sqlite3"
    targets = _refused_targets(300)
    command = " ".join([sys.executable, "-m", "rdptrust.cli.main"])
    # scan --jsonl into head -1: every host is still recorded, the scan exits 0
    run = subprocess.run(
        [
            "bash",
            "-c",
            f"set -o pipefail; {command} scan --db {db} --jsonl --timeout 2 "
            f"{' '.join(targets)} | head -1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert len(run.stdout.splitlines()) == 1
    assert "scan 1 done: 300 of 300 targets" in run.stderr
    assert_quiet(run.stderr)
    run = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {command} hosts --db {db} --json | head -1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert_quiet(run.stderr)


def _file_size_limit(limit: int) -> None:  # pragma: no cover - runs in the child
    import resource
    import signal

    # Writes past the limit then fail with EFBIG, as on a full disk, instead of a signal
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_output_that_cannot_be_written_is_one_line_and_exit_74(
    long_inventory: Path, tmp_path: Path
) -> None:
    # Given an inventory whose outputs are larger than 32 KiB
    db = long_inventory
    out = tmp_path / "out"
    for args in (
        ["hosts", "--db", str(db), "--json"],
        ["report", "--db", str(db), "--jsonl", "-"],
        ["report", "--db", str(db), "--csv", "-"],
    ):
        # When standard output is a file that stops taking bytes at 32 KiB (a full disk)
        with out.open("wb") as sink:
            proc = subprocess.run(
                [*RDPTRUST, *args],
                stdout=sink,
                stderr=subprocess.PIPE,
                text=True,
                timeout=60,
                check=False,
                preexec_fn=lambda: _file_size_limit(32768),
            )
        # Then the command says so in one line and exits 74, never 0 and never a traceback
        assert proc.returncode == 74, (args, proc.stderr)
        assert proc.stderr.splitlines() == [
            "rdptrust: error: cannot write standard output: File too large"
        ], args
        assert out.stat().st_size == 32768


@pytest.mark.skipif(sys.platform == "win32", reason="closes a descriptor before exec")
def test_a_closed_standard_output_is_one_line_and_exit_74(tmp_path: Path) -> None:
    db = tmp_path / "inv.sqlite3"
    subprocess.run(
        [*RDPTRUST, "scan", "--db", str(db), "--timeout", "2", *_refused_targets(2)],
        capture_output=True,
        timeout=120,
        check=True,
    )
    for args in (["hosts", "--db", str(db)], ["hosts", "--db", str(db), "--json"], ["--version"]):
        # Started with descriptor 1 closed, as by a shell's >&-
        proc = subprocess.run(
            [*RDPTRUST, *args],
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
            preexec_fn=lambda: os.close(1),
        )
        assert proc.returncode == 74, (args, proc.stderr)
        assert proc.stderr.splitlines() == [
            "rdptrust: error: cannot write standard output: it was closed when rdptrust started"
        ], args
