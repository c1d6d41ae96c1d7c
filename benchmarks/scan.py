"""Fleet speed: rdptrust scan against sslyze and nmap on the same lab endpoints.

    .venv/bin/python benchmarks/scan.py --count 1000 --latency-ms 50
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
import subprocess
import sys
import tempfile
from pathlib import Path

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--extra-refused", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--tools", default="rdptrust,sslyze,nmap")
    parser.add_argument("--sslyze-sample", type=int, default=0, help="time sslyze on N targets")
    parser.add_argument(
        "--ec", action="store_true", help="labs serve an ECDSA certificate (less lab CPU)"
    )
    args = parser.parse_args()
    tools = args.tools.split(",")
    keys = tempfile.TemporaryDirectory()
    extra = ec_credentials(Path(keys.name)) if args.ec else []
    labs, targets = start_labs(args.count, args.latency_ms, extra)
    results = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            all_targets = targets + closed_ports(args.extra_refused)
            (work / "targets.txt").write_text("\n".join(all_targets) + "\n")
            if "rdptrust" in tools:
                rdptrust = shutil.which("rdptrust") or str(Path(sys.executable).parent / "rdptrust")
                code, wall, rss, cpu = measure(
                    [
                        rdptrust,
                        "scan",
                        "-i",
                        str(work / "targets.txt"),
                        "--db",
                        str(work / "inv.sqlite3"),
                        "--concurrency",
                        str(args.concurrency),
                        "--timeout",
                        "10",
                    ]
                )
                hosts = subprocess.run(
                    [rdptrust, "hosts", "--db", str(work / "inv.sqlite3"), "--json"],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                rows = json.loads(hosts)["hosts"]
                ok = sum(1 for h in rows if h["latest"]["ok"] and h["latest"]["certificate"])
                print(
                    f"rdptrust: {len(rows)} hosts recorded, {ok} with a certificate",
                    file=sys.stderr,
                )
                results.append(("rdptrust", len(all_targets), code, wall, rss, cpu))
            if "sslyze" in tools and SSLYZE.exists():
                sample = targets[: args.sslyze_sample] if args.sslyze_sample else targets
                (work / "sslyze.txt").write_text("\n".join(sample) + "\n")
                code, wall, rss, cpu = measure(
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
                results.append(("sslyze", len(sample), code, wall, rss, cpu))
            if "nmap" in tools and shutil.which("nmap"):
                ports = ",".join(t.rsplit(":", 1)[1] for t in targets)
                code, wall, rss, cpu = measure(
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
                results.append(("nmap rdp-enum-encryption", len(targets), code, wall, rss, cpu))
    finally:
        for lab in labs:
            lab.send_signal(signal.SIGTERM)
        for lab in labs:
            lab.wait(timeout=30)
        keys.cleanup()
    for tool, n, code, wall, rss, cpu in results:
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
                    "cpus": os.cpu_count(),
                }
            )
        )


if __name__ == "__main__":
    main()
