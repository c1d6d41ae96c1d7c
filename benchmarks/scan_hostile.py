"""A scan of N lab endpoints of which 20% are hostile: is every target accounted for?

    .venv/bin/python benchmarks/scan_hostile.py --count 5000

One helper process serves the whole fleet (several in-process labs of at most 256
endpoints each: well-behaved ones, and one lab per hostile mode sharing the hostile
fifth). Then ``rdptrust scan`` runs over every endpoint as a user runs it. The script
checks the inventory: every target done exactly once, the good ones observed with a
certificate, each hostile one recorded with the error kind its mode calls for, no
``internal`` error, nothing on the scan's standard error. It prints one JSON line;
docs/reliability.md records the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bytecode import use_compiled_bytecode  # benchmarks/bytecode.py

ROOT = Path(__file__).resolve().parents[1]
RDPTRUST = str(Path(sys.executable).with_name("rdptrust"))

KINDS = {
    "garbage": {"remote_protocol"},
    "length-too-large": {"remote_protocol"},
    "length-too-small": {"remote_protocol"},
    "truncated": {"connect"},
    "reset": {"connect"},
    "slow-drip": {"timeout"},
    "tls-alert": {"tls"},
    "endless": {"remote_protocol"},
    "silence": {"timeout"},
}


async def serve(count: int, out: Path) -> None:
    """The helper process: start the fleet, write its targets, serve until SIGTERM."""
    sys.path.insert(0, str(ROOT / "tests"))
    from fixtures.lab import lab_config
    from rdptrust.lab.runner import Lab

    hostile_count = count // 5
    good_count = count - hostile_count
    labs: list[Lab] = []
    fleet: dict[str, str] = {}
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        while good_count > 0:
            lab = Lab(lab_config(count=min(256, good_count)))
            labs.append(lab)
            await lab.start()
            fleet.update(dict.fromkeys(map(str, lab.targets), "ok"))
            good_count -= len(lab.targets)
        modes = list(KINDS)
        share = [hostile_count // len(modes)] * len(modes)
        for index in range(hostile_count % len(modes)):
            share[index] += 1
        for mode, n in zip(modes, share, strict=True):
            while n > 0:
                lab = Lab(lab_config(hostile=mode, count=min(256, n)))
                labs.append(lab)
                await lab.start()
                fleet.update(dict.fromkeys(map(str, lab.targets), mode))
                n -= len(lab.targets)
        partial = out.with_suffix(".partial")
        await asyncio.to_thread(partial.write_text, json.dumps(fleet))
        partial.replace(out)  # the parent waits for the name: it must appear whole
        await stop.wait()
    finally:
        for lab in reversed(labs):
            await lab.stop()


def run(count: int, concurrency: int, timeout: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="rdptrust-hostile-") as tmp:
        work = Path(tmp)
        fleet_file = work / "fleet.json"
        helper = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(fleet_file), "--count", str(count)]
        )
        try:
            deadline = time.monotonic() + 300
            while not fleet_file.exists():
                if helper.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the lab helper did not start")
                time.sleep(0.2)
            fleet: dict[str, str] = json.loads(fleet_file.read_text())
            targets = work / "targets.txt"
            targets.write_text("".join(f"{t}\n" for t in fleet))
            db = work / "inventory.sqlite3"
            start = time.monotonic()
            scan = subprocess.run(
                [
                    RDPTRUST,
                    "scan",
                    "-i",
                    str(targets),
                    "--db",
                    str(db),
                    "--concurrency",
                    str(concurrency),
                    "--timeout",
                    str(timeout),
                ],
                capture_output=True,
                text=True,
                check=False,
                env={**os.environ, "XDG_DATA_HOME": str(work / "data")},
            )
            wall = time.monotonic() - start
        finally:
            helper.send_signal(signal.SIGTERM)
            helper.wait(timeout=120)
        connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            states = dict(
                connection.execute(
                    "SELECT state, COUNT(*) FROM scan_targets GROUP BY state"
                ).fetchall()
            )
            rows = connection.execute(
                "SELECT h.host, h.port, o.ok, o.error_kind, o.sha256 FROM observations o "
                "JOIN hosts h ON h.id = o.host_id"
            ).fetchall()
        finally:
            connection.close()
    seen: Counter[str] = Counter()
    wrong: list[str] = []
    kinds: Counter[str] = Counter()
    for host, port, ok, kind, sha256 in rows:
        target = f"{host}:{port}"
        seen[target] += 1
        mode = fleet.get(target)
        if mode == "ok":
            if not ok or not sha256:
                wrong.append(f"{target} good but {kind}")
        elif mode is None:
            wrong.append(f"{target} not in the fleet")
        elif ok or kind not in KINDS[mode]:
            wrong.append(f"{target} {mode} recorded as {kind}")
        else:
            kinds[mode] += 1
    missing = [t for t in fleet if seen[t] == 0]
    twice = [t for t, n in seen.items() if n > 1]
    return {
        "targets": len(fleet),
        "hostile": sum(1 for mode in fleet.values() if mode != "ok"),
        "exit": scan.returncode,
        "seconds": round(wall, 1),
        "targets_per_s": round(len(fleet) / wall, 1),
        "states": states,
        "observations": len(rows),
        "missing": len(missing),
        "recorded_twice": len(twice),
        "wrong_outcome": wrong[:10],
        "wrong_outcome_count": len(wrong),
        "hostile_by_mode": dict(sorted(kinds.items())),
        "stderr_lines": len(scan.stderr.splitlines()),
        "traceback": "Traceback" in scan.stderr or "Traceback" in scan.stdout,
        "internal_errors": sum(1 for *_, kind, _ in rows if kind == "internal"),
    }


def main() -> None:
    use_compiled_bytecode()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        asyncio.run(serve(args.count, args.serve))
        return
    result = run(args.count, args.concurrency, args.timeout)
    print(json.dumps(result))
    ok = (
        result["exit"] == 0
        and result["missing"] == 0
        and result["recorded_twice"] == 0
        and result["wrong_outcome_count"] == 0
        and not result["traceback"]
        and result["internal_errors"] == 0
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
