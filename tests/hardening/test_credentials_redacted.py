"""A password in ``root_list_url`` (or any URL) never appears in rdptrust's output.

Before: ``--root-list-url http://user:secret@mirror/authrootstl.cab`` put the password
in the exporter's ``rdptrust_retrieval_*`` labels, in ``diagnose``'s text and JSON,
and in any error about the URL. Now every retrieval is recorded with ``user:***@``,
and text, plugin lines, logs and error messages redact what they print.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import httpx
import pytest

from fixtures.cli import run_rdptrust
from fixtures.lab import LabFactory
from rdptrust.cli.common import SafeLogFormatter
from rdptrust.model.retrieval import FetchOutcome, HttpResult
from rdptrust.model.text import redact_credentials, redact_url
from rdptrust.monitor.config import parse_config, with_anchors
from rdptrust.monitor.exporter import Exporter

SECRET = "s3cret-Pw"


def _with_password(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://rdp-user:{SECRET}@{rest}"


def test_redaction_keeps_the_user_and_drops_the_password() -> None:
    assert redact_url(f"http://u:{SECRET}@h:8080/x?y=1") == "http://u:***@h:8080/x?y=1"
    assert redact_url("http://h/x") == "http://h/x"
    assert redact_url("http://u@h/x") == "http://u@h/x"
    text = f"cannot fetch https://a:{SECRET}@h/x (and http://b:{SECRET}@k/)"
    assert SECRET not in redact_credentials(text)
    result = HttpResult(_with_password("http://h/x"), FetchOutcome.TIMEOUT, None, 1.0, None, None)
    assert result.url == "http://rdp-user:***@h/x"


def test_log_lines_are_redacted() -> None:
    record = logging.LogRecord(
        "rdptrust",
        logging.WARNING,
        __file__,
        1,
        "fetch %s failed",
        (f"http://u:{SECRET}@h/",),
        None,
    )
    line = SafeLogFormatter("%(message)s").format(record)
    assert line == "fetch http://u:***@h/ failed"


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "HOME": str(tmp_path)}


async def test_no_command_prints_the_password(lab_factory: LabFactory, tmp_path: Path) -> None:
    # Given a root list URL with a user and password (the lab's own list)
    lab = await lab_factory(cert="ca")
    url = _with_password(lab.root_list_url)
    target = str(lab.target)
    db = str(tmp_path / "inventory.sqlite3")
    common = ["--no-system-trust", "--root-list-url", url]
    commands = [
        ["diagnose", target, *common],
        ["diagnose", target, *common, "--json"],
        ["check", target, "--diagnose", *common],
        ["check", target, "--diagnose", *common, "--json"],
        ["scan", target, "--db", db, "--diagnose", "--root-list-url", url, "--jsonl"],
        ["report", "--db", db, "--jsonl", "-"],
        ["hosts", "--db", db, "--json"],
        # a URL refused by the option parser is quoted back redacted
        ["diagnose", target, "--root-list-url", f"ftp://u:{SECRET}@h/x"],
    ]
    for args in commands:
        # When each command runs with it
        code, out, err = await run_rdptrust(*args, env=_env(tmp_path), timeout=90)
        assert code in (0, 1, 2, 64), (args, out, err)
        assert "Traceback" not in err, (args, err)
        # Then the password is nowhere in what it prints
        assert SECRET not in out + err, (args, out, err)
    _, out, err = await run_rdptrust(*commands[0], env=_env(tmp_path), timeout=90)
    assert "rdp-user:***@" in out


@pytest.mark.parametrize("module", ["diagnose"])
async def test_exporter_metrics_hold_no_password(
    lab_factory: LabFactory, tmp_path: Path, module: str
) -> None:
    lab = await lab_factory(cert="ca")
    url = _with_password(lab.root_list_url)
    config = with_anchors(
        parse_config(
            {
                "modules": {
                    module: {
                        "diagnose": True,
                        "timeout": 20,
                        "system_trust": False,
                        "root_list_url": url,
                        "known_hosts": str(tmp_path / "no-pins.json"),
                    }
                }
            }
        )
    )
    async with Exporter(config, port=0) as server:
        async with httpx.AsyncClient(timeout=30, trust_env=False) as http:
            probe = await http.get(
                f"{server.url}/probe", params={"target": str(lab.target), "module": module}
            )
            own = await http.get(f"{server.url}/metrics")
    assert probe.status_code == 200, probe.text
    assert "rdptrust_" in probe.text
    assert SECRET not in probe.text
    assert SECRET not in own.text
    assert "rdp-user:***@" in probe.text
