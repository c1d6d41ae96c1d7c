"""RDP certificate scanners over a real 50 ms round trip: rdptrust, sslyze, nmap, a ceiling.

    sudo .venv/bin/python benchmarks/netem.py --sizes 1000,5000 --rounds 3

Needs root (Linux): it creates a network namespace ``rdpt-bench-lab`` joined to this one by
a veth pair, 198.18.0.1 here and 198.18.0.2 there (RFC 2544's benchmarking range: neither
a private network nor the Internet), with ``tc netem delay 25ms`` on both ends, so every
packet pays 25 ms each way and every exchange (SYN, X.224, each TLS flight) a 50 ms round
trip. ``rdptrust lab`` processes (256 endpoints each, every endpoint with a self-signed
RSA 2048 certificate of its own) listen on 198.18.0.2 inside the namespace. Nothing else is
reachable from the tools through the veth; namespace, veth and labs are removed at the
end, also on Ctrl-C.

Tools, each as a user runs it, in a process of its own under a wrapper that takes the
RUSAGE_CHILDREN CPU and peak RSS of the tool's whole process tree (the tree's RSS sampled
every 200 ms, so ``--workers 2`` counts its three processes):

- ``rdptrust scan --workers 1`` and ``--workers 2``: one connection per host;
- ``rdptrust scan --enumerate``: per security protocol, TLS version, Standard RDP
  Security method and the NTLM CHALLENGE;
- the minimal client (benchmarks/minimal_client.py): connect, X.224, TLS, chain, close;
- sslyze through its API (benchmarks/sslyze_run.py, sslyze's own venv): certificate info
  only (the pair of ``scan``) and its SSL 2.0 to TLS 1.3 cipher-suite scans (its way of
  telling the protocol versions, the pair of ``scan --enumerate``);
- nmap ``rdp-enum-encryption`` (``-T4``, ``--max-parallelism`` raised).

``--sweep`` first times each tool once at each of several concurrency settings over the
smallest size and keeps the fastest. Then, per size, every tool runs ``--rounds`` times,
the order rotating each round. A counting pass over 20 endpoints (with a packet socket
on the veth) measures the TCP connections (SYNs) and TLS handshakes (ClientHellos) each
tool makes per host. The minimal client's and rdptrust's leaf certificates are checked
against each other and against the labs' own list, endpoint by endpoint.
Prints JSON lines as it goes and the Markdown tables of benchmarks/README.md at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bytecode import use_compiled_bytecode  # benchmarks/bytecode.py

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
SSLYZE_PYTHON = Path("/work/main/.venv-sslyze/bin/python")
NAMESPACE = "rdpt-bench-lab"
VETH_HOST, VETH_LAB = "rdptb0", "rdptb1"
HOST_ADDRESS, LAB_ADDRESS = "198.18.0.1", "198.18.0.2"
ONE_WAY_DELAY = "25ms"
#: netem's default queue of 1,000 packets drops packets once many connections are in flight.
NETEM_LIMIT = "100000"
PER_LAB = 256
FIRST_PORT = 20000
#: The lab namespace's ephemeral ports, above every RDP port (at most 25,000 endpoints).
EPHEMERAL_PORTS = (45000, 65000)
COUNT_SAMPLE = 20
#: Each run's directory (targets, inventory, outputs), removed at the end.
WORK_DIRS: list[Path] = []

MEASURE = r"""
import os, resource, subprocess, sys, threading, time

def tree_rss(pid):
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f'/proc/{p}/status') as f:
                for line in f:
                    if line.startswith('VmRSS:'):
                        total += int(line.split()[1])
            for task in os.listdir(f'/proc/{p}/task'):
                with open(f'/proc/{p}/task/{task}/children') as f:
                    todo.extend(int(c) for c in f.read().split())
        except (OSError, ValueError):
            pass
    return total

start = time.monotonic()
said = open(sys.argv[1], 'w')  # what the tool prints (rdptrust's summary line among it)
proc = subprocess.Popen(sys.argv[2:], stdout=said, stderr=said)
peak = [0]
ended = threading.Event()

def sample():
    # the tree's RSS every 200 ms, beside the wait (the wall time is the wait's own)
    while not ended.wait(0.2):
        peak[0] = max(peak[0], tree_rss(proc.pid))

sampler = threading.Thread(target=sample, daemon=True)
sampler.start()
peak[0] = tree_rss(proc.pid)
proc.wait()
wall = time.monotonic() - start
ended.set()
sampler.join()
peak = peak[0]
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(proc.returncode, wall, max(peak, usage.ru_maxrss), usage.ru_utime + usage.ru_stime)
"""


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check)


def in_lab(*argv: str) -> list[str]:
    return ["ip", "netns", "exec", NAMESPACE, *argv]


class LabNetwork:
    """The namespace, the link with 25 ms each way, and the lab processes."""

    def __init__(self) -> None:
        self.labs: list[subprocess.Popen[str]] = []
        self.delay_line: subprocess.Popen[str] | None = None
        self.link = ""
        self.targets: list[str] = []
        self.truth: dict[str, str] = {}

    def __enter__(self) -> LabNetwork:
        self._remove()
        try:
            sh("ip", "netns", "add", NAMESPACE)
            if not self._veth_netem():
                self._tun_delay_line()
            sh("ip", "-n", NAMESPACE, "link", "set", "lo", "up")
            # The labs' PKI responders take free ports: from above the RDP ports.
            ports = f"{EPHEMERAL_PORTS[0]} {EPHEMERAL_PORTS[1]}"
            sh(*in_lab("sysctl", "-qw", f"net.ipv4.ip_local_port_range={ports}"))
        except BaseException:
            self.__exit__()
            raise
        return self

    def _veth_netem(self) -> bool:
        """A veth pair with netem on both ends; False when this kernel has no netem."""
        sh("ip", "link", "add", VETH_HOST, "type", "veth", "peer", "name", VETH_LAB)
        netem = ["root", "netem", "delay", ONE_WAY_DELAY, "limit", NETEM_LIMIT]
        if sh("tc", "qdisc", "add", "dev", VETH_HOST, *netem, check=False).returncode != 0:
            sh("ip", "link", "del", VETH_HOST)
            return False
        sh("ip", "link", "set", VETH_LAB, "netns", NAMESPACE)
        sh(*in_lab("tc", "qdisc", "add", "dev", VETH_LAB, *netem))
        sh("ip", "addr", "add", f"{HOST_ADDRESS}/24", "dev", VETH_HOST)
        sh("ip", "-n", NAMESPACE, "addr", "add", f"{LAB_ADDRESS}/24", "dev", VETH_LAB)
        sh("ip", "link", "set", VETH_HOST, "up")
        sh("ip", "-n", NAMESPACE, "link", "set", VETH_LAB, "up")
        self.link = f"veth pair, tc netem delay {ONE_WAY_DELAY} limit {NETEM_LIMIT} on both ends"
        return True

    def _tun_delay_line(self) -> None:
        """Two TUN devices joined by benchmarks/delayline.py (25 ms each way)."""
        argv = [sys.executable, str(HERE / "delayline.py"), VETH_HOST, VETH_LAB]
        argv += ["--netns", NAMESPACE, "--delay-ms", ONE_WAY_DELAY.removesuffix("ms")]
        self.delay_line = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        assert self.delay_line.stdout is not None
        if self.delay_line.stdout.readline().strip() != "ready":
            raise SystemExit("the delay line did not start")
        sh("ip", "addr", "add", HOST_ADDRESS, "peer", LAB_ADDRESS, "dev", VETH_HOST)
        sh("ip", "link", "set", VETH_HOST, "txqueuelen", "10000", "up")
        lab = ["ip", "-n", NAMESPACE]
        sh(*lab, "addr", "add", LAB_ADDRESS, "peer", HOST_ADDRESS, "dev", VETH_LAB)
        sh(*lab, "link", "set", VETH_LAB, "txqueuelen", "10000", "up")
        self.link = (
            f"TUN pair joined by benchmarks/delayline.py, {ONE_WAY_DELAY} each way"
            " (this kernel has no sch_netem)"
        )

    def delay_line_cpu(self) -> float:
        """CPU seconds the delay line has used so far (0 with netem)."""
        if self.delay_line is None:
            return 0.0
        fields = Path(f"/proc/{self.delay_line.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def __exit__(self, *exc: object) -> None:
        for proc in [*self.labs, self.delay_line]:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in [*self.labs, self.delay_line]:
            if proc is None:
                continue
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._remove()

    @staticmethod
    def _remove() -> None:
        sh("ip", "netns", "del", NAMESPACE, check=False)
        sh("ip", "link", "del", VETH_HOST, check=False)

    def start_labs(self, count: int) -> None:
        """``count`` endpoints on consecutive ports from FIRST_PORT, PER_LAB per process."""
        if FIRST_PORT + count > EPHEMERAL_PORTS[0]:
            raise SystemExit(f"at most {EPHEMERAL_PORTS[0] - FIRST_PORT} endpoints")
        started = []
        for first in range(FIRST_PORT, FIRST_PORT + count, PER_LAB):
            n = min(PER_LAB, FIRST_PORT + count - first)
            argv = [sys.executable, "-m", "rdptrust", "lab", "--host", LAB_ADDRESS]
            argv += ["--port", str(first), "--count", str(n), "--distinct-certs"]
            started.append(subprocess.Popen(in_lab(*argv), stdout=subprocess.PIPE, text=True))
        self.labs.extend(started)
        per_lab = []
        for proc in started:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line:
                raise SystemExit("a lab did not start")
            info = json.loads(line)
            per_lab.append(info["rdp"])
            self.truth.update(zip(info["rdp"], info["endpoint_sha256"], strict=True))
        # Interleaved, one endpoint of each lab process after the other: the hosts a tool
        # has in flight are spread over every lab process (each serves on one core), as a
        # fleet's hosts are separate machines, and any prefix of the list is too.
        for i in range(PER_LAB):
            self.targets.extend(rdp[i] for rdp in per_lab if i < len(rdp))


# --- the tools ------------------------------------------------------------------------


@dataclass
class Tool:
    name: str
    #: argv for (targets file, work directory, concurrency setting)
    argv: Callable[[Path, Path, Any], list[str]]
    #: the concurrency settings --sweep tries, and the default
    sweep: list[Any]
    setting: Any
    describe: Callable[[Any], str]
    certs: Callable[[Path], dict[str, str]] | None = None
    #: timed on at most this many endpoints (a tool that would take too long otherwise)
    max_targets: int | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)


def rdptrust_argv(extra: list[str]) -> Callable[[Path, Path, Any], list[str]]:
    def argv(targets: Path, work: Path, concurrency: Any) -> list[str]:
        db = work / "inventory.sqlite3"
        scan = [sys.executable, "-m", "rdptrust", "scan", "-i", str(targets), "--db", str(db)]
        return [*scan, "--concurrency", str(concurrency), *extra]

    return argv


def rdptrust_certs(work: Path) -> dict[str, str]:
    """Each target's leaf SHA-256 from the inventory the scan wrote."""
    hosts = [sys.executable, "-m", "rdptrust", "hosts", "--db", str(work / "inventory.sqlite3")]
    out = subprocess.run([*hosts, "--json"], capture_output=True, text=True, check=True).stdout
    result = {}
    for host in json.loads(out)["hosts"]:
        latest = host["latest"]
        cert = latest.get("certificate")
        result[host["target"]] = cert["sha256"] if latest["ok"] and cert else "error"
    return result


def json_certs(name: str) -> Callable[[Path], dict[str, str]]:
    def read(work: Path) -> dict[str, str]:
        data: dict[str, Any] = json.loads((work / name).read_text())
        return {k: v if isinstance(v, str) else ",".join(v) for k, v in data.items()}

    return read


def minimal_argv(targets: Path, work: Path, concurrency: Any) -> list[str]:
    script = str(HERE / "minimal_client.py")
    return [
        sys.executable,
        script,
        "-i",
        str(targets),
        "--concurrency",
        str(concurrency),
        "--out",
        str(work / "minimal.json"),
    ]


def sslyze_argv(mode: str) -> Callable[[Path, Path, Any], list[str]]:
    def argv(targets: Path, work: Path, setting: Any) -> list[str]:
        servers, per_server = setting
        return [
            str(SSLYZE_PYTHON),
            str(HERE / "sslyze_run.py"),
            "-i",
            str(targets),
            "--mode",
            mode,
            "--servers",
            str(servers),
            "--per-server",
            str(per_server),
            "--out",
            str(work / "sslyze.json"),
        ]

    return argv


def nmap_argv(script: str) -> Callable[[Path, Path, Any], list[str]]:
    def argv(targets: Path, work: Path, parallelism: Any) -> list[str]:
        ports = ",".join(t.rsplit(":", 1)[1] for t in targets.read_text().split())
        return [
            "nmap",
            "-Pn",
            "-n",
            "-T4",
            "--max-parallelism",
            str(parallelism),
            "-p",
            ports,
            "--script",
            script,
            "-oN",
            str(work / "nmap.txt"),
            LAB_ADDRESS,
        ]

    return argv


def tools(args: argparse.Namespace) -> dict[str, Tool]:
    found = {
        "rdptrust scan": Tool(
            "rdptrust scan",
            rdptrust_argv(["--workers", "1"]),
            [200, 400, 800],
            args.rdptrust_concurrency,
            lambda c: f"`--concurrency {c} --workers 1`",
            rdptrust_certs,
        ),
        "rdptrust scan --workers 2": Tool(
            "rdptrust scan --workers 2",
            rdptrust_argv(["--workers", "2"]),
            [400, 800],
            args.rdptrust_concurrency,
            lambda c: f"`--concurrency {c} --workers 2`",
            rdptrust_certs,
        ),
        "rdptrust scan --enumerate": Tool(
            "rdptrust scan --enumerate",
            rdptrust_argv(["--workers", "1", "--enumerate"]),
            [100, 200],
            args.enumerate_concurrency,
            lambda c: f"`--enumerate --concurrency {c} --workers 1`",
            rdptrust_certs,
        ),
        "minimal client": Tool(
            "minimal client",
            minimal_argv,
            [200, 400],
            args.minimal_concurrency,
            lambda c: f"`--concurrency {c}`",
            json_certs("minimal.json"),
        ),
        "sslyze certinfo": Tool(
            "sslyze certinfo",
            sslyze_argv("certinfo"),
            [(100, 1), (200, 1), (400, 1)],
            tuple(args.sslyze_certinfo),
            lambda s: f"`concurrent_server_scans_limit={s[0]}`, `per_server…={s[1]}`",
            json_certs("sslyze.json"),
        ),
        "sslyze versions": Tool(
            "sslyze versions",
            sslyze_argv("versions"),
            [(50, 5), (50, 10)],
            tuple(args.sslyze_versions),
            lambda s: f"`concurrent_server_scans_limit={s[0]}`, `per_server…={s[1]}`",
            json_certs("sslyze.json"),
            max_targets=args.sslyze_versions_targets,
        ),
        "nmap rdp-enum-encryption": Tool(
            "nmap rdp-enum-encryption",
            nmap_argv("+rdp-enum-encryption"),
            [1000, 2000],
            args.nmap_parallelism,
            lambda p: f"`-T4 --max-parallelism {p}`",
        ),
        "nmap ssl-cert": Tool(
            "nmap ssl-cert",
            nmap_argv("+ssl-cert"),
            [1000],
            args.nmap_parallelism,
            lambda p: f"`-T4 --max-parallelism {p}`",
        ),
    }
    if not SSLYZE_PYTHON.exists():
        print(f"no {SSLYZE_PYTHON}: sslyze left out", file=sys.stderr)
        found = {k: v for k, v in found.items() if not k.startswith("sslyze")}
    return found


# --- running and counting -------------------------------------------------------------


def run_tool(
    net: LabNetwork, tool: Tool, targets: list[str], setting: Any
) -> tuple[dict[str, Any], Path]:
    work = Path(tempfile.mkdtemp(prefix="rdpt-bench-"))
    WORK_DIRS.append(work)
    targets_file = work / "targets.txt"
    targets_file.write_text("\n".join(targets) + "\n")
    argv = tool.argv(targets_file, work, setting)
    errors = work / "output.txt"
    line0 = net.delay_line_cpu()
    proc = subprocess.run(
        [sys.executable, "-c", MEASURE, str(errors), *argv],
        capture_output=True,
        text=True,
        check=True,
    )
    code, wall, rss, cpu = proc.stdout.split()
    n = len(targets)
    run = {
        "tool": tool.name,
        "setting": setting,
        "targets": n,
        "exit": int(code),
        "wall_s": round(float(wall), 3),
        "hosts_per_s": round(n / float(wall), 1),
        "cpu_ms_per_host": round(float(cpu) / n * 1000, 3),
        "peak_rss_mib": round(int(rss) / 1024, 1),
        "delay_line_cpu_ms_per_host": round((net.delay_line_cpu() - line0) / n * 1000, 3),
        "load_average": round(os.getloadavg()[0], 2),
    }
    said = errors.read_text() if errors.exists() else ""
    paced = re.search(r"paced to (\d+) hosts at once", said)
    if paced:  # rdptrust scan kept fewer in flight than asked (rdptrust.engine.pace)
        run["paced_to"] = int(paced[1])
    if int(code) != 0:
        run["output"] = said[-500:]
    return run, work


class PacketCounter:
    """SYNs and TLS ClientHellos sent towards the labs, seen on the host end of the veth."""

    def __init__(self) -> None:
        self.syns = 0
        self.hellos = 0
        self._stop = threading.Event()
        self._lab = socket.inet_aton(LAB_ADDRESS)
        # SOCK_DGRAM: the IP packet without a link header, on a veth as on a TUN device
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0003))
        self._sock.bind((VETH_HOST, 0))
        self._sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PacketCounter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.2)
        self._stop.set()
        self._thread.join()
        self._sock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                ip, address = self._sock.recvfrom(65535)
            except TimeoutError:
                continue
            if address[1] != 0x0800 or ip[9] != 6 or ip[16:20] != self._lab:
                continue
            tcp = ip[(ip[0] & 0x0F) * 4 :]
            flags = tcp[13]
            if flags & 0x12 == 0x02:
                self.syns += 1
            payload = tcp[(tcp[12] >> 4) * 4 :]
            if payload[:2] == b"\x16\x03" and len(payload) > 5 and payload[5] == 1:
                self.hellos += 1


def count_per_host(net: LabNetwork, tool: Tool, targets: list[str]) -> dict[str, float]:
    with PacketCounter() as counter:
        _, work = run_tool(net, tool, targets, tool.setting)
    n = len(targets)
    counts = {"connections": counter.syns / n, "tls_handshakes": counter.hellos / n}
    return counts | nmap_answers(work)


def nmap_answers(work: Path) -> dict[str, float]:
    """Ports nmap's output shows a security-layer list or a certificate for."""
    path = work / "nmap.txt"
    if not path.exists():
        return {}
    text = path.read_text()
    return {
        "security_layer_lists": text.count("Security layer"),
        "nmap_certificates": text.count("SHA-1:"),
    }


def connect_rtt_ms(target: str, tries: int = 5) -> float:
    """The median time of a TCP connect to *target*: one round trip."""
    host, port = target.rsplit(":", 1)
    times = []
    for _ in range(tries):
        start = time.perf_counter()
        with socket.create_connection((host, int(port)), timeout=5):
            times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 1)


def check_certificates(
    name: str, got: dict[str, str], truth: dict[str, str], targets: list[str]
) -> int:
    """How many of *targets* the tool read the lab's own certificate from."""
    wrong = [t for t in targets if got.get(t) != truth[t]]
    if wrong:
        print(
            f"{name}: {len(wrong)} of {len(targets)} endpoints without the lab's certificate,"
            f" e.g. {wrong[0]}: {got.get(wrong[0])}",
            file=sys.stderr,
        )
    return len(targets) - len(wrong)


def name_reads_certs(tool: Tool) -> bool:
    """Whether the tool's output names each endpoint's leaf certificate."""
    return tool.name != "sslyze versions"


def rotate(items: list[str], by: int) -> list[str]:
    by %= len(items)
    return items[by:] + items[:by]


# --- the tables -----------------------------------------------------------------------


def median_row(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def render(
    date: str,
    command: str,
    found: dict[str, Tool],
    counts: dict[str, dict[str, float]],
    sizes: list[int],
) -> str:
    lines = [
        f"{date}, `{command}`",
        "",
        "| tool | settings | connections / TLS handshakes per host | targets | rounds"
        " | hosts/s (median, range) | CPU per host (median) | peak RSS (median) | certificates |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for size in sizes:
        for tool in found.values():
            runs = [r for r in tool.runs if r.get("block") == size]
            if not runs:
                continue
            c = counts.get(tool.name)
            per_host = f"{c['connections']:g} / {c['tls_handshakes']:g}" if c else "?"
            rates = [r["hosts_per_s"] for r in runs]
            certs = [r.get("certificates") for r in runs]
            n = runs[0]["targets"]
            layers = [r.get("security_layer_lists") for r in runs]
            if any(x is not None for x in certs):
                cert_text = f"{min(x for x in certs if x is not None):,} of {n:,}"
            elif any(x is not None for x in layers):
                cert_text = f"none; security layers of {min(x or 0 for x in layers):,}"
            else:
                cert_text = "-"
            lines.append(
                f"| {tool.name} | {tool.describe(tool.setting)} | {per_host} | {n:,}"
                f" | {len(runs)} | {statistics.median(rates):,.1f} ({min(rates):,.1f}\u2013"
                f"{max(rates):,.1f}) | {median_row(runs, 'cpu_ms_per_host'):.2f} ms"
                f" | {median_row(runs, 'peak_rss_mib'):.0f} MiB | {cert_text} |"
            )
    return "\n".join(lines)


def render_growth(tool: Tool) -> str:
    """CPU per host by fleet size, and per added host between sizes (the slope)."""
    lines = [
        "| targets | runs | hosts/s (median) | CPU, whole run (median) | CPU per host"
        " | CPU per added host | peak RSS (median) |",
        "|---|---|---|---|---|---|---|",
    ]
    previous: tuple[int, float] | None = None
    for size in sorted({r["targets"] for r in tool.runs if r["phase"] != "sweep"}):
        runs = [r for r in tool.runs if r["targets"] == size and r["phase"] != "sweep"]
        cpu_s = statistics.median(r["cpu_ms_per_host"] * size / 1000 for r in runs)
        slope = f"{(cpu_s - previous[1]) / (size - previous[0]) * 1000:.2f} ms" if previous else "-"
        lines.append(
            f"| {size:,} | {len(runs)} | {median_row(runs, 'hosts_per_s'):,.1f}"
            f" | {cpu_s:.1f} s | {cpu_s / size * 1000:.2f} ms | {slope}"
            f" | {median_row(runs, 'peak_rss_mib'):.0f} MiB |"
        )
        previous = (size, cpu_s)
    return "\n".join(lines)


# --- main -----------------------------------------------------------------------------


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def measure_all(args: argparse.Namespace, net: LabNetwork) -> None:
    found = tools(args)
    wanted = args.tools.split(",") if args.tools else list(found)
    found = {k: v for k, v in found.items() if k in wanted}
    slow = set(args.slow.split(","))
    targets = net.targets

    # Untimed: every endpoint serves one handshake before any tool is timed.
    run_tool(net, found.get("minimal client") or tools(args)["minimal client"], targets, 200)

    counts: dict[str, dict[str, float]] = {}
    for tool in found.values():
        counts[tool.name] = count_per_host(net, tool, targets[:COUNT_SAMPLE])
        emit({"phase": "count", "tool": tool.name, **counts[tool.name]})
    found.pop("nmap ssl-cert", None)  # the count shows it: no handshake an RDP host answers

    if args.sweep:
        size = min(args.sizes)
        for tool in found.values():
            best = None
            for setting in tool.sweep:
                here_targets = targets[: min(size, tool.max_targets or size)]
                run, work = run_tool(net, tool, here_targets, setting)
                run["phase"] = "sweep"
                # the rate that counts is of hosts whose certificate was read: more in
                # flight than the cores can serve turns hosts into time-outs, faster
                rate = run["hosts_per_s"]
                if tool.certs is not None and run["exit"] == 0 and name_reads_certs(tool):
                    ok = check_certificates(tool.name, tool.certs(work), net.truth, here_targets)
                    run["certificates"] = ok
                    rate = rate * ok / len(here_targets)
                tool.runs.append(run)
                emit(run)
                if run["exit"] == 0 and (best is None or rate > best[0]):
                    best = (rate, setting)
            if best is not None:
                tool.setting = best[1]

    for size in args.sizes:
        here = [n for n, t in found.items() if size <= args.slow_max or n not in slow]
        for round_ in range(args.rounds):
            for name in rotate(here, round_):
                tool = found[name]
                here_targets = targets[: min(size, tool.max_targets or size)]
                run, work = run_tool(net, tool, here_targets, tool.setting)
                run["phase"] = "rounds"
                run["round"] = round_
                run["block"] = size
                if tool.certs is not None and run["exit"] == 0:
                    got = tool.certs(work)
                    if name_reads_certs(tool):
                        run["certificates"] = check_certificates(name, got, net.truth, here_targets)
                    tool.__dict__.setdefault("last_certs", {})[size] = got
                run |= nmap_answers(work)
                tool.runs.append(run)
                emit(run)
        # the sanity check: the ceiling and rdptrust read the same certificate per endpoint
        a = found.get("minimal client")
        b = found.get("rdptrust scan")
        if a and b and size in a.__dict__.get("last_certs", {}):
            mine, theirs = a.__dict__["last_certs"][size], b.__dict__["last_certs"][size]
            same = sum(mine.get(t) == theirs.get(t) != "error" for t in targets[:size])
            emit({"phase": "check", "targets": size, "same_certificate": same})
            if same != size:
                print(f"{size - same} endpoints differ", file=sys.stderr)

    growth = found.get("rdptrust scan")
    for size in args.growth:
        if growth is None or size > len(targets):
            continue
        for round_ in range(args.growth_rounds):
            run, _ = run_tool(net, growth, targets[:size], growth.setting)
            run["phase"] = "growth"
            run["round"] = round_
            growth.runs.append(run)
            emit(run)

    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    command = "benchmarks/netem.py " + shlex.join(sys.argv[1:])
    print(render(date, command, found, counts, args.sizes))
    if growth is not None:
        print()
        print(render_growth(growth))


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main() -> None:
    use_compiled_bytecode()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=ints, default=[1000], help="endpoints per table block")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sweep", action="store_true", help="pick each tool's best setting")
    parser.add_argument("--tools", default="", help="comma-separated tool names (default all)")
    parser.add_argument(
        "--slow",
        default="rdptrust scan --enumerate,sslyze versions,nmap rdp-enum-encryption",
        help="tools only timed at sizes up to --slow-max",
    )
    parser.add_argument("--slow-max", type=int, default=1000)
    parser.add_argument("--growth", type=ints, default=[], help="extra sizes, rdptrust scan")
    parser.add_argument("--growth-rounds", type=int, default=1)
    parser.add_argument("--rdptrust-concurrency", type=int, default=200)
    parser.add_argument("--enumerate-concurrency", type=int, default=100)
    parser.add_argument("--minimal-concurrency", type=int, default=200)
    parser.add_argument("--sslyze-certinfo", type=ints, default=[100, 1])
    parser.add_argument("--sslyze-versions", type=ints, default=[50, 5])
    parser.add_argument(
        "--sslyze-versions-targets",
        type=int,
        default=50,
        help="sslyze's version scans on at most this many endpoints (over 500 connections each)",
    )
    parser.add_argument("--nmap-parallelism", type=int, default=1000)
    args = parser.parse_args()
    if not sys.platform.startswith("linux"):
        raise SystemExit("benchmarks/netem.py runs on Linux (network namespaces and netem)")
    if os.geteuid() != 0:
        raise SystemExit("benchmarks/netem.py needs root: it creates a network namespace")
    # SIGTERM ends the run like Ctrl-C: the finally blocks remove namespace and labs.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(lambda: [shutil.rmtree(d, ignore_errors=True) for d in WORK_DIRS])
        net = cleanup.enter_context(LabNetwork())
        net.start_labs(max([*args.sizes, *args.growth]))
        rtt = connect_rtt_ms(net.targets[0])
        emit(
            {"phase": "labs", "endpoints": len(net.targets), "processes": len(net.labs)}
            | {"link": net.link, "connect_rtt_ms": rtt}
        )
        measure_all(args, net)


if __name__ == "__main__":
    main()
