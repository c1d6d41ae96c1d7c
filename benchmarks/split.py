"""Where a scan's CPU goes per host: the connection path, judging, storing, against the ceiling.

    .venv/bin/python benchmarks/split.py --count 1000 --repeat 5

Starts ``count`` lab endpoints (``rdptrust lab`` processes of at most 250 endpoints, each
with a certificate of its own) and times three things in this process, in rotating order,
``--repeat`` rounds, each over every endpoint at ``--concurrency`` in flight:

- the minimal client (benchmarks/minimal_client.py): connect, X.224, TLS, chain, close;
- rdptrust's connection path alone: :func:`rdptrust.net.probe.probe_host` as a plain scan
  calls it (one connection, no enumeration), nothing judged or stored;
- a whole scan (:func:`rdptrust.engine.scan.run_scan` into a new SQLite inventory, as
  ``rdptrust scan --workers 1`` runs it), with the CPU of its steps taken apart: judging with
  the Windows model (the batches of :mod:`rdptrust.engine.batching`), reading the leaves and
  staging the hosts (``stage_result``), storing (``Inventory.flush``); the rest is the
  connection path and the scan loop.

CPU is this process's (``time.process_time``): start-up is not in it, the labs' work is not
either. Prints one JSON line per run, then a Markdown table of the medians.
"""

from __future__ import annotations

import argparse
import collections
import functools
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from bytecode import use_compiled_bytecode  # benchmarks/bytecode.py

_F = TypeVar("_F", bound=Callable[..., Any])
#: CPU seconds spent in each instrumented step during the current run.
SPENT: collections.Counter[str] = collections.Counter()


def _timed(name: str, fn: _F) -> _F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            SPENT[name] += time.process_time() - start

    return wrapper  # type: ignore[return-value]


def _instrument() -> None:
    import rdptrust.engine.batching as batching
    import rdptrust.engine.scan as scan
    import rdptrust.store.inventory as inventory

    batching.Batch._run = _timed("judging", batching.Batch._run)  # type: ignore[method-assign]
    scan.stage_result = _timed("leaves and staging", scan.stage_result)
    inventory.Inventory.flush = _timed("storing", inventory.Inventory.flush)  # type: ignore[method-assign]


async def _minimal(targets: list[str], concurrency: int) -> int:
    import minimal_client

    results = await minimal_client.scan(targets, concurrency, 10.0)
    return sum(not v.startswith("error") for v in results.values())


async def _connections(targets: list[str], concurrency: int) -> int:
    # benchmarks/probe.py's concurrent run, the main connection only: as a plain scan probes
    import probe

    _, failures = await probe.run(targets, concurrency, False)
    return len(targets) - failures


async def _scan(targets: list[str], concurrency: int, db: Path) -> int:
    from rdptrust.engine.scan import run_scan
    from rdptrust.engine.scan_options import ScanOptions, fit_concurrency
    from rdptrust.model.target import parse_target
    from rdptrust.store.inventory import Inventory

    options = ScanOptions(concurrency=concurrency, timeout=10.0)
    fit_concurrency(options)
    with Inventory.open(db) as inventory:
        scan = inventory.create_scan([], {}, [parse_target(t) for t in targets])
        summary = await run_scan(inventory, scan, options)
    return summary.ok


def _run(kind: str, targets: list[str], concurrency: int, tmp: Path, index: int) -> dict[str, Any]:
    import uvloop

    SPENT.clear()
    start, began = time.process_time(), time.monotonic()
    if kind == "minimal client":
        ok = uvloop.run(_minimal(targets, concurrency))
    elif kind == "connection path":
        ok = uvloop.run(_connections(targets, concurrency))
    else:
        ok = uvloop.run(_scan(targets, concurrency, tmp / f"scan-{index}.sqlite3"))
    cpu = time.process_time() - start
    n = len(targets)
    run: dict[str, Any] = {
        "kind": kind,
        "targets": n,
        "ok": ok,
        "wall_s": round(time.monotonic() - began, 3),
        "cpu_us_per_host": round(cpu / n * 1e6, 1),
    }
    for step, spent in SPENT.items():
        run[f"{step}_us_per_host"] = round(spent / n * 1e6, 1)
    if SPENT:
        rest = cpu - sum(SPENT.values())
        run["connection path and scan loop_us_per_host"] = round(rest / n * 1e6, 1)
    run["load_average"] = round(os.getloadavg()[0], 2)
    return run


KINDS = ("minimal client", "connection path", "rdptrust scan")
STEPS = ("judging", "leaves and staging", "storing", "connection path and scan loop")


def main() -> None:
    use_compiled_bytecode()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    # minimal_client and probe are loaded before any round is timed (each round imports
    # them by name)
    import minimal_client  # noqa: F401
    import probe  # noqa: F401
    from workers import start_labs, stop_labs  # benchmarks/workers.py

    _instrument()
    labs, targets = start_labs(args.count, 0)
    runs: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            # untimed: every endpoint serves one handshake first, every module is loaded
            _run("rdptrust scan", targets, args.concurrency, Path(tmp), -1)
            for round_ in range(args.repeat):
                order = KINDS[round_ % 3 :] + KINDS[: round_ % 3]
                for kind in order:
                    run = _run(kind, targets, args.concurrency, Path(tmp), round_)
                    print(json.dumps(run), flush=True)
                    runs.append(run)
    finally:
        stop_labs(labs)

    def median(kind: str, key: str) -> float:
        values = [r[key] for r in runs if r["kind"] == kind and key in r]
        return statistics.median(values) if values else float("nan")

    ceiling = median("minimal client", "cpu_us_per_host")
    print(f"\n{args.count:,} lab endpoints, {args.concurrency} in flight, {args.repeat} rounds:\n")
    print("| what | CPU per host (median) | against the minimal client |")
    print("|---|---:|---:|")
    for kind in KINDS:
        value = median(kind, "cpu_us_per_host")
        print(f"| {kind} | {value:.0f} µs | {value / ceiling:.2f}x |")
    for step in STEPS:
        print(
            f"| rdptrust scan: {step} | {median('rdptrust scan', f'{step}_us_per_host'):.0f} µs | |"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
