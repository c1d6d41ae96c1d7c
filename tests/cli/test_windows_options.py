"""The modelled client's options are the same on diagnose, check and scan."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

OPTIONS = (
    "--revocation-timeouts",
    "--disallowed-update",
    "--ctl-due",
    "--client",
    "--root-dir-url",
    "--domain",
    "--dns-server",
)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rdptrust.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        # PYTHONPATH as the test run has it: the code under test and the network guard
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "PYTHONPATH": os.environ["PYTHONPATH"]},
    )


@pytest.mark.parametrize("command", ["diagnose", "check", "scan"])
def test_each_command_takes_the_model_options(command: str) -> None:
    text = run_cli(command, "--help").stdout
    for option in OPTIONS:
        assert option in text, (command, option)


@pytest.mark.parametrize(
    "args",
    [
        ("--client", "win11"),
        ("--revocation-timeouts", "sometimes"),
        ("--ctl-due", "maybe"),
        ("--disallowed-update", "yes"),
        ("--root-dir-url", "ftp://mirror/ctl/"),
        ("--domain", "corp..example"),
        ("--domain", "-corp.example"),
        ("--dns-server", "dns.example"),
        ("--dns-server", "127.0.0.1:99999"),
        ("--dns-server", "127.0.0.1:x"),
    ],
)
def test_bad_values_are_usage_errors(args: tuple[str, ...]) -> None:
    proc = run_cli("diagnose", "127.0.0.1:9", *args)
    assert proc.returncode == 64, proc.stderr
    assert "Traceback" not in proc.stderr


def test_diagnose_help_has_examples_of_the_model_options() -> None:
    text = run_cli("diagnose", "--help").stdout
    assert "--revocation-timeouts per-url --client win7" in text
    assert "--disallowed-update off" in text


def test_help_shows_the_directory_options_with_examples() -> None:
    text = run_cli("diagnose", "--help").stdout
    assert "--domain corp.example" in text
    assert "--dns-server 127.0.0.1:5353" in text
    assert "_ldap._tcp.dc._msdcs.NAME" in text
