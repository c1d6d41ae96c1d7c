"""``rdptrust scan`` / ``hosts`` / ``history`` / ``report`` as a user runs them."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.cli import no_pins, run_rdptrust
from fixtures.documents import assert_valid
from fixtures.lab import LabFactory
from rdptrust.store.inventory import Inventory

RDPTRUST = [sys.executable, "-m", "rdptrust.cli.main"]


def rdptrust(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RDPTRUST, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@contextlib.contextmanager
def listening(count: int) -> Iterator[list[str]]:
    """*count* loopback endpoints that accept connections and never answer."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sock.listen(64)
            sockets.append(sock)
        yield [f"127.0.0.1:{s.getsockname()[1]}" for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


@pytest.fixture
def silent_hosts() -> Iterator[list[str]]:
    """Forty loopback endpoints that accept connections and never answer."""
    with listening(40) as targets:
        yield targets


def refused_port() -> int:
    return refused_ports(1)[0]


def refused_ports(count: int) -> list[int]:
    """*count* distinct ports that nothing listens on (all bound at once while chosen)."""
    with contextlib.ExitStack() as bound:
        sockets = [bound.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def db_counts(path: Path, scan_id: int = 1) -> tuple[str, int, int, int]:
    """(status, targets done, observations, distinct hosts observed) of a scan."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        status = db.execute("SELECT status FROM scans WHERE id = ?", (scan_id,)).fetchone()[0]
        done = db.execute(
            "SELECT COUNT(*) FROM scan_targets WHERE scan_id = ? AND state = 'done'", (scan_id,)
        ).fetchone()[0]
        observations, hosts = db.execute(
            "SELECT COUNT(*), COUNT(DISTINCT host_id) FROM observations WHERE scan_id = ?",
            (scan_id,),
        ).fetchone()
        return status, done, observations, hosts
    finally:
        db.close()


def wait_for_done(path: Path, at_least: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(sqlite3.Error, TypeError):
            done = db_counts(path)[1]
            if done >= at_least:
                return done
        time.sleep(0.05)
    raise AssertionError(f"fewer than {at_least} targets done after {timeout} s")


def test_refused_hosts_are_recorded_with_jsonl(tmp_path: Path) -> None:
    db = tmp_path / "inv.sqlite3"
    ports = refused_ports(3)
    targets = [f"127.0.0.1:{p}" for p in ports]
    done = rdptrust("scan", "--db", str(db), "--jsonl", "--timeout", "2", *targets, targets[0])
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert sorted(d["target"] for d in lines) == sorted(targets)
    assert all(d["schema"] == "rdptrust.scan-host/2" for d in lines)
    for line in lines:
        assert_valid(line)
    assert all(d["error"]["kind"] == "connect" and not d["ok"] for d in lines)
    assert all(d["events"][0]["kind"] == "first-seen" for d in lines)
    assert "scan 1 done: 3 of 3 targets" in done.stderr
    hosts = rdptrust("hosts", "--db", str(db), "--json")
    assert hosts.returncode == 0
    assert len(json.loads(hosts.stdout)["hosts"]) == 3


def test_kill_then_resume_loses_and_repeats_nothing(
    tmp_path: Path, silent_hosts: list[str]
) -> None:
    db = tmp_path / "inv.sqlite3"
    # Given a scan of 40 silent hosts, four at a time, killed after some are done
    process = subprocess.Popen(
        [
            *RDPTRUST,
            "scan",
            "--db",
            str(db),
            "--concurrency",
            "4",
            "--timeout",
            "0.4",
            *silent_hosts,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_done(db, 8)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    status, done, observations, hosts = db_counts(db)
    assert status == "running"
    assert 8 <= done < 40
    assert observations == hosts == done
    # When the scan is resumed
    resumed = rdptrust("scan", "--db", str(db), "--resume")
    # Then every target is recorded exactly once
    assert resumed.returncode == 0, resumed.stderr
    assert "scan 1 done: 40 of 40 targets" in resumed.stdout
    assert db_counts(db) == ("done", 40, 40, 40)
    conn = sqlite3.connect(db)
    try:
        kinds = {r[0] for r in conn.execute("SELECT DISTINCT error_kind FROM observations")}
        assert kinds == {"timeout"}
    finally:
        conn.close()
    # And there is nothing left to resume
    again = rdptrust("scan", "--db", str(db), "--resume")
    assert again.returncode == 64
    assert "no interrupted scan" in again.stderr


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_interrupts_cleanly(
    tmp_path: Path, silent_hosts: list[str], stop_signal: signal.Signals
) -> None:
    db = tmp_path / "inv.sqlite3"
    process = subprocess.Popen(
        [
            *RDPTRUST,
            "scan",
            "--db",
            str(db),
            "--concurrency",
            "4",
            "--timeout",
            "0.4",
            *silent_hosts,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_done(db, 4)
        process.send_signal(stop_signal)
        _, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130
    assert "Traceback" not in stderr
    assert "rdptrust scan --resume 1" in stderr
    status, done, observations, _ = db_counts(db)
    assert status == "interrupted"
    assert observations == done < 40
    resumed = rdptrust("scan", "--db", str(db), "--resume", "1")
    assert resumed.returncode == 0, resumed.stderr
    assert db_counts(db) == ("done", 40, 40, 40)


def test_corrupt_inventory_gives_one_line(tmp_path: Path) -> None:
    db = tmp_path / "inv.sqlite3"
    db.write_bytes(os.urandom(8192))
    for args in (["hosts"], ["scan", "127.0.0.1:1"], ["report", "--csv", "-"]):
        run = rdptrust(*args, "--db", str(db))
        assert run.returncode == 74, run.stderr
        assert run.stderr.startswith("rdptrust: error: inventory")
        assert "corrupt" in run.stderr
        assert len(run.stderr.splitlines()) == 1


def test_read_only_inventory_gives_one_line(tmp_path: Path) -> None:
    # Given an inventory its user may read but not write
    directory = tmp_path / "ro"
    directory.mkdir()
    db = directory / "inv.sqlite3"
    assert rdptrust("scan", "--db", str(db), f"127.0.0.1:{refused_port()}").returncode == 0
    prefix: list[str] = []
    if os.geteuid() == 0:
        # root ignores file modes; drop the capabilities that let it
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv (util-linux) to drop DAC override")
        prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search"]
    os.chmod(db, 0o444)
    os.chmod(directory, 0o555)
    try:
        # When a scan tries to write to it
        run = subprocess.run(
            [*prefix, *RDPTRUST, "scan", "--db", str(db), "127.0.0.1:1"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.chmod(directory, 0o755)
        os.chmod(db, 0o644)
    # Then it fails with one line and the store exit code, and the results are intact
    assert run.returncode == 74, run.stderr
    assert run.stderr.startswith("rdptrust: error: inventory")
    assert len(run.stderr.splitlines()) == 1
    assert "read-only" in run.stderr or "cannot open" in run.stderr
    assert db_counts(db) == ("done", 1, 1, 1)


def test_full_disk_during_scan_keeps_completed_results(tmp_path: Path) -> None:
    db = tmp_path / "inv.sqlite3"
    # Given an inventory whose file may not grow beyond its current size (a full disk)
    assert rdptrust("scan", "--db", str(db), f"127.0.0.1:{refused_port()}").returncode == 0
    limit = db.stat().st_size + 40_000

    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    refused = [f"127.0.0.1:{port}" for port in refused_ports(5)]
    targets = [f"127.0.0.2:{p}" for p in range(20000, 20400)] + refused
    # When a scan of many targets runs into it
    run = subprocess.run(
        [*RDPTRUST, "scan", "--db", str(db), "--timeout", "0.5", *targets],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=small_disk,
    )
    # Then one line says so, with the store exit code, and the first scan is intact
    assert run.returncode == 74, run.stderr
    assert run.stderr.startswith("rdptrust: error: ")
    assert len(run.stderr.splitlines()) == 1
    assert "full" in run.stderr or "I/O" in run.stderr
    assert db_counts(db) == ("done", 1, 1, 1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["scan"], "give at least one TARGET"),
        (["scan", "10.0.0.0/8"], "too large"),
        (["scan", "--resume", "x"], "scan id"),
        (["scan", "--resume", "7"], "no scan 7"),
        (["history", "nowhere.example"], "no record of nowhere.example:3389"),
        (["report"], "exactly one of"),
        (["report", "--csv", "-", "--scan", "3"], "no scan 3"),
    ],
)
def test_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    Inventory.open(tmp_path / "inv.sqlite3").close()  # read-only commands need one
    run = rdptrust(*args, "--db", str(tmp_path / "inv.sqlite3"))
    assert run.returncode == 64, run.stderr
    assert message in run.stderr
    assert "Traceback" not in run.stderr


def test_target_file_error_names_the_line(tmp_path: Path) -> None:
    targets = tmp_path / "targets.txt"
    targets.write_text("# fleet\n127.0.0.1:1\n127.0.0.1:99999\n", encoding="utf-8")
    run = rdptrust("scan", "--db", str(tmp_path / "inv.sqlite3"), "-i", str(targets))
    assert run.returncode == 64
    assert f"{targets}:3:" in run.stderr


def test_help_has_examples() -> None:
    for command in ("scan", "hosts", "history", "report"):
        run = rdptrust(command, "--help")
        assert run.returncode == 0
        assert "Examples:" in run.stdout


async def test_scan_hosts_history_report_on_the_lab(
    tmp_path: Path, lab_factory: LabFactory
) -> None:
    db = str(tmp_path / "inv.sqlite3")
    lab = await lab_factory(count=12)
    ca_lab = await lab_factory(count=4, cert="ca")
    hostile = await lab_factory(hostile="garbage")
    targets = tmp_path / "targets.txt"
    targets.write_text(
        "# the lab\n"
        + "".join(f"{t}\n" for t in lab.targets + ca_lab.targets)
        + f"{hostile.target}  # misbehaves\n",
        encoding="utf-8",
    )
    # Given a first scan of the lab from a target file
    code, out, err = await run_rdptrust("scan", "--db", db, "-i", str(targets), "--jsonl")
    assert code == 0, err
    documents = [json.loads(line) for line in out.splitlines()]
    assert len(documents) == 17
    for document in documents:
        assert_valid(document)
    by_target = {d["target"]: d for d in documents}
    assert by_target[str(lab.target)]["certificate"]["sha256"] == lab.certificate_sha256
    assert by_target[str(lab.target)]["certificate"]["self_signed"] is True
    assert by_target[str(ca_lab.target)]["certificate"]["self_signed"] is False
    assert by_target[str(hostile.target)]["error"]["kind"] == "remote_protocol"
    # and each chain judged the Windows way without --diagnose: a verdict, no prediction
    plain = by_target[str(lab.target)]
    assert plain["verdict"] == "warning"
    assert "self-signed-not-pinned" in {p["code"] for p in plain["problems"]}
    assert (plain["predicted_stall_s"], plain["retrievals"]) == (None, None)
    assert by_target[str(hostile.target)]["verdict"] == "unknown"
    # When the lab recreates its certificate and is scanned again
    old = lab.certificate_sha256
    new = lab.regenerate_certificate().sha256
    code, out, err = await run_rdptrust("scan", "--db", db, *map(str, lab.targets))
    assert code == 0, err
    assert "scan 2 done: 12 of 12 targets" in out
    # Then the history of a host shows both certificates and the recreation
    code, out, err = await run_rdptrust("history", "--db", db, str(lab.target), "--json")
    assert code == 0, err
    history = json.loads(out)
    assert_valid(history)
    assert [c["certificate"]["sha256"] for c in history["certificates"]] == [old, new]
    assert [(e["kind"], e["change"]) for e in history["events"]] == [
        ("first-seen", None),
        ("certificate-changed", "recreation"),
    ]
    code, out, _ = await run_rdptrust("history", "--db", db, str(lab.target))
    assert code == 0
    assert "recreation" in out
    # with both fingerprints whole, each on one line (piped output is never wrapped)
    assert old in out
    assert new in out
    # as plain aligned lines, no box drawn, each certificate's row on one line
    assert not set(out) & set("┏┓┃━│─┡┩╇└┘"), out
    rows = [line for line in out.splitlines() if line.startswith((old, new))]
    assert [r.split()[0] for r in rows] == [old, new]
    assert all("yes" in r.split() for r in rows)
    # And hosts lists every host once, with its latest state
    code, out, _ = await run_rdptrust("hosts", "--db", db, "--json")
    assert_valid(json.loads(out))
    hosts = json.loads(out)["hosts"]
    assert len(hosts) == 17
    latest = {h["target"]: h["latest"] for h in hosts}
    assert latest[str(lab.target)]["certificate"]["sha256"] == new
    code, out, _ = await run_rdptrust("hosts", "--db", db)
    assert code == 0
    assert "WIN-LAB01" in out
    # And the reports hold one entry per host
    for flag, name in (("--csv", "r.csv"), ("--jsonl", "r.jsonl"), ("--html", "r.html")):
        code, _, err = await run_rdptrust("report", "--db", db, flag, str(tmp_path / name))
        assert code == 0, err
    csv_lines = (tmp_path / "r.csv").read_text(encoding="utf-8").splitlines()
    assert csv_lines[0].startswith("scan_id,target,")
    assert len(csv_lines) == 18
    assert len((tmp_path / "r.jsonl").read_text(encoding="utf-8").splitlines()) == 17
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert page.count('<tr class="host"') == 17
    code, out, _ = await run_rdptrust("report", "--db", db, "--jsonl", "-", "--scan", "2")
    assert len(out.splitlines()) == 12


async def test_scan_diagnose_from_the_command_line(tmp_path: Path, lab_factory: LabFactory) -> None:
    lab = await lab_factory(cert="self-signed", root_list="blackhole", count=3)
    db = str(tmp_path / "inv.sqlite3")
    code, out, err = await run_rdptrust(
        "scan", "--db", db, "--diagnose", "--fetch-timeout", "1", "--jsonl",
        "--root-list-url", lab.root_list_url,
        # the trusted list only: the disallowed list has its own switch (WINDOWS.md §2)
        "--disallowed-update", "off",
        "--known-hosts", str(no_pins(tmp_path / "known_hosts.json")),
        *map(str, lab.targets),
    )  # fmt: skip
    assert code == 0, err
    documents = [json.loads(line) for line in out.splitlines()]
    assert len(documents) == 3
    for document in documents:
        assert document["verdict"] == "critical"
        assert document["predicted_stall_s"] == pytest.approx(15.0, abs=1.0)
        assert "self-signed-not-pinned" in {p["code"] for p in document["problems"]}
    # The report shows the predicted stall of every diagnosed host
    code, _, err = await run_rdptrust("report", "--db", db, "--html", str(tmp_path / "r.html"))
    assert code == 0, err
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "3 hosts diagnosed" in page


def _open_files(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))


def test_concurrency_is_fitted_to_the_open_file_limit(tmp_path: Path) -> None:
    # Given 150 hosts that accept and never answer, and a process that may open 120 files
    db = tmp_path / "inv.sqlite3"
    with listening(150) as targets:
        # When a scan asks for its default 200 at once
        run = subprocess.run(
            [*RDPTRUST, "scan", "--db", str(db), "--jsonl", "--timeout", "1", *targets],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            preexec_fn=lambda: _open_files(120),
        )
    # Then it warns, scans fewer at once, and every host times out rather than
    # failing for want of a file descriptor
    assert run.returncode == 0, run.stderr
    assert "more than this process may open (ulimit -n); scanning 56 at once" in run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert sorted(d["target"] for d in lines) == sorted(targets)
    assert {d["error"]["kind"] for d in lines} == {"timeout"}
    assert db_counts(db) == ("done", 150, 150, 150)


def test_the_soft_open_file_limit_is_raised_when_the_hard_one_allows() -> None:
    code = (
        "import resource\n"
        "from rdptrust.engine.scan_options import ScanOptions, fit_concurrency\n"
        "print(fit_concurrency(ScanOptions(concurrency=500, enumerate=True)),"
        " resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n"
    )

    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 20000))

    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        preexec_fn=limits,
    )
    fitted, soft = map(int, run.stdout.split())
    # 500 hosts times (main + 6 protocols + 4 TLS versions + NTLM) + 64 reserved
    assert (fitted, soft) == (500, 500 * 12 + 64)


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_scan_runs_on_either_event_loop(tmp_path: Path, loop: str) -> None:
    db = tmp_path / "inv.sqlite3"
    targets = [f"127.0.0.1:{port}" for port in refused_ports(3)]
    done = subprocess.run(
        [*RDPTRUST, "scan", "--db", str(db), "--jsonl", *targets],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "RDPTRUST_EVENT_LOOP": loop},
    )
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 3
    assert db_counts(db) == ("done", 3, 3, 3)


def test_unknown_event_loop_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [*RDPTRUST, "scan", "--db", str(tmp_path / "inv.sqlite3"), "127.0.0.1:1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "RDPTRUST_EVENT_LOOP": "trio"},
    )
    assert done.returncode == 64
    assert done.stderr.strip() == (
        "rdptrust: error: RDPTRUST_EVENT_LOOP must be uvloop or asyncio, not 'trio'"
    )


async def test_hosts_of_a_site_with_none_says_so_not_that_the_inventory_is_empty(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "inv.sqlite3")
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        target = f"127.0.0.1:{unused.getsockname()[1]}"
    code, _, err = await run_rdptrust("scan", "--db", db, "--site", "hq", target)
    assert code == 0, err
    code, out, err = await run_rdptrust("hosts", "--db", db, "--site", "branch-2")
    assert code == 0, err
    assert out == (
        "The inventory holds no host scanned from site 'branch-2';"
        " 'rdptrust hosts' without --site lists every site's.\n"
    )
    code, out, _ = await run_rdptrust("hosts", "--db", db, "--site", "hq")
    assert target in out


async def test_resume_with_no_inventory_creates_none(tmp_path: Path) -> None:
    db = tmp_path / "new.sqlite3"
    code, out, err = await run_rdptrust("scan", "--db", str(db), "--resume")
    assert code == 66, (out, err)
    assert err == f"rdptrust: error: no inventory at {db}: 'rdptrust scan' creates one\n"
    assert not db.exists()
