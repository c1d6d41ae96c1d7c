"""The inventory on SQLite and on PostgreSQL: ``scan`` and queued scans worked by 1 or 4
``rdptrust worker`` processes, in one run.

    .venv/bin/python benchmarks/backends.py --count 2000 --repeat 3 \\
        --postgres postgresql://rdptrust_test@127.0.0.1:55432/postgres

Starts ``count`` lab endpoints (``rdptrust lab`` processes of at most 250 endpoints, each
with a certificate of its own). Each round, in rotating order, for each backend: one
``rdptrust scan`` of every endpoint, then ``rdptrust scan --queue`` of every endpoint
worked by 1 and by 4 ``rdptrust worker --exit-when-idle`` processes. Each run gets a new
inventory: an SQLite file, or a new database of the PostgreSQL server given (its URL
without a password: libpq reads that from ``PGPASSFILE``), dropped after. Reports the
wall time from the first worker's start to the last one's end, hosts/s, and the CPU of
the rdptrust processes per host (``RUSAGE_CHILDREN``; the PostgreSQL server's own CPU is
not in it). The lab endpoints run on the same machine: on a machine with few cores the
wall figures show the sharing. Prints one JSON line per run, then the medians.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bytecode import use_compiled_bytecode  # benchmarks/bytecode.py
from workers import start_labs  # benchmarks/workers.py: lab processes of 250 endpoints

RDPTRUST = [sys.executable, "-m", "rdptrust.cli.main"]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def inventory(backend: str, server: str | None, folder: Path) -> Iterator[str]:
    if backend == "sqlite":
        path = folder / f"{uuid.uuid4().hex}.sqlite3"
        yield str(path)
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                Path(str(path) + suffix).unlink()
        return
    import psycopg

    assert server is not None
    name = f"rdptrust_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    parts = urllib.parse.urlsplit(server)
    try:
        yield urllib.parse.urlunsplit(parts._replace(path="/" + name))
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def one_run(db: str, targets_file: Path, mode: str, count: int) -> dict[str, Any]:
    common = ["--db", db, "--timeout", "10"]
    if mode == "scan":
        cpu0, start = children_cpu(), time.monotonic()
        subprocess.run(
            [*RDPTRUST, "scan", "-i", str(targets_file), *common, "--workers", "1"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wall, cpu = time.monotonic() - start, children_cpu() - cpu0
    else:
        workers = int(mode.removeprefix("queue-"))
        cpu0 = children_cpu()
        subprocess.run(
            [*RDPTRUST, "scan", "--queue", "--site", "bench", "-i", str(targets_file), *common],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        start = time.monotonic()
        procs = [
            subprocess.Popen(
                [
                    *RDPTRUST,
                    "worker",
                    "--site",
                    "bench",
                    "--db",
                    db,
                    "--exit-when-idle",
                    "--poll",
                    "0.2",
                    "--concurrency",
                    str(max(25, 200 // workers)),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(workers)
        ]
        for proc in procs:
            if proc.wait() != 0:
                raise SystemExit(f"a worker ended with {proc.returncode}")
        wall, cpu = time.monotonic() - start, children_cpu() - cpu0
    return {
        "mode": mode,
        "count": count,
        "wall_s": round(wall, 2),
        "hosts_per_s": round(count / wall, 1),
        "cpu_ms_per_host": round(cpu * 1000 / count, 2),
    }


def main() -> None:
    use_compiled_bytecode()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgres", default=os.environ.get("RDPTRUST_TEST_POSTGRES"))
    args = parser.parse_args()
    backends = ["sqlite"] + (["postgresql"] if args.postgres else [])
    modes = ["scan", "queue-1", "queue-4"]
    labs, targets = start_labs(args.count, latency_ms=0)
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            targets_file = folder / "targets.txt"
            targets_file.write_text("".join(t + "\n" for t in targets), encoding="utf-8")
            runs = [(b, m) for b in backends for m in modes]
            for round_ in range(args.repeat):
                shift = round_ % len(runs)
                for backend, mode in runs[shift:] + runs[:shift]:
                    with inventory(backend, args.postgres, folder) as db:
                        row = {"backend": backend, **one_run(db, targets_file, mode, args.count)}
                    print(json.dumps(row), flush=True)
                    results.setdefault((backend, mode), []).append(row)
    finally:
        for lab in labs:
            lab.send_signal(signal.SIGINT)
        for lab in labs:
            try:
                lab.wait(10)
            except subprocess.TimeoutExpired:
                lab.kill()
    print(f"medians of {args.repeat} rounds, {args.count} endpoints:")
    print("| backend | run | hosts/s | CPU ms/host (rdptrust processes) |")
    print("|---|---|---:|---:|")
    for (backend, mode), rows in results.items():
        rate = statistics.median(r["hosts_per_s"] for r in rows)
        cost = statistics.median(r["cpu_ms_per_host"] for r in rows)
        print(f"| {backend} | {mode} | {rate:.0f} | {cost:.2f} |")


if __name__ == "__main__":
    main()
