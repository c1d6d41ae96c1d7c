"""Start-up of the command line: ``--help`` and ``--version`` import no command, and the
command list the help shows without importing them is the commands' own."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

import rdptrust.cli
from rdptrust.cli.main import COMMANDS, cli

COMMAND_MODULES = sorted({listed.where.split(":")[0] for listed in COMMANDS.values()})
#: Packages a command brings in that listing the commands or the version must not.
HEAVY = ("cryptography", "OpenSSL", "httpx", "rich", "dns", "asyncio", "sqlite3")

#: Only the modules the command line imported count: the tests' network guard
#: (tests/netguard) has already loaded some of its own, asyncio among them.
_IMPORTS = """
import json, sys
before = set(sys.modules)
from rdptrust.cli.main import main
try:
    main(sys.argv[2:])
except SystemExit as exc:
    code = exc.code
with open(sys.argv[1], "w") as out:
    json.dump({"code": code, "modules": sorted(set(sys.modules) - before)}, out)
"""


def imported(tmp_path: Path, *args: str) -> tuple[str, set[str]]:
    """Run ``rdptrust ARGS`` in a fresh interpreter: its output and the modules it imported
    (that the interpreter had not loaded before)."""
    where = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", _IMPORTS, str(where), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(where.read_text(encoding="utf-8"))
    assert result["code"] == 0, done.stderr
    return done.stdout, set(result["modules"])


def top_level_packages(modules: set[str]) -> set[str]:
    return {name.partition(".")[0] for name in modules}


@pytest.mark.parametrize("option", ["--help", "-h", "--version"])
def test_help_and_version_import_no_command(tmp_path: Path, option: str) -> None:
    out, modules = imported(tmp_path, option)
    assert out.startswith("rdptrust, version " if option == "--version" else "Usage: rdptrust")
    assert modules.isdisjoint(COMMAND_MODULES), sorted(modules & set(COMMAND_MODULES))
    assert top_level_packages(modules).isdisjoint(HEAVY)


def test_a_commands_help_imports_that_command_only(tmp_path: Path) -> None:
    out, modules = imported(tmp_path, "lab", "--help")
    assert out.startswith("Usage: rdptrust lab")
    assert "rdptrust.cli.lab" in modules
    assert "rdptrust.cli.scan" not in modules
    assert "rdptrust.cli.inventory" not in modules


#: What a scan of hosts does not need to start: DNS SRV (--domain), the HTTP client
#: (--diagnose), file locks, rich (a progress bar on a terminal only) and the inventory
#: listing commands' views.
NOT_FOR_A_SCAN = ("dns", "httpx", "httpcore", "rich", "filelock")


@pytest.mark.parametrize("command", ["scan", "worker"])
def test_a_scan_starts_without_what_only_some_scans_use(tmp_path: Path, command: str) -> None:
    out, modules = imported(tmp_path, command, "--help")
    assert out.startswith(f"Usage: rdptrust {command}")
    assert f"rdptrust.cli.{command}" in modules
    assert top_level_packages(modules).isdisjoint(NOT_FOR_A_SCAN), sorted(
        top_level_packages(modules) & set(NOT_FOR_A_SCAN)
    )
    assert {"rdptrust.cli.inventory", "rdptrust.report.hosts"}.isdisjoint(modules)


def test_the_help_lists_every_command_with_its_summary(tmp_path: Path) -> None:
    out, _ = imported(tmp_path, "--help")
    listing = out.partition("Commands:\n")[2]
    assert [line.split()[0] for line in listing.splitlines() if line.startswith("  ")][
        : len(COMMANDS)
    ] == list(COMMANDS)


def test_each_listed_summary_is_the_commands_own() -> None:
    ctx = click.Context(cli)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        stand_in = cli.listed_command(ctx, name)
        assert command is not None
        assert stand_in is not None
        assert command.name == name
        assert not command.hidden
        assert not command.deprecated
        for limit in (30, 45, 60, 74, 94, 10_000):
            assert stand_in.get_short_help_str(limit) == command.get_short_help_str(limit), (
                name,
                limit,
            )


@pytest.mark.parametrize("width", [50, 80, 100, 200])
def test_the_command_list_is_the_one_click_makes_from_the_commands(width: int) -> None:
    # Given the help's command list from the summaries, and click's from the imported commands
    ctx = click.Context(cli)
    lazy, eager = click.HelpFormatter(width=width), click.HelpFormatter(width=width)
    # When both are formatted at the same width
    cli.format_commands(ctx, lazy)
    click.Group.format_commands(cli, ctx, eager)
    # Then they are the same text
    assert lazy.getvalue() == eager.getvalue()
    assert "Commands:" in lazy.getvalue()


def test_every_command_a_module_defines_is_listed() -> None:
    # Every click command in rdptrust.cli that is no group's subcommand is a command of
    # ``rdptrust`` (the group itself aside), so none can be defined and left out of the list.
    defined: dict[int, str] = {}
    subcommands: set[int] = set()
    for info in pkgutil.iter_modules(rdptrust.cli.__path__):
        module = importlib.import_module(f"rdptrust.cli.{info.name}")
        for attribute, value in vars(module).items():
            if isinstance(value, click.Command) and value is not cli:
                defined.setdefault(id(value), f"{module.__name__}:{attribute}")
                if isinstance(value, click.Group):
                    subcommands.update(id(sub) for sub in value.commands.values())
    top_level = {where for key, where in defined.items() if key not in subcommands}
    assert top_level == {listed.where for listed in COMMANDS.values()}


#: Loaded only by the scans that use them: Standard RDP Security and NTLM connections
#: (--enumerate) and PKCS #7 bundles (an AIA answer that is not a certificate).
ONLY_WHEN_ASKED = (
    "rdptrust.net.standard_security",
    "rdptrust.net.ntlm_info",
    "rdptrust.protocol.gcc",
    "cryptography.hazmat.primitives.serialization.pkcs7",
)


def test_the_scan_observer_loads_no_enumeration_code() -> None:
    # Given a fresh interpreter that loads what a plain scan runs for each host
    code = (
        "import json, sys\n"
        "import rdptrust.cli.scan, rdptrust.engine.scan_assessment, rdptrust.net.probe\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    modules = set(json.loads(done.stdout))
    # Then the observer and the probe are loaded, and none of what only some scans use
    assert {"rdptrust.engine.scan_assessment", "rdptrust.net.probe"} <= modules
    assert modules.isdisjoint(ONLY_WHEN_ASKED), sorted(modules & set(ONLY_WHEN_ASKED))
