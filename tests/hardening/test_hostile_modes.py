"""Every hostile lab mode through probe, diagnose and check, as a user runs them.

Each command runs as a subprocess (asyncio's, so the lab keeps serving in this event
loop) against all nine modes at once: every run must end within its time-out plus two
seconds with exit 3, a single ``rdptrust: error:`` line (or the plugin's one UNKNOWN
line) and no traceback. ``probe_host`` in-process must return a typed failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from pathlib import Path

import pytest

from fixtures.cli import no_pins, run_command
from fixtures.lab import LabFactory
from rdptrust.lab.rdp import ENDLESS_RATE, HostileMode
from rdptrust.lab.runner import Lab
from rdptrust.model.target import Target
from rdptrust.model.wire import SecurityProtocol
from rdptrust.net.connection import RdpConnection
from rdptrust.net.probe import probe_host
from rdptrust.protocol.tpkt import TPKT_MAX_LENGTH
from rdptrust.protocol.x224 import ConnectionRequest, NegotiationRequest

MODES = [mode.value for mode in HostileMode]
TIMEOUT = 2.0
RDPTRUST = [str(Path(sys.executable).with_name("rdptrust"))]

#: What each mode must be reported as (the ProbeFailure kind).
EXPECTED_KIND = {
    "garbage": "remote_protocol",
    "length-too-large": "remote_protocol",
    "length-too-small": "remote_protocol",
    "truncated": "connect",
    "reset": "connect",
    "slow-drip": "timeout",
    "tls-alert": "tls",
    "endless": "remote_protocol",
    "silence": "timeout",
}


def test_every_mode_has_an_expectation() -> None:
    assert set(EXPECTED_KIND) == set(MODES)


async def _labs(lab_factory: LabFactory) -> dict[str, Lab]:
    labs = await asyncio.gather(*(lab_factory(hostile=mode) for mode in MODES))
    return dict(zip(MODES, labs, strict=True))


async def _run(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str, str, float]:
    start = time.monotonic()
    code, out, err = await run_command(args, env=env, timeout=60)
    return code, out, err, time.monotonic() - start


def _env(tmp_path: Path) -> dict[str, str]:
    # Keep the user's data folder and any trust store out of it.
    env = dict(os.environ)
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    env["HOME"] = str(tmp_path)
    return env


def _no_traceback(*texts: str) -> None:
    for text in texts:
        assert "Traceback" not in text
        assert 'File "' not in text


#: Subprocesses run at once: more than the CI's two cores would measure the scheduler.
CONCURRENCY = 3


async def _run_all(
    argvs: list[list[str]], env: dict[str, str]
) -> list[tuple[int, str, str, float]]:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(args: list[str]) -> tuple[int, str, str, float]:
        async with gate:
            return await _run(args, env)

    return await asyncio.gather(*(one(args) for args in argvs))


# Python start-up and imports before the connection begins are not part of the
# time-out; they are measured under the same load and allowed for on top of S + 2 s.
async def _startup_seconds(command: str, env: dict[str, str]) -> float:
    runs = await _run_all([[*RDPTRUST, command, "--help"]] * CONCURRENCY, env)
    assert all(code == 0 for code, *_ in runs)
    return max(seconds for *_, seconds in runs)


async def test_probe_exits_3_within_the_timeout_for_every_mode(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    # Given one lab per hostile mode
    labs = await _labs(lab_factory)
    env = _env(tmp_path)
    startup = await _startup_seconds("probe", env)
    # When rdptrust probe --timeout S runs against each
    runs = await _run_all(
        [[*RDPTRUST, "probe", str(lab.target), "--timeout", str(TIMEOUT)] for lab in labs.values()],
        env,
    )
    # Then each exits 3 within S + 2 s with one error line and no traceback
    for mode, (code, out, err, seconds) in zip(labs, runs, strict=True):
        assert code == 3, (mode, out, err)
        assert seconds < TIMEOUT + 2 + startup, (mode, seconds)
        lines = err.splitlines()
        assert len(lines) == 1, (mode, err)
        assert lines[0].startswith("rdptrust: error: "), (mode, err)
        _no_traceback(out, err)


async def test_diagnose_exits_3_for_every_mode(lab_factory: LabFactory, tmp_path: Path) -> None:
    labs = await _labs(lab_factory)
    env = _env(tmp_path)
    startup = await _startup_seconds("diagnose", env)
    runs = await _run_all(
        [
            [
                *RDPTRUST,
                "diagnose",
                str(lab.target),
                "--timeout",
                str(TIMEOUT),
                "--fetch-timeout",
                "1",
                "--no-system-trust",
                "--root-list-url",
                "http://127.0.0.1:9/authrootstl.cab",
            ]
            for lab in labs.values()
        ],
        env,
    )
    for mode, (code, out, err, seconds) in zip(labs, runs, strict=True):
        assert code == 3, (mode, out, err)
        assert seconds < TIMEOUT + 2 + startup, (mode, seconds)
        assert "UNKNOWN" in out, (mode, out)
        lines = err.splitlines()
        assert len(lines) == 1, (mode, err)
        assert lines[0].startswith("rdptrust: error: "), (mode, err)
        _no_traceback(out, err)


async def test_check_is_unknown_for_every_mode(lab_factory: LabFactory, tmp_path: Path) -> None:
    labs = await _labs(lab_factory)
    env = _env(tmp_path)
    startup = await _startup_seconds("check", env)
    runs = await _run_all(
        [
            [
                *RDPTRUST,
                "check",
                str(lab.target),
                "--timeout",
                str(TIMEOUT),
                "--no-system-trust",
                "--known-hosts",
                str(no_pins(tmp_path / "known_hosts.json")),
            ]
            for lab in labs.values()
        ],
        env,
    )
    for mode, (code, out, err, seconds) in zip(labs, runs, strict=True):
        assert code == 3, (mode, out, err)
        assert seconds < TIMEOUT + 2 + startup, (mode, seconds)
        lines = out.splitlines()
        assert len(lines) == 1, (mode, out)
        assert lines[0].startswith("RDPTRUST UNKNOWN - "), (mode, out)
        _no_traceback(out, err)


async def test_probe_host_returns_a_typed_failure_for_every_mode(
    lab_factory: LabFactory,
) -> None:
    labs = await _labs(lab_factory)
    start = time.monotonic()
    results = await asyncio.gather(
        *(probe_host(lab.target, timeout=TIMEOUT) for lab in labs.values())
    )
    assert time.monotonic() - start < TIMEOUT + 2
    for mode, result in zip(labs, results, strict=True):
        assert result.error is not None, mode
        assert result.error.kind == EXPECTED_KIND[mode], (mode, result.error)
        assert result.error.message, mode
        assert result.tls is None, mode
        # Only tls-alert gets as far as a Confirm before the failure.
        assert (result.negotiation is not None) == (mode == "tls-alert"), mode


async def test_slow_drip_ends_within_the_timeout(lab_factory: LabFactory) -> None:
    # The Confirm trickles in one byte a second: 19 s for the whole PDU, far beyond S.
    lab = await lab_factory(hostile="slow-drip")
    start = time.monotonic()
    result = await probe_host(lab.target, timeout=1.5)
    elapsed = time.monotonic() - start
    assert result.error is not None
    assert result.error.kind == "timeout"
    assert 1.4 < elapsed < 2.5


async def _client_bytes_through_proxy(target: Target, deadline_s: float) -> tuple[int, float]:
    """Relay one RdpConnection through a counting proxy; return bytes relayed, seconds."""
    relayed = 0
    done = asyncio.Event()

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        nonlocal relayed
        server_r, server_w = await asyncio.open_connection(target.host, target.port)

        async def upstream() -> None:
            while data := await client_r.read(4096):
                server_w.write(data)
                await server_w.drain()

        async def downstream() -> None:
            nonlocal relayed
            while data := await server_r.read(4096):
                client_w.write(data)
                await client_w.drain()
                relayed += len(data)

        tasks = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, OSError):
                    await task
            for writer in (client_w, server_w):
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
            done.set()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        start = time.monotonic()
        deadline = start + deadline_s
        conn = await RdpConnection.open(Target("127.0.0.1", port), deadline)
        try:
            with contextlib.suppress(Exception):
                await conn.negotiate(
                    ConnectionRequest(negotiation=NegotiationRequest(SecurityProtocol.SSL)),
                    deadline,
                )
        finally:
            await conn.close()
        elapsed = time.monotonic() - start
        async with asyncio.timeout(5):
            await done.wait()
    finally:
        server.close()
        await server.wait_closed()
    return relayed, elapsed


async def test_endless_data_is_read_only_up_to_one_tpkt(lab_factory: LabFactory) -> None:
    # Given an endpoint that streams 256 KiB/s forever and a generous 10 s deadline
    lab = await lab_factory(hostile="endless")
    # When the client negotiates through a proxy that counts what reaches it
    relayed, elapsed = await _client_bytes_through_proxy(lab.target, 10.0)
    # Then the client gives up after one TPKT's worth, long before the deadline, so the
    # server delivered a bounded amount (what is in flight when the client hangs up)
    assert elapsed < 2.0
    assert relayed < TPKT_MAX_LENGTH + ENDLESS_RATE


PEAK_RSS = """
import resource, sys
from rdptrust.cli.main import main
try:
    main(sys.argv[1:])
finally:
    with open({path!r}, "w") as out:
        out.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
"""


async def _peak_rss_kib(tmp_path: Path, name: str, target: Target, env: dict[str, str]) -> int:
    path = tmp_path / f"{name}.rss"
    _, out, err, _ = await _run(
        [
            sys.executable,
            "-c",
            PEAK_RSS.format(path=str(path)),
            "probe",
            str(target),
            "--timeout",
            "4",
        ],
        env,
    )
    _no_traceback(out, err)
    return int(path.read_text())


async def test_endless_probe_peak_memory_stays_near_a_normal_probe(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    # Given a well-behaved lab and one that streams endless data
    normal = await lab_factory()
    endless = await lab_factory(hostile="endless")
    env = _env(tmp_path)
    # When rdptrust probe runs against each, its peak RSS is recorded
    baseline, hostile = await asyncio.gather(
        _peak_rss_kib(tmp_path, "normal", normal.target, env),
        _peak_rss_kib(tmp_path, "endless", endless.target, env),
    )
    # Then the endless stream costs no more than a few MiB over a full normal probe
    assert hostile < baseline + 8 * 1024, (baseline, hostile)


@pytest.mark.parametrize("mode", ["garbage", "reset", "silence"])
async def test_hostile_endpoint_does_not_leak_descriptors(
    lab_factory: LabFactory, mode: str
) -> None:
    lab = await lab_factory(hostile=mode)
    await probe_host(lab.target, timeout=0.5)  # warm-up: lazy imports and caches
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        result = await probe_host(lab.target, timeout=0.5)
        assert result.error is not None
    await asyncio.sleep(0.1)
    assert len(os.listdir("/proc/self/fd")) <= before


async def _http_get(port: int, path: str) -> tuple[int, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        data = await reader.read()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode("utf-8", "replace")


async def test_exporter_scrapes_every_mode_and_stays_up(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    # Given the exporter as a user runs it, and one lab per hostile mode
    labs = await _labs(lab_factory)
    process = await asyncio.create_subprocess_exec(
        *RDPTRUST,
        "exporter",
        "--listen",
        "127.0.0.1:0",
        env=_env(tmp_path),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stderr is not None
        async with asyncio.timeout(20):  # the address goes to stderr, stdout stays clean
            line = (await process.stderr.readline()).decode()
        port = int(line.split("http://127.0.0.1:")[1].split()[0])
        # When Prometheus scrapes each hostile host at once, with a 2 s time-out
        start = time.monotonic()
        answers = await asyncio.gather(
            *(
                _http_get(port, f"/probe?target={lab.target}&timeout={TIMEOUT}")
                for lab in labs.values()
            )
        )
        elapsed = time.monotonic() - start
        # Then every scrape answers, within the time-out, that the probe failed
        assert elapsed < TIMEOUT + 2
        for mode, (status, body) in zip(labs, answers, strict=True):
            assert status == 200, (mode, body[:300])
            assert "rdptrust_probe_success 0" in body, (mode, body[:500])
        # and the exporter still serves
        status, body = await _http_get(port, "/metrics")
        assert status == 200
        assert process.returncode is None
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        async with asyncio.timeout(20):
            out, err = await process.communicate()
    _no_traceback(out.decode(), err.decode())
