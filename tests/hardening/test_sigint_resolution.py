"""A scan stopped with Ctrl-C while it resolves names that never answer stops at once.

Before: a SIGINT'd scan of 10,000 host names, under uvloop, was still running 60 s
after the signal (uvloop resolved every queued name) and printed "Future exception was
never retrieved" for each; under asyncio it took 6.3 s (the pool waited for the
lookups in flight). Now: exit 130 in under a second, nothing else on standard error.

The names are resolved against a DNS black hole: in a network namespace of its own
(``unshare``, Linux) the process sees ``nameserver 127.0.0.1`` and a socket there that
never answers. No packet leaves the namespace.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fixtures.cli import RDPTRUST
from rdptrust.net.resolve import AddrInfo, Resolver

#: Run inside the namespace: loopback up, resolv.conf on the black hole, a UDP and a
#: TCP socket on 127.0.0.1:53 that never answer, then exec the command given.
BLACK_HOLE = """
import os, socket, subprocess, sys
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
conf = sys.argv[1]
with open(conf, "w") as f:
    f.write("nameserver 127.0.0.1\\noptions timeout:5 attempts:2\\n")
subprocess.run(["mount", "--bind", conf, "/etc/resolv.conf"], check=True)
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("127.0.0.1", 53))
tcp = socket.socket()
tcp.bind(("127.0.0.1", 53))
tcp.listen(1024)
os.set_inheritable(udp.fileno(), True)
os.set_inheritable(tcp.fileno(), True)
os.execvp(sys.argv[2], sys.argv[2:])
"""


def _namespaces_usable() -> bool:
    if sys.platform != "linux" or not shutil.which("unshare") or not shutil.which("ip"):
        return False
    probe = subprocess.run(["unshare", "-rmn", "true"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(not _namespaces_usable(), reason="needs Linux user and network namespaces")
@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_sigint_during_resolution_of_10000_names(tmp_path: Path, loop: str) -> None:
    # Given a scan of 10,000 names, all resolved against a server that never answers
    names = tmp_path / "names.txt"
    names.write_text("".join(f"h{i:05d}.blackhole.test\n" for i in range(10_000)))
    argv = [
        "unshare",
        "-rmn",
        sys.executable,
        "-c",
        BLACK_HOLE,
        str(tmp_path / "resolv.conf"),
        *RDPTRUST,
        "scan",
        "-i",
        str(names),
        "--db",
        str(tmp_path / "inventory.sqlite3"),
        "--timeout",
        "2",
    ]
    env = {"RDPTRUST_EVENT_LOOP": loop, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        # When it has resolved (and timed out on) names for a while, then gets SIGINT
        time.sleep(12)
        assert proc.poll() is None, proc.communicate()
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        stopped_s = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    text = err.decode()
    # Then it stops within 2 s, with 130 and only its own summary line
    assert proc.returncode == 130, text
    assert stopped_s < 2, (stopped_s, text[-2000:])
    assert "Future exception was never retrieved" not in text
    assert "Traceback" not in text
    assert "interrupted" in text
    assert "--resume" in text


async def test_a_cancelled_lookup_is_abandoned_and_reports_nothing() -> None:
    # Given a resolver whose lookups block until released
    release = threading.Event()
    started: list[str] = []

    def blocking(host: str, port: int) -> list[AddrInfo]:
        started.append(host)
        release.wait(10)
        raise OSError("no answer")

    resolver = Resolver(threads=2, lookup=blocking)
    loop = asyncio.get_running_loop()
    unretrieved: list[object] = []
    loop.set_exception_handler(lambda _loop, context: unretrieved.append(context))
    tasks = [asyncio.create_task(resolver.resolve(f"n{i}.test", 3389)) for i in range(50)]
    await asyncio.sleep(0.2)
    # When every caller gives up
    start = time.monotonic()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert time.monotonic() - start < 0.5
    release.set()
    await asyncio.sleep(0.3)
    # Then only the two lookups in flight ever ran, and no result went unretrieved
    assert len(started) == 2
    assert unretrieved == []


async def test_a_lookup_answers_and_its_error_reaches_the_caller() -> None:
    def lookup(host: str, port: int) -> list[AddrInfo]:
        if host == "bad.test":
            raise OSError(-2, "Name or service not known")
        return [(2, 1, 6, "", ("127.0.0.1", port))]

    resolver = Resolver(threads=4, lookup=lookup)
    assert (await resolver.resolve("ok.test", 3389))[0][4] == ("127.0.0.1", 3389)
    with pytest.raises(OSError, match="not known"):
        await resolver.resolve("bad.test", 3389)
