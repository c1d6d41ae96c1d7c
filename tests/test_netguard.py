"""The test network guard is active here and in CLI subprocesses."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest


def test_outside_names_and_addresses_fail_in_process() -> None:
    with pytest.raises(socket.gaierror, match="test network guard"):
        socket.getaddrinfo("ctldl.windowsupdate.com", 80)
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError, match="guard"):
        sock.connect(("192.0.2.1", 80))
    assert socket.getaddrinfo("127.0.0.1", 80)


def test_cli_subprocesses_are_guarded() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "import socket; socket.getaddrinfo('example.com', 80)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0
    assert "test network guard" in proc.stderr


def test_uvloop_connections_are_guarded() -> None:
    # The CLI runs on uvloop, which resolves and connects in C: the guard covers it too.
    code = (
        "import asyncio, uvloop\n"
        "async def main():\n"
        "    for host in ('192.0.2.1', 'example.com'):\n"
        "        try:\n"
        "            await asyncio.open_connection(host, 80)\n"
        "        except OSError as exc:\n"
        "            print(type(exc).__name__, exc)\n"
        "    reader, writer = await asyncio.open_connection('127.0.0.1', PORT)\n"
        "    writer.close()\n"
        "    print('loopback ok')\n"
        "uvloop.run(main())\n"
    )
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-c", code.replace("PORT", str(port))],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("ConnectionRefusedError")
    assert "test network guard" in lines[0]
    assert "test network guard" in lines[1]
    assert lines[2] == "loopback ok"
