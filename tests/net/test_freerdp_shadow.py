"""Standard RDP Security and NTLM host information against FreeRDP's shadow server
(Debian package ``freerdp2-shadow-x11``, sharing an Xvfb display), checked against
nmap's ``rdp-enum-encryption`` and ``rdp-ntlm-info``.

FreeRDP 2's shadow server answers Standard RDP Security with encryption method and
level NONE whatever the client offers, so no method is "accepted" (nmap agrees) yet
the host takes unencrypted Standard RDP Security sessions. With ``/sec:nla +auth`` it
selects CredSSP and its NTLM CHALLENGE names the machine as winpr sees it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from fixtures.documents import probe_json
from fixtures.nmap import run_nmap_rdp
from fixtures.peers import Display, free_port
from rdptrust.model.target import Target
from rdptrust.net.ntlm_info import get_ntlm_info
from rdptrust.net.probe import probe_host
from rdptrust.net.standard_security import probe_standard_security

pytestmark = pytest.mark.peer


@pytest.fixture
def shadow_server(xvfb_display: Display, tmp_path: Path) -> Iterator[Callable[..., int]]:
    """Factory: ``shadow_server(*args)`` starts freerdp-shadow-cli on a free port."""
    binary = shutil.which("freerdp-shadow-cli")
    if binary is None:
        pytest.skip("freerdp-shadow-cli is not installed (Debian package freerdp2-shadow-x11)")
    procs: list[subprocess.Popen[bytes]] = []
    logs: list[BinaryIO] = []

    def launch(port: int, args: tuple[str, ...], log: BinaryIO) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [binary, f"/port:{port}", "/bind-address:127.0.0.1", *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DISPLAY": xvfb_display.name},
            cwd=tmp_path,
        )
        procs.append(proc)
        return proc

    def listening(port: int, proc: subprocess.Popen[bytes], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                return True
            time.sleep(0.05)
        return False

    def start(*args: str) -> int:
        # freerdp-shadow-cli has been seen to exit at start ("Server initialization
        # failed") now and then: try three times, each on a new port.
        tails = []
        for _ in range(3):
            port = free_port()
            path = tmp_path / f"shadow-{port}.log"
            log = path.open("wb")
            logs.append(log)
            proc = launch(port, args, log)
            if listening(port, proc, 10.0):
                return port
            proc.kill()
            proc.wait()
            log.flush()
            tails.append(path.read_text(errors="replace")[-1000:])
            time.sleep(0.5)
        pytest.fail("freerdp-shadow-cli did not listen:\n" + "\n---\n".join(tails))

    yield start
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for log in logs:
        log.close()


async def test_standard_security_without_encryption_matches_nmap(
    shadow_server: Callable[..., int],
) -> None:
    # Given the shadow server with its default security (RDP, TLS and NLA on)
    port = shadow_server("-auth")
    target = Target("127.0.0.1", port)
    # When we try each encryption method, and nmap does too
    result = await probe_standard_security(target, timeout=5)
    nmap = run_nmap_rdp(port)
    # Then it selects no encryption at all, for every method asked
    assert {m.selected for m in result.methods} == {"NONE"}
    assert result.accepted_methods == ()
    assert result.encryption_level == "NONE"
    assert result.certificate_type is None  # no random and no certificate without encryption
    # and nmap counts no method as accepted and reads the same RDP version
    assert nmap.methods == set(), nmap.output
    assert nmap.rdp_version == result.rdp_version == 0x00080004, nmap.output
    # and the probe says Standard RDP Security is allowed, without encryption
    doc = probe_json(await probe_host(target, timeout=5, enumerate_tls_versions=False))
    assert doc["standard_security"]["encryption_level"] == "NONE"
    finding = next(f for f in doc["findings"] if f["code"] == "standard-rdp-security-allowed")
    assert "no encryption at all" in finding["message"]


async def test_ntlm_info_matches_nmap(shadow_server: Callable[..., int], tmp_path: Path) -> None:
    # Given the shadow server requiring NLA (it needs a SAM file; an empty one will do:
    # nothing here ever authenticates)
    sam = tmp_path / "sam"
    sam.write_text("")
    port = shadow_server("+auth", "/sec:nla", f"/sam-file:{sam}")
    target = Target("127.0.0.1", port)
    # When we ask for its NTLM CHALLENGE, and nmap's rdp-ntlm-info does too
    info = await get_ntlm_info(target, timeout=5)
    nmap = run_nmap_rdp(port)
    # Then both read the same names, version and clock
    assert info.error is None, info.error
    expected = {
        "Target_Name": info.target_name,
        "NetBIOS_Domain_Name": info.netbios_domain_name,
        "NetBIOS_Computer_Name": info.netbios_computer_name,
        "DNS_Domain_Name": info.dns_domain_name,
        "DNS_Computer_Name": info.dns_computer_name,
        "Product_Version": str(info.os_version),
    }
    for key, value in expected.items():
        assert nmap.ntlm.get(key) == value, (key, nmap.output)
    assert info.dns_tree_name is None
    assert "DNS_Tree_Name" not in nmap.ntlm
    assert info.server_time is not None
    nmap_time = dt.datetime.fromisoformat(nmap.ntlm["System_Time"])
    assert abs((info.server_time - nmap_time).total_seconds()) < 30
    assert abs((info.server_time - dt.datetime.now(dt.UTC)).total_seconds()) < 30
    # and the probe asks for it because the host selected CredSSP
    result = await probe_host(target, timeout=5, enumerate_tls_versions=False)
    doc = probe_json(result)
    assert doc["ntlm"]["netbios_computer_name"] == info.netbios_computer_name
    assert doc["ntlm"]["os_version"] == nmap.ntlm["Product_Version"]
    assert doc["standard_security"] is None  # /sec:nla refuses Standard RDP Security
