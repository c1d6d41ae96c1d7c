"""Real clients against the lab: FreeRDP's xfreerdp and nmap's RDP scripts (Debian packages).

xfreerdp needs an X display even with +auth-only (Xvfb). The user name and password it is
given are dummies: FreeRDP wants some before it connects, and the lab never accepts them.
"""

from __future__ import annotations

import asyncio
import base64
import re
from pathlib import Path

import pytest

from fixtures.lab import LabFactory
from fixtures.nmap import run_nmap_rdp
from fixtures.peers import Display, run_xfreerdp

pytestmark = pytest.mark.peer


def _colon_hex(sha256: str) -> str:
    return ":".join(sha256[i : i + 2] for i in range(0, len(sha256), 2))


async def test_xfreerdp_tofu_records_the_lab_certificate(
    lab_factory: LabFactory, xvfb_display: Display, tmp_path: Path
) -> None:
    # Given a lab with the Windows-like self-signed certificate
    lab = await lab_factory(protocols="RDP,SSL")
    home = tmp_path / "home"
    home.mkdir()
    # When xfreerdp connects for the first time with trust on first use
    await asyncio.to_thread(
        run_xfreerdp, xvfb_display, home, lab.target.port, "/cert:tofu", "/sec:tls"
    )
    # Then it completed TLS and stored the lab certificate's fingerprint
    store = home / ".config" / "freerdp" / "known_hosts2"
    fields = store.read_text().split()
    name = base64.b64encode(b"CN = WIN-LAB01").decode()
    assert fields == [
        "127.0.0.1",
        str(lab.target.port),
        _colon_hex(lab.certificate_sha256),
        name,
        name,
    ]
    # When the host recreates its certificate (the six-monthly renewal)
    lab.regenerate_certificate()
    again = await asyncio.to_thread(
        run_xfreerdp, xvfb_display, home, lab.target.port, "/cert:tofu", "/sec:tls"
    )
    # Then xfreerdp stops at the mismatch and keeps the old entry
    output = again.stdout + again.stderr
    assert "does not match the certificate used for previous connections" in output
    assert _colon_hex(lab.certificate_sha256) in output
    assert store.read_text().split() == fields


async def test_xfreerdp_nla_reads_the_challenge_and_is_refused(
    lab_factory: LabFactory, xvfb_display: Display, tmp_path: Path
) -> None:
    lab = await lab_factory(protocols="SSL,HYBRID", require="HYBRID")
    done = await asyncio.to_thread(
        run_xfreerdp, xvfb_display, tmp_path, lab.target.port, "/cert:ignore", "/sec:nla"
    )
    assert done.returncode != 0
    assert "ERRCONNECT_LOGON_FAILURE" in done.stdout + done.stderr
    # FreeRDP accepted our CHALLENGE: it went on to send an AUTHENTICATE.
    record = lab.endpoints[0].connections[-1]
    assert record.ntlm_negotiate
    assert record.authenticate


async def test_nmap_reports_protocols_and_ntlm_names(lab_factory: LabFactory) -> None:
    # Given a lab that offers TLS and CredSSP only, with its own names and version
    lab = await lab_factory(
        protocols="SSL,HYBRID",
        ntlm_computer="NMAPHOST",
        ntlm_domain="NMAPDOM",
        ntlm_dns_domain="nmap.test",
        ntlm_version="6.3.9600",
    )
    # When nmap's RDP scripts run against it
    output = (await asyncio.to_thread(run_nmap_rdp, lab.target.port, 60)).output
    # Then rdp-ntlm-info reports the configured names and version
    for line in (
        "Target_Name: NMAPDOM",
        "NetBIOS_Domain_Name: NMAPDOM",
        "NetBIOS_Computer_Name: NMAPHOST",
        "DNS_Domain_Name: nmap.test",
        "DNS_Computer_Name: nmaphost.nmap.test",
        "DNS_Tree_Name: nmap.test",
        "Product_Version: 6.3.9600",
    ):
        assert line in output
    assert re.search(r"System_Time: \d{4}-\d\d-\d\dT", output)
    # And rdp-enum-encryption lists exactly the protocols the lab selected.
    # (It counts any RDP_NEG_RSP as success and lists only successes; the Standard RDP
    # Security methods need MCS answers, which the lab does not give yet.)
    layer = output.split("rdp-enum-encryption:", 1)[1]
    assert "CredSSP (NLA): SUCCESS" in layer
    assert "SSL: SUCCESS" in layer
    assert "Native RDP" not in layer
    assert "Early User Auth" not in layer
