"""``rdptrust hosts`` over large inventories: the table into a pipe, onto a terminal, and JSON.

    .venv/bin/python benchmarks/hosts.py --sizes 1000,5000,20000 --repeat 3

Fills one inventory per size through the store's recording API, as a scan does
(:func:`rdptrust.engine.scan.stage_result`, a batch of hosts per flush), with results
shaped like a fleet's: most hosts serve a self-signed certificate of their own
(``WIN-…``, made at run time with one shared RSA key) judged ``warning`` with its
problems; one in ten refuses the connection and one in ten times out; a second scan
sees every fourth host again, a third of those with a new certificate (two observations,
a certificate-changed event). The inventories are kept in ``--work`` and reused.

Then times ``rdptrust hosts --db INVENTORY`` in three ways, each run under a small
wrapper process so that its peak RSS is the command's own: ``table-pipe`` (standard
output a pipe, read and dropped), ``table-tty`` (standard output a pseudo-terminal of
160 columns, read and dropped; POSIX only) and ``json`` (``--json`` into a pipe). Prints
one JSON line per run, then the median wall time, CPU time and peak RSS of each size
and mode. ``--baseline CMD`` times another build the same way, in turns with this one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bytecode import use_compiled_bytecode  # benchmarks/bytecode.py
from cryptography.hazmat.primitives.serialization import Encoding

from rdptrust.engine.scan import stage_result
from rdptrust.lab.certs import HostCredentials, windows_self_signed
from rdptrust.lab.certs.signing import cached_rsa_key
from rdptrust.model.outcome import ProbeFailure
from rdptrust.model.probe import Negotiation, ProbeResult, Timings, TlsSessionInfo
from rdptrust.model.records import DiagnosisRecord, HostResult, ProblemRecord
from rdptrust.model.target import Target
from rdptrust.model.wire import SecurityProtocol
from rdptrust.store.inventory import Inventory

#: Hosts recorded per commit while an inventory is filled (a scan commits every 64).
COMMIT_EVERY = 256
MODES = ("table-pipe", "table-tty", "json")

#: Runs one command (argv[2:]) with standard output a pipe or a pseudo-terminal
#: (argv[1]), reading and dropping what it writes; prints exit code, wall time, the
#: command's peak RSS in KiB (Linux) or bytes (macOS) and its CPU time.
MEASURE = """\
import os, resource, subprocess, sys, time
mode, argv = sys.argv[1], sys.argv[2:]
start = time.monotonic()
if mode == "tty":
    import fcntl, pty, struct, termios
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
    proc = subprocess.Popen(argv, stdout=slave, stderr=subprocess.DEVNULL)
    os.close(slave)
    while True:
        try:
            if not os.read(master, 1 << 16):
                break
        except OSError:  # EIO: the command closed the terminal
            break
    os.close(master)
else:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    while proc.stdout.read(1 << 16):
        pass
code = proc.wait()
wall = time.monotonic() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{code} {wall} {usage.ru_maxrss} {usage.ru_utime + usage.ru_stime}")
"""


def probe_of(target: Target, credentials: HostCredentials | None, kind: str) -> ProbeResult:
    if credentials is None:
        failure = (
            ProbeFailure("connect", f"{target}: connection refused")
            if kind == "refused"
            else ProbeFailure("timeout", f"{target}: no answer within 5.0 s (connect)")
        )
        return ProbeResult(target, None, None, None, (), (), Timings(total_ms=1.0), failure)
    chain = tuple(c.public_bytes(Encoding.DER) for c in credentials.chain)
    return ProbeResult(
        target=target,
        address=target.host,
        negotiation=Negotiation(SecurityProtocol.SSL, SecurityProtocol.HYBRID, None, False),
        tls=TlsSessionInfo("TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384", chain),
        protocols=(),
        tls_versions=(),
        timings=Timings(0.4, 1.1, 6.3, 8.0),
        error=None,
    )


DIAGNOSIS = DiagnosisRecord(
    verdict="warning",
    predicted_stall_s=0.0,
    problems=(
        ProblemRecord(
            "self-signed-not-pinned",
            "warning",
            "the certificate is self-signed and not pinned: the client warns on first connection",
        ),
        ProblemRecord("no-revocation-info", "info", "the certificate names no CRL or OCSP URL"),
    ),
    retrievals=None,
)


def target_of(i: int) -> Target:
    if i % 3 == 0:
        return Target(f"rdp-{i:05d}.corp.example.com", 3389)
    return Target(f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}", 3389)


def fill(path: Path, count: int) -> None:
    key = cached_rsa_key(2048)
    start = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    targets = [target_of(i) for i in range(count)]

    def credentials(i: int, generation: int) -> HostCredentials:
        return windows_self_signed(
            f"WIN-{i:05d}" if generation == 0 else f"WIN-{i:05d}-NEW",
            key=key,
            not_valid_before=start + dt.timedelta(days=i % 300 + generation),
        )

    def record_all(scan_targets: list[tuple[int, Target]], generation: int) -> None:
        scan_id = inventory.create_scan(["benchmark"], {}, [t for _, t in scan_targets]).id
        for seq, (i, target) in enumerate(scan_targets):
            kind = ("ok", "ok", "ok", "ok", "ok", "ok", "ok", "refused", "timeout", "ok")[i % 10]
            served = credentials(i, generation if i % 3 == 0 else 0) if kind == "ok" else None
            result = HostResult(
                probe_of(target, served, kind), diagnosis=DIAGNOSIS if served else None
            )
            stage_result(inventory, scan_id, seq, target, result)
            if seq % COMMIT_EVERY == 0:
                inventory.flush()
        inventory.flush()
        inventory.finish_scan(scan_id, "done")

    with Inventory.open(path) as inventory:
        record_all(list(enumerate(targets)), 0)
        record_all([(i, t) for i, t in enumerate(targets) if i % 4 == 0], 1)


def inventory_of(work: Path, count: int) -> Path:
    path = work / f"hosts-{count}.sqlite3"
    if not path.exists():
        partial = path.with_suffix(".partial")
        for leftover in work.glob(partial.name + "*"):
            leftover.unlink()
        fill(partial, count)
        partial.rename(path)
    return path


def measure(rdptrust: list[str], db: Path, mode: str) -> dict[str, object]:
    args = [*rdptrust, "hosts", "--db", str(db)] + (["--json"] if mode == "json" else [])
    pipe = "tty" if mode == "table-tty" else "pipe"
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, pipe, *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    code, wall, rss, cpu = int(out[0]), float(out[1]), int(out[2]), float(out[3])
    if code != 0:
        raise SystemExit(f"rdptrust hosts ({mode}) exited with {code}")
    rss_mib = rss / (1 << 20) if sys.platform == "darwin" else rss / 1024
    return {
        "mode": mode,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "peak_rss_mib": round(rss_mib, 1),
    }


def main() -> None:
    use_compiled_bytecode()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,5000,20000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()) / "rdptrust-hosts-benchmark"
    )
    parser.add_argument(
        "--rdptrust",
        default=f"{sys.executable} -m rdptrust",
        help="the command to time (default: this Python's rdptrust)",
    )
    parser.add_argument(
        "--baseline",
        help="another build's command, timed in turns with --rdptrust (the order rotates)",
    )
    options = parser.parse_args()
    modes = [m for m in options.modes.split(",") if m]
    if "table-tty" in modes and os.name != "posix":
        modes.remove("table-tty")
    options.work.mkdir(parents=True, exist_ok=True)
    builds = [("this", options.rdptrust.split())]
    if options.baseline:
        builds.append(("baseline", options.baseline.split()))
    results: dict[tuple[int, str, str], list[dict[str, object]]] = {}
    for size in (int(s) for s in options.sizes.split(",")):
        db = inventory_of(options.work, size)
        for round_ in range(options.repeat):
            for mode in modes:
                turn = builds[round_ % len(builds) :] + builds[: round_ % len(builds)]
                for build, command in turn:
                    run = {"build": build, "hosts": size, **measure(command, db, mode)}
                    print(json.dumps(run), flush=True)
                    results.setdefault((size, mode, build), []).append(run)
    print("| build | hosts | output | wall (median) | CPU (median) | peak RSS (median) |")
    print("|---|---|---|---|---|---|")
    for (size, mode, build), runs in sorted(results.items(), key=lambda r: (r[0][2], r[0][:2])):
        wall = statistics.median(float(str(r["wall_s"])) for r in runs)
        cpu = statistics.median(float(str(r["cpu_s"])) for r in runs)
        rss = statistics.median(float(str(r["peak_rss_mib"])) for r in runs)
        print(f"| {build} | {size:,} | {mode} | {wall:.2f} s | {cpu:.2f} s | {rss:.0f} MiB |")


if __name__ == "__main__":
    main()
