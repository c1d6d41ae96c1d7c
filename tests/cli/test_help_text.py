"""Every command's help as a user reads it: with ``--help``, and for a group given no
command, on standard output with exit code 0, laid out by click (no raw ``\\b`` marker)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from fixtures.cli import RDPTRUST
from rdptrust.cli.main import cli
from rdptrust.report.schemas import schema_files


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    ctx = click.Context(group, info_name="rdptrust")
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


COMMANDS = list(_commands(cli))


def rdptrust(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RDPTRUST, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_every_command_is_listed() -> None:
    assert {("scan",), ("db",), ("db", "migrate"), ("lab",)} <= set(COMMANDS)


@pytest.mark.parametrize("path", [(), *COMMANDS], ids=lambda p: " ".join(p) or "rdptrust")
def test_help_is_laid_out_by_click(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"], prog_name="rdptrust")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: rdptrust")
    # click's no-rewrap marker must start a paragraph of its own, or it is printed raw
    assert "\b" not in result.output


@pytest.mark.parametrize("group", [[], ["db"]], ids=["rdptrust", "db"])
def test_a_group_without_a_command_prints_its_help(group: list[str]) -> None:
    run = rdptrust(*group)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("Usage: rdptrust")
    assert "Commands:" in run.stdout
    assert run.stdout == rdptrust(*group, "--help").stdout
    assert run.stderr == ""


@pytest.mark.parametrize("path", [(), *COMMANDS], ids=lambda p: " ".join(p) or "rdptrust")
def test_every_schema_a_help_names_is_one_rdptrust_prints(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"], prog_name="rdptrust", terminal_width=400)
    assert result.exit_code == 0, result.output
    named = set(re.findall(r"rdptrust\.[a-z0-9-]+/[0-9]+", result.output))
    assert named <= set(schema_files()), sorted(named - set(schema_files()))
