"""Method 1 with FreeRDP: the store `rdptrust trust --freerdp 2` writes lets xfreerdp connect
without a prompt, and xfreerdp refuses when the entry does not match (so the store is used)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from fixtures.peers import Display, XrdpServer, run_xfreerdp

pytestmark = pytest.mark.peer


def rdptrust(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rdptrust.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_xfreerdp_uses_the_store_rdptrust_wrote(
    xrdp_server: Callable[..., XrdpServer], xvfb_display: Display, tmp_path: Path
) -> None:
    server = xrdp_server(security_layer="tls")
    home = tmp_path / "home"
    config = home / ".config" / "freerdp"
    # Given a known_hosts2 entry for another certificate, xfreerdp stops at the mismatch
    config.mkdir(parents=True)
    wrong = "00:" * 31 + "00"
    (config / "known_hosts2").write_text(f"127.0.0.1 {server.port} {wrong} Q04= Q04=\n")
    refused = run_xfreerdp(xvfb_display, home, server.port, "/cert:tofu", "/sec:tls")
    assert refused.returncode != 0
    assert "does not match" in refused.stdout + refused.stderr
    # When rdptrust pins the host and writes FreeRDP's store
    proc = rdptrust(
        "trust",
        f"127.0.0.1:{server.port}",
        "--store",
        str(tmp_path / "pins.json"),
        "--freerdp",
        "2",
        "--freerdp-dir",
        str(config),
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    before = (config / "known_hosts2").read_text()
    assert before.count("\n") == 1
    # Then xfreerdp connects without asking and leaves the store as rdptrust wrote it
    ok = run_xfreerdp(xvfb_display, home, server.port, "/cert:tofu", "/sec:tls")
    output = ok.stdout + ok.stderr
    assert ok.returncode == 0, output
    assert "does not match" not in output
    assert "Do you trust" not in output
    assert (config / "known_hosts2").read_text() == before
    assert doc["certificate"]["sha256"] in before.replace(":", "")
