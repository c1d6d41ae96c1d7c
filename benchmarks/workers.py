"""``scan --workers``: what the scanning process pays per host, and what the workers pay.

    .venv/bin/python benchmarks/workers.py --count 1000 --workers 1,2,4 --repeat 3

Starts ``count`` lab endpoints (``rdptrust lab`` processes of at most 250 endpoints, each
with a certificate of its own), then scans them in this process through the library
(:func:`rdptrust.engine.scan.run_scan`, as ``rdptrust scan --workers N`` does), once per
worker count per round, the counts in rotating order. For each run it reports the wall
time, hosts/s, the CPU of the scanning process alone (it hands out targets and records:
the part that does not grow with the cores) and the CPU of the worker processes (probing
and judging), each per host. With N workers the scan's ceiling is the scanning process's
CPU per host, where one process pays both parts. The lab endpoints run on the same
machine, so on a machine with few cores the wall figures show the sharing, not the gain;
the CPU figures do not depend on it. Prints one JSON line per run, then the medians.

With ``--start-up`` it starts no lab and only opens and closes the worker processes,
``--repeat`` times per count: their start-up's wall time and CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bytecode import use_compiled_bytecode  # benchmarks/bytecode.py

from rdptrust.engine.scan import run_scan
from rdptrust.engine.scan_options import ScanOptions, fit_concurrency
from rdptrust.engine.workers import GRACE_S, ProcessObserver
from rdptrust.model.target import parse_target
from rdptrust.store.inventory import Inventory

PER_LAB = 250


def start_labs(count: int, latency_ms: int) -> tuple[list[subprocess.Popen[str]], list[str]]:
    labs: list[subprocess.Popen[str]] = []
    targets: list[str] = []
    while len(targets) < count:
        n = min(PER_LAB, count - len(targets))
        argv = [sys.executable, "-m", "rdptrust.cli.main", "lab", "--count", str(n)]
        argv += ["--distinct-certs", "--latency-ms", str(latency_ms)]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("a lab did not start")
        labs.append(proc)
        targets.extend(json.loads(line)["rdp"])
    return labs, targets


def stop_labs(labs: list[subprocess.Popen[str]]) -> None:
    """Ask every lab to end, then wait for each."""
    for lab in labs:
        lab.send_signal(signal.SIGTERM)
    for lab in labs:
        lab.wait(timeout=30)


def cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


async def one_run(db: Path, targets: list[str], workers: int, concurrency: int) -> dict[str, Any]:
    options = ScanOptions(concurrency=concurrency, timeout=10.0)
    fit_concurrency(options)
    with Inventory.open(db) as inventory:
        scan = inventory.create_scan([], {}, [parse_target(t) for t in targets])
        own0, children0 = cpu(resource.RUSAGE_SELF), cpu(resource.RUSAGE_CHILDREN)
        start = time.monotonic()
        if workers == 1:
            summary = await run_scan(inventory, scan, options)
        else:
            async with ProcessObserver(options, workers) as observe:
                summary = await run_scan(
                    inventory,
                    scan,
                    options,
                    observer=observe,
                    leaf_source=observe.leaf,
                    grace_s=GRACE_S,
                )
        wall = time.monotonic() - start
        own = cpu(resource.RUSAGE_SELF) - own0
        # the worker processes are joined by now: their CPU is in RUSAGE_CHILDREN
        children = cpu(resource.RUSAGE_CHILDREN) - children0
    n = summary.recorded
    return {
        "workers": workers,
        "targets": len(targets),
        "recorded": n,
        "ok": summary.ok,
        "wall_s": round(wall, 2),
        "hosts_per_s": round(n / wall, 1),
        "scanner_cpu_ms_per_host": round(own / n * 1000, 3),
        "workers_cpu_ms_per_host": round(children / n * 1000, 3),
        "total_cpu_ms_per_host": round((own + children) / n * 1000, 3),
    }


async def start_up(workers: int) -> dict[str, Any]:
    """What starting and stopping *workers* worker processes costs, no target scanned."""
    own0, children0 = cpu(resource.RUSAGE_SELF), cpu(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    async with ProcessObserver(ScanOptions(), workers):
        ready = time.monotonic() - start
    return {
        "start_up": workers,
        "ready_s": round(ready, 3),
        "wall_s": round(time.monotonic() - start, 3),
        "scanner_cpu_s": round(cpu(resource.RUSAGE_SELF) - own0, 3),
        # joined (and, on Linux, the fork server with them): counted here
        "workers_cpu_s": round(cpu(resource.RUSAGE_CHILDREN) - children0, 3),
    }


def rotated(counts: list[int], round_: int) -> list[int]:
    """The worker counts in the order of round *round_* (each round starts one later)."""
    at = round_ % len(counts)
    return counts[at:] + counts[:at]


def print_medians(
    runs: list[dict[str, Any]], by: str, counts: list[int], keys: tuple[str, ...]
) -> None:
    medians = {
        str(w): {k: statistics.median(r[k] for r in runs if r[by] == w) for k in keys}
        for w in counts
    }
    print(json.dumps({"median": medians, "cpus": os.cpu_count()}))


def main_start_up(counts: list[int], repeat: int) -> None:
    runs: list[dict[str, Any]] = []
    for round_ in range(repeat):
        for workers in rotated(counts, round_):
            run = asyncio.run(start_up(workers))
            print(json.dumps(run), flush=True)
            runs.append(run)
    print_medians(runs, "start_up", counts, ("ready_s", "scanner_cpu_s", "workers_cpu_s"))


def main() -> None:
    use_compiled_bytecode()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--start-up", action="store_true", help="only start and stop the workers, no lab"
    )
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    if args.start_up:
        main_start_up(counts, args.repeat)
        return
    labs, targets = start_labs(args.count, args.latency_ms)
    runs: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            # untimed: every endpoint serves one handshake first
            asyncio.run(one_run(Path(tmp) / "warm.sqlite3", targets, 1, args.concurrency))
            for round_ in range(args.repeat):
                for workers in rotated(counts, round_):
                    db = Path(tmp) / f"r{round_}-w{workers}.sqlite3"
                    run = asyncio.run(one_run(db, targets, workers, args.concurrency))
                    run["load_average"] = round(os.getloadavg()[0], 2)
                    print(json.dumps(run), flush=True)
                    runs.append(run)
    finally:
        stop_labs(labs)
    keys = ("hosts_per_s", "scanner_cpu_ms_per_host", "workers_cpu_ms_per_host")
    print_medians(runs, "workers", counts, keys)


if __name__ == "__main__":
    main()
