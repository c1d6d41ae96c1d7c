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
