"""Time N sequential and N concurrent probes against local lab endpoints.

    .venv/bin/python benchmarks/probe.py --count 200 --latency-ms 0
    .venv/bin/python benchmarks/probe.py --count 200 --latency-ms 50 --enumerate

The lab runs in a child process (so its TLS work does not share our event loop) and
serves COUNT endpoints on 127.0.0.1. Prints one JSON line of results; the figures in
benchmarks/README.md come from it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import time

from bytecode import use_compiled_bytecode  # benchmarks/bytecode.py

from rdptrust.cli.common import EVENT_LOOP_VARIABLE
from rdptrust.cli.common import run as run_loop
from rdptrust.model.target import parse_target
from rdptrust.net.probe import probe_host


def start_lab(count: int, latency_ms: int) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rdptrust.cli.main",
            "lab",
            "--count",
            str(count),
            "--latency-ms",
            str(latency_ms),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise SystemExit("the lab did not start")
    return proc, list(json.loads(line)["rdp"])


async def run(targets: list[str], concurrency: int, enumerate_: bool) -> tuple[float, int]:
    semaphore = asyncio.Semaphore(concurrency)
    failures = 0

    async def one(text: str) -> None:
        nonlocal failures
        async with semaphore:
            result = await probe_host(
                parse_target(text),
                timeout=10,
                enumerate_protocols=enumerate_,
                enumerate_tls_versions=enumerate_,
                standard_security=enumerate_,
                ntlm=enumerate_,
            )
            if result.error is not None or not result.chain:
                failures += 1

    start = time.perf_counter()
    await asyncio.gather(*(one(t) for t in targets))
    return time.perf_counter() - start, failures


def main() -> None:
    use_compiled_bytecode()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--enumerate", action="store_true")
    args = parser.parse_args()
    lab, targets = start_lab(args.count, args.latency_ms)
    try:
        # the command line's event loop (uvloop where installed)
        sequential, seq_fail = run_loop(run(targets, 1, args.enumerate))
        concurrent, con_fail = run_loop(run(targets, args.concurrency, args.enumerate))
    finally:
        lab.send_signal(signal.SIGTERM)
        lab.wait(timeout=30)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "count": args.count,
                "latency_ms": args.latency_ms,
                "enumerate": args.enumerate,
                "cpus": os.cpu_count(),
                "event_loop": os.environ.get(EVENT_LOOP_VARIABLE, "uvloop"),
                "sequential_s": round(sequential, 3),
                "sequential_per_probe_ms": round(sequential / args.count * 1000, 2),
                "sequential_failures": seq_fail,
                "concurrency": args.concurrency,
                "concurrent_s": round(concurrent, 3),
                "concurrent_probes_per_s": round(args.count / concurrent, 1),
                "concurrent_failures": con_fail,
                "peak_rss_mib": round(peak_kib / 1024, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
