"""The modelled client's options are the same on diagnose, check and scan."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

OPTIONS = (
    "--revocation-timeouts",
    "--disallowed-update",
    "--ctl-due",
    "--client",
    "--root-dir-url",
    "--crl-first",
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
        # this checkout's code, and the network guard the test run puts on PYTHONPATH
        env={
            "COLUMNS": "200",
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": os.pathsep.join(
                [str(Path(__file__).resolve().parents[2] / "src"), os.environ["PYTHONPATH"]]
            ),
        },
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
        ("--crl-first", "yes"),
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


def test_crl_first_reaches_every_command_settings() -> None:
    from rdptrust.cli.windows_options import WindowsModelChoice
    from rdptrust.engine.scan_assessment import assessment_options
    from rdptrust.engine.scan_options import ScanOptions
    from rdptrust.model.windows import ClientProfile, RevocationRegime, WindowsSettings

    choice = WindowsModelChoice(RevocationRegime.BOTH, True, True, ClientProfile.WIN10, None, True)
    assert WindowsSettings(**choice.settings_fields()).ocsp_first is False
    off = WindowsModelChoice(RevocationRegime.BOTH, True, True, ClientProfile.WIN10, None)
    assert WindowsSettings(**off.settings_fields()).ocsp_first is True
    # scan --diagnose keeps it in its stored options (resume) and models it
    scan = ScanOptions(diagnose=True, crl_first=True)
    assert ScanOptions.from_json(scan.to_json()).crl_first is True
    assert assessment_options(scan).windows.ocsp_first is False
    assert assessment_options(ScanOptions(diagnose=True)).windows.ocsp_first is True


def test_help_explains_crl_first_with_an_example() -> None:
    text = run_cli("diagnose", "--help").stdout
    assert "--crl-first on" in text
    assert "CRYPTNET_CRL_BEFORE_OCSP_ENABLE" in text


def test_help_shows_the_directory_options_with_examples() -> None:
    text = run_cli("diagnose", "--help").stdout
    assert "--domain corp.example" in text
    assert "--dns-server 127.0.0.1:5353" in text
    assert "_ldap._tcp.dc._msdcs.NAME" in text
