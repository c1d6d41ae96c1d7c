"""Helpers for the monitoring tests: lab certificates, the rdptrust command."""

from __future__ import annotations

import datetime as dt
import os
import sys

from rdptrust.lab.certs import HostCredentials, LabCa, windows_self_signed

#: The rdptrust command of this interpreter's environment.
RDPTRUST = [sys.executable, "-m", "rdptrust.cli.main"]


def expiring_in(days: int, ca: LabCa | None = None) -> HostCredentials:
    """A host certificate that ends *days* from now: CA-issued with *ca*, else self-signed."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start = now - dt.timedelta(days=30)
    end = now + dt.timedelta(days=days, hours=1)
    if ca is None:
        return windows_self_signed(not_valid_before=start, not_valid_after=end)
    return ca.issue(
        "WIN-LAB01",
        dns_names=["WIN-LAB01", "win-lab01.lab.test"],
        ip_addresses=["127.0.0.1"],
        not_valid_before=start,
        not_valid_after=end,
    )


def subprocess_env() -> dict[str, str]:
    """The environment for rdptrust subprocesses: no proxies, a private data folder."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return env
