"""Method 1 with FreeRDP: the store `rdptrust trust --freerdp 2` writes lets xfreerdp connect
without a prompt, and xfreerdp refuses when the entry does not match (so the store is used)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from fixtures.lab import LabFactory
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
        "--known-hosts",
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


async def test_xfreerdp_connects_to_the_lab_with_the_store_rdptrust_wrote(
    lab_factory: LabFactory, xvfb_display: Display, tmp_path: Path
) -> None:
    xfreerdp = shutil.which("xfreerdp")
    if xfreerdp is None:
        pytest.skip("xfreerdp is not installed (Debian package freerdp2-x11)")
    lab = await lab_factory(cert="self-signed")
    home = tmp_path / "home"
    config = home / ".config" / "freerdp"

    async def run(*argv: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": str(home),
                "DISPLAY": xvfb_display.name,
            },
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode is not None
        return proc.returncode, out.decode(errors="replace")

    # Given rdptrust pinned the lab and wrote FreeRDP's store
    code, out = await run(
        sys.executable,
        "-m",
        "rdptrust.cli.main",
        "trust",
        str(lab.target),
        "--known-hosts",
        str(tmp_path / "pins.json"),
        "--freerdp",
        "2",
        "--freerdp-dir",
        str(config),
    )
    assert code == 0, out
    before = (config / "known_hosts2").read_text()
    # When xfreerdp connects with no one to answer a prompt
    code, out = await run(
        xfreerdp, f"/v:{lab.target}", "/cert:tofu", "+auth-only", "/u:x", "/p:y", "/sec:tls"
    )
    # Then it went through TLS without asking, and kept rdptrust's entry
    assert "does not match" not in out
    assert "Do you trust" not in out
    assert "ERRCONNECT_TLS_CONNECT_FAILED" not in out
    assert (config / "known_hosts2").read_text() == before
    assert lab.certificate_sha256 in before.replace(":", "")
    # and once the lab recreates its certificate, the same store makes xfreerdp refuse
    lab.regenerate_certificate()
    code, out = await run(
        xfreerdp, f"/v:{lab.target}", "/cert:tofu", "+auth-only", "/u:x", "/p:y", "/sec:tls"
    )
    assert code != 0
    assert "does not match" in out
