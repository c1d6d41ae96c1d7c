"""Fleet speed: rdptrust scan against sslyze and nmap on the same lab endpoints.

    .venv/bin/python benchmarks/scan.py --count 1000 --latency-ms 50
    .venv/bin/python benchmarks/scan.py --count 1000 --latency-ms 50 --distinct-certs
    .venv/bin/python benchmarks/scan.py --count 1000 --extra-refused 9000 --tools rdptrust

Starts ``count`` lab endpoints (several ``rdptrust lab`` processes of at most 250 each,
on consecutive loopback ports), then times each tool over all of them. Each tool runs
under a small wrapper process, so its peak RSS is its own. ``--extra-refused`` adds
targets on closed ports (they refuse at once) to measure memory with many targets.
Prints one JSON line per tool; benchmarks/README.md records the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bytecode import use_compiled_bytecode  # benchmarks/bytecode.py

ROOT = Path(__file__).resolve().parents[1]
SSLYZE = ROOT / ".venv-sslyze" / "bin" / "sslyze"
PER_LAB = 250

MEASURE = (
    "import resource, subprocess, sys, time\n"
    "start = time.monotonic()\n"
    "quiet = {'stdout': subprocess.DEVNULL, 'stderr': subprocess.DEVNULL}\n"
    "code = subprocess.run(sys.argv[1:], **quiet).returncode\n"
    "wall = time.monotonic() - start\n"
    "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(f'{code} {wall} {usage.ru_maxrss} {usage.ru_utime + usage.ru_stime}')\n"
)


def free_block(size: int, start: int = 20000) -> int:
    """The first port of *size* consecutive free loopback ports."""
    port = start
    while port + size < 60000:
        ok = True
        for candidate in range(port, port + size):
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", candidate))
                except OSError:
                    ok = False
                    port = candidate + 1
                    break
        if ok:
            return port
    raise SystemExit("no block of free ports")


def ec_credentials(directory: Path) -> list[str]:
    """A self-signed ECDSA P-256 certificate for the labs (cheap to sign with)."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "WIN-BENCH")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=180))
        .sign(key, hashes.SHA256())
    )
    (directory / "ec.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "ec.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ["--cert-file", str(directory / "ec.pem"), "--key-file", str(directory / "ec.key")]


def start_labs(
    count: int, latency_ms: int, extra: list[str]
) -> tuple[list[subprocess.Popen[str]], list[str]]:
    labs, targets = [], []
    while len(targets) < count:
        n = min(PER_LAB, count - len(targets))
        base = free_block(n, 20000 + len(targets) * 2)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rdptrust.cli.main",
                "lab",
                "--count",
                str(n),
                "--port",
                str(base),
                "--latency-ms",
                str(latency_ms),
                *extra,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("a lab did not start")
        labs.append(proc)
        targets.extend(json.loads(line)["rdp"])
    return labs, targets


def closed_ports(n: int) -> list[str]:
    """Ports bound by nobody right now (they refuse connections)."""
    out = []
    port = 61000
    while len(out) < n and port < 65535:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
                out.append(f"127.0.0.1:{port}")
            except OSError:
                pass
        port += 1
    # reuse 127.0.0.2.. for more distinct targets on the same closed ports
    host = 2
    while len(out) < n:
        for p in range(61000, 65535):
            out.append(f"127.0.0.{host}:{p}")
            if len(out) >= n:
                break
        host += 1
    return out


def measure(argv: list[str]) -> tuple[int, float, float, float]:
    """Exit code, wall seconds, peak RSS (MiB) and CPU seconds of one tool run."""
    proc = subprocess.run(
        [sys.executable, "-c", MEASURE, *argv], capture_output=True, text=True, check=False
    )
    code, wall, rss, cpu = proc.stdout.split()
    return int(code), float(wall), int(rss) / 1024, float(cpu)


def run_rdptrust(
    work: Path, targets_file: Path, concurrency: int, db: str, exe: str | None = None
) -> tuple[Any, ...]:
    rdptrust = exe or shutil.which("rdptrust") or str(Path(sys.executable).parent / "rdptrust")
    code, wall, rss, cpu = measure(
        [
            rdptrust,
            "scan",
            "-i",
            str(targets_file),
            "--db",
            str(work / db),
            "--concurrency",
            str(concurrency),
            "--timeout",
            "10",
        ]
    )
    hosts = subprocess.run(
        [rdptrust, "hosts", "--db", str(work / db), "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = json.loads(hosts)["hosts"]
    certs = [
        h["latest"]["certificate"]["sha256"]
        for h in rows
        if h["latest"]["ok"] and h["latest"]["certificate"]
    ]
    print(
        f"rdptrust: {len(rows)} hosts recorded, {len(certs)} with a certificate "
        f"({len(set(certs))} distinct)",
        file=sys.stderr,
    )
    return code, wall, rss, cpu


def run_sslyze(work: Path, sample: list[str]) -> tuple[int, float, float, float]:
    (work / "sslyze.txt").write_text("\n".join(sample) + "\n")
    return measure(
        [
            str(SSLYZE),
            "--starttls",
            "rdp",
            "--certinfo",
            "--json_out",
            str(work / "sslyze.json"),
            "--targets_in",
            str(work / "sslyze.txt"),
        ]
    )


def run_nmap(work: Path, targets: list[str]) -> tuple[int, float, float, float]:
    ports = ",".join(t.rsplit(":", 1)[1] for t in targets)
    return measure(
        [
            "nmap",
            "-Pn",
            "-n",
            "-p",
            ports,
            "--script",
            "+rdp-enum-encryption",
            "127.0.0.1",
            "-oN",
            str(work / "nmap.txt"),
        ]
    )


def main() -> None:
    use_compiled_bytecode()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--extra-refused", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--tools", default="rdptrust,sslyze,nmap")
    parser.add_argument("--sslyze-sample", type=int, default=0, help="time sslyze on N targets")
    parser.add_argument("--repeat", type=int, default=1, help="time each tool N times")
    parser.add_argument(
        "--baseline",
        metavar="EXE",
        help="another rdptrust executable (an older commit) timed in the same run, in turn",
    )
    parser.add_argument(
        "--ec", action="store_true", help="labs serve an ECDSA certificate (less lab CPU)"
    )
    parser.add_argument(
        "--distinct-certs",
        action="store_true",
        help="every endpoint serves its own certificate, as in a real fleet",
    )
    args = parser.parse_args()
    tools = args.tools.split(",")
    keys = tempfile.TemporaryDirectory()
    if args.ec and args.distinct_certs:
        raise SystemExit("--ec and --distinct-certs exclude each other")
    extra = ec_credentials(Path(keys.name)) if args.ec else []
    if args.distinct_certs:
        extra = ["--distinct-certs"]
    labs, targets = start_labs(args.count, args.latency_ms, extra)
    results: list[tuple[str, int, int, float, float, float]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            all_targets = targets + closed_ports(args.extra_refused)
            targets_file = work / "targets.txt"
            targets_file.write_text("\n".join(all_targets) + "\n")
            # Untimed: every endpoint serves one handshake first (the labs' first use of
            # each key costs more), so no tool pays for being first.
            run_rdptrust(work, targets_file, args.concurrency, "warm.sqlite3")
            for round_ in range(args.repeat):
                if "rdptrust" in tools:
                    builds = [("rdptrust", None)]
                    if args.baseline:
                        # the order rotates so that neither build is always first
                        builds.append(("rdptrust baseline", args.baseline))
                        builds = builds[round_ % 2 :] + builds[: round_ % 2]
                    for name, exe in builds:
                        db = f"inv{round_}-{'base' if exe else 'new'}.sqlite3"
                        code, wall, rss, cpu = run_rdptrust(
                            work, targets_file, args.concurrency, db, exe
                        )
                        results.append((name, len(all_targets), code, wall, rss, cpu))
                if "sslyze" in tools and SSLYZE.exists():
                    sample = targets[: args.sslyze_sample] if args.sslyze_sample else targets
                    code, wall, rss, cpu = run_sslyze(work, sample)
                    results.append(("sslyze", len(sample), code, wall, rss, cpu))
                if "nmap" in tools and shutil.which("nmap"):
                    code, wall, rss, cpu = run_nmap(work, targets)
                    results.append(("nmap rdp-enum-encryption", len(targets), code, wall, rss, cpu))
    finally:
        for lab in labs:
            lab.send_signal(signal.SIGTERM)
        for lab in labs:
            lab.wait(timeout=30)
        keys.cleanup()
    rates: dict[str, list[float]] = {}
    for tool, n, code, wall, rss, cpu in results:
        rates.setdefault(tool, []).append(n / wall)
        print(
            json.dumps(
                {
                    "tool": tool,
                    "targets": n,
                    "exit": code,
                    "wall_s": round(wall, 2),
                    "hosts_per_s": round(n / wall, 1),
                    "peak_rss_mib": round(rss, 1),
                    "cpu_s": round(cpu, 2),
                    "cpu_ms_per_host": round(cpu / n * 1000, 2),
                    "latency_ms": args.latency_ms,
                    "lab_key": "ecdsa-p256" if args.ec else "rsa-2048",
                    "distinct_certs": args.distinct_certs,
                    "concurrency": args.concurrency if tool.startswith("rdptrust") else None,
                    "cpus": os.cpu_count(),
                }
            )
        )
    medians = {tool: statistics.median(r) for tool, r in rates.items()}
    summary: dict[str, Any] = {"median_hosts_per_s": {t: round(m, 1) for t, m in medians.items()}}
    if "rdptrust" in medians and "sslyze" in medians:
        summary["rdptrust_over_sslyze"] = round(medians["rdptrust"] / medians["sslyze"], 1)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
