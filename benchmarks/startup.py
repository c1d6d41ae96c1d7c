"""Start-up of the command line: ``rdptrust --version``, ``--help`` and a command's ``--help``.

    .venv/bin/python benchmarks/startup.py --runs 20

Runs each command line ``runs`` times in a fresh interpreter, the way the ``rdptrust``
script does (``python -c "from rdptrust.cli.main import main; main()" ARGS``, with this
interpreter and its ``PYTHONPATH``), after one untimed run that warms the file cache and
the bytecode. Prints one JSON line per command line: the median, minimum and maximum wall
time, the median CPU time (user + system, where the platform reports it: less disturbed
than the wall time by other work on the machine) and the number of modules the process
imported beyond a bare interpreter's (``python -X importtime``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from bytecode import use_compiled_bytecode  # benchmarks/bytecode.py

try:
    import resource
except ImportError:  # Windows: wall time only
    resource = None  # type: ignore[assignment]

ENTRY = "from rdptrust.cli.main import main; main()"

COMMAND_LINES = (
    ("--version",),
    ("--help",),
    ("scan", "--help"),
    ("lab", "--help"),
)


def children_cpu() -> float:
    if resource is None:
        return float("nan")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(args: tuple[str, ...]) -> tuple[float, float]:
    cpu, start = children_cpu(), time.perf_counter()
    subprocess.run([sys.executable, "-c", ENTRY, *args], check=True, capture_output=True)
    return time.perf_counter() - start, children_cpu() - cpu


def imported_modules(code: str, *args: str) -> int:
    argv = [sys.executable, "-X", "importtime", "-c", code, *args]
    done = subprocess.run(argv, check=True, capture_output=True, text=True)
    return sum(1 for line in done.stderr.splitlines() if line.startswith("import time:")) - 1


def main() -> None:
    use_compiled_bytecode()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    options = parser.parse_args()
    bare = imported_modules("pass")
    for args in COMMAND_LINES:
        run_once(args)
        runs = [run_once(args) for _ in range(options.runs)]
        wall = [w for w, _ in runs]
        print(
            json.dumps(
                {
                    "command": " ".join(("rdptrust", *args)),
                    "runs": options.runs,
                    "median_ms": round(statistics.median(wall) * 1000, 1),
                    "min_ms": round(min(wall) * 1000, 1),
                    "max_ms": round(max(wall) * 1000, 1),
                    "cpu_median_ms": round(statistics.median(c for _, c in runs) * 1000, 1),
                    "modules": imported_modules(ENTRY, *args) - bare,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
