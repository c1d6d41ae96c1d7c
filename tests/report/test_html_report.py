"""The HTML inventory report, rendered by headless Chromium: rows, charts, escaping, CSP."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.x509.oid import NameOID

from fixtures.credentials import self_signed_with_name
from fixtures.lab import LabFactory
from rdptrust.engine.scan import run_scan
from rdptrust.engine.scan_options import ScanOptions
from rdptrust.lab.certs import HostCredentials
from rdptrust.model.records import ObservationRecord
from rdptrust.model.target import Target
from rdptrust.report.html import MAX_EVENTS, render_html_report, write_html_report
from rdptrust.store.inventory import Inventory

HOSTILE_CN = "<script>document.title='pwned'</script>"
HOSTILE_ORG = '"><img src=x onerror="document.title=\'img-pwned\'">'
TITLE = "rdptrust inventory report"

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def hostile_credentials() -> HostCredentials:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, HOSTILE_CN),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, HOSTILE_ORG),
        ]
    )
    return self_signed_with_name(name, days=20)


@pytest_asyncio.fixture
async def inventory(tmp_path: Path, lab_factory: LabFactory) -> AsyncIterator[Inventory]:
    """An inventory from two real scans of the lab: self-signed (one recreated between the
    scans), CA-issued, expired, a host whose certificate subject is hostile markup, and an
    unreachable port. Both scans diagnose (the root list does not answer)."""
    recreating = await lab_factory(count=2, root_list="blackhole")
    ca = await lab_factory(cert="ca")
    expired = await lab_factory(cert="expired")
    hostile = await lab_factory()
    hostile.set_credentials(hostile_credentials())
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        refused = Target("127.0.0.1", sock.getsockname()[1])
    targets = [*recreating.targets, ca.target, expired.target, hostile.target, refused]
    inv = Inventory.open(tmp_path / "inv.sqlite3")
    diagnosing = ScanOptions(
        timeout=3,
        diagnose=True,
        url_timeout=1.0,
        root_list_url=recreating.root_list_url,
        known_hosts=str(tmp_path / "known_hosts.json"),
    )
    await run_scan(inv, inv.create_scan([], {}, targets), diagnosing)
    recreating.regenerate_certificate()
    await run_scan(inv, inv.create_scan([], {}, targets), diagnosing)
    try:
        yield inv
    finally:
        inv.close()


def records_of(inventory: Inventory) -> dict[str, Any]:
    """What the report command hands the report: each host's latest records, events, scan."""
    return {
        "observations": lambda: inventory.observations(latest_per_host=True),
        "events": inventory.events(limit=MAX_EVENTS),
        "scan": inventory.latest_scan(),
    }


def test_html_is_escaped_and_self_contained(inventory: Inventory) -> None:
    html = "".join(render_html_report(**records_of(inventory)))
    assert HOSTILE_CN not in html
    assert "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;" in html
    assert "<img src=x" not in html
    # Nothing is loaded from anywhere: no external URL in src/href attributes.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
    nonce = re.search(r"'nonce-([A-Za-z0-9_-]+)'", html)
    assert nonce is not None
    # Only the page's own style and script blocks, each with the nonce.
    assert html.count("<script") == html.count(f'<script nonce="{nonce.group(1)}"') == 1
    assert html.count("<style") == html.count(f'<style nonce="{nonce.group(1)}"') == 1
    assert "recreation" in html


def test_report_renders_records_without_an_inventory(inventory: Inventory) -> None:
    # Given the records read out of the inventory, which is then closed
    records = list(inventory.observations(latest_per_host=True))
    events = inventory.events()
    scan = inventory.latest_scan()
    inventory.close()
    now = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
    # When the report renders them (the table and the summary each read them once)
    calls = []

    def observations() -> list[ObservationRecord]:
        calls.append(1)
        return records

    html = "".join(render_html_report(observations, events, scan=scan, scan_id=2, now=now))
    # Then every host has its row, the scope says which scan, and the records were read twice
    assert html.count('<tr class="host"') == len(records) == 6
    assert "scan 2" in html
    assert "Generated 2026-11-26 12:00 UTC" in html
    assert len(calls) == 2


@pytest.mark.skipif(CHROMIUM is None, reason="Debian package chromium is not installed")
def test_report_in_headless_chromium(inventory: Inventory, tmp_path: Path) -> None:
    # Given a report written from an inventory holding a hostile certificate subject
    report = write_html_report(tmp_path / "report.html", **records_of(inventory))
    profile = tmp_path / "profile"
    base = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
    ]
    url = report.resolve().as_uri()
    # When Chromium renders it
    dom = subprocess.run(
        [*base, "--virtual-time-budget=2000", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    ).stdout
    # Then every host row and the charts are in the rendered DOM
    assert len(re.findall(r'<tr class="host"', dom)) == 6
    assert dom.count('<svg class="chart"') == 5
    assert len(re.findall(r'<rect class="bar"', dom)) >= 5
    # And the page's own script ran (it fills in the row count) under the CSP
    assert "6 of 6 hosts shown" in dom
    # And the hostile subject is text, its script never ran, no element was injected
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;" in dom
    assert f"<title>{TITLE}</title>" in dom
    assert "pwned" not in re.search(r"<title>(.*?)</title>", dom, re.S).group(1)  # type: ignore[union-attr]
    assert "<img" not in dom
    assert dom.count("<script") == 1
    # And a screenshot is kept with the test's files
    shot = tmp_path / "report.png"
    subprocess.run(
        [*base, "--window-size=1400,2200", f"--screenshot={shot}", url],
        capture_output=True,
        timeout=90,
        check=True,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 10_000
