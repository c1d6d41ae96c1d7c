"""The exporter's diagnose scrapes per second against the built-in lab.

    .venv/bin/python benchmarks/exporter.py --scrapes 100 --repeat 3

Starts ``rdptrust lab --cert ca`` (a CA-issued host certificate whose AIA, CRL, OCSP and
root-list URLs the lab answers on loopback) and ``rdptrust exporter`` with one module,
``diagnose``: the system trust store plus the lab's root CA, the root list from the lab,
loopback allowed as a fetch destination. Each round makes ``scrapes`` scrapes of
``/probe?target=LAB&module=diagnose`` one after another (after one untimed scrape) and
reports scrapes/s and the exporter's CPU per scrape (Linux: from /proc; elsewhere null).
Prints one JSON line per round, then the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bytecode import use_compiled_bytecode  # benchmarks/bytecode.py

CONFIG = """\
modules:
  diagnose:
    timeout: 30s
    diagnose: true
    enumerate: false
    system_trust: true
    ca_files: [{ca}]
    known_hosts: {known_hosts}
    root_list_url: {root_list_url}
    fetch_allow: [127.0.0.0/8]
"""


def process_cpu(pid: int) -> float | None:
    """User + system CPU seconds of process *pid* (Linux only; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_lab() -> tuple[subprocess.Popen[str], dict[str, Any]]:
    argv = [sys.executable, "-m", "rdptrust.cli.main", "lab", "--cert", "ca"]
    lab = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    assert lab.stdout is not None
    line = lab.stdout.readline()
    if not line:
        raise SystemExit("the lab did not start")
    return lab, json.loads(line)


def start_exporter(config: Path) -> tuple[subprocess.Popen[str], str]:
    argv = [sys.executable, "-m", "rdptrust.cli.main", "exporter", "--listen", "127.0.0.1:0"]
    exporter = subprocess.Popen([*argv, "--config", str(config)], stderr=subprocess.PIPE, text=True)
    assert exporter.stderr is not None
    line = exporter.stderr.readline()
    if "listening on " not in line:
        raise SystemExit(f"the exporter did not start: {line.strip()}")
    return exporter, line.split("listening on ", 1)[1].split()[0]


def scrape(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as answer:
        body: bytes = answer.read()
    return body


def one_round(exporter: subprocess.Popen[str], url: str, scrapes: int) -> dict[str, Any]:
    cpu0, start = process_cpu(exporter.pid), time.monotonic()
    for _ in range(scrapes):
        if b"rdptrust_chain_trusted 1.0" not in scrape(url):
            raise SystemExit("a scrape did not judge the lab's chain trusted")
    wall = time.monotonic() - start
    cpu1 = process_cpu(exporter.pid)
    cpu = None if cpu0 is None or cpu1 is None else (cpu1 - cpu0) / scrapes * 1000
    return {
        "scrapes": scrapes,
        "wall_s": round(wall, 2),
        "scrapes_per_s": round(scrapes / wall, 1),
        "exporter_cpu_ms_per_scrape": None if cpu is None else round(cpu, 2),
    }


def main() -> None:
    use_compiled_bytecode()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrapes", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    lab, info = start_lab()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "exporter.yml"
            config.write_text(
                CONFIG.format(
                    ca=json.dumps(info["ca_cert"]),
                    known_hosts=json.dumps(str(Path(tmp) / "known_hosts.json")),
                    root_list_url=json.dumps(info["root_list_url"]),
                ),
                encoding="utf-8",
            )
            exporter, base = start_exporter(config)
            try:
                url = f"{base}/probe?target={info['rdp'][0]}&module=diagnose"
                scrape(url)  # untimed: the lab's first handshake, the exporter's imports
                runs = []
                for _ in range(args.repeat):
                    run = one_round(exporter, url, args.scrapes)
                    run["load_average"] = round(os.getloadavg()[0], 2)
                    print(json.dumps(run), flush=True)
                    runs.append(run)
            finally:
                exporter.terminate()
                exporter.wait(timeout=30)
    finally:
        lab.terminate()
        lab.wait(timeout=30)
    keys = ("scrapes_per_s", "exporter_cpu_ms_per_scrape")
    medians = {k: statistics.median(r[k] for r in runs if r[k] is not None) for k in keys}
    print(json.dumps({"median": medians, "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
