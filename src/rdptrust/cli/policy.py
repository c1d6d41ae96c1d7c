"""``rdptrust policy``: Method 2 and chain-engine time-outs as deployable files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.table import Table
from rich.text import Text

from rdptrust.cli.common import console
from rdptrust.cli.exits import EXIT_OK
from rdptrust.errors import RemoteProtocolError, UsageError
from rdptrust.fix.policy import (
    PolicySet,
    disallowed_autoupdate,
    retrieval_timeouts,
    root_autoupdate,
    write_policy_artifacts,
)
from rdptrust.fix.policy import (
    root_dir_url as root_dir_url_policy,
)
from rdptrust.fix.registry_pol import parse_registry_pol, type_name
from rdptrust.model.text import safe_text
from rdptrust.report.jsonform import dumps
from rdptrust.report.policy import policy_document, registry_pol_document

F = TypeVar("F", bound=Callable[..., Any])

MAX_POL_FILE = 16 * 1024 * 1024


@click.group(
    epilog="""\b
Examples:
  rdptrust policy root-autoupdate --disable --out gpo/
  rdptrust policy retrieval-timeouts --url-timeout-ms 3000 --revocation-timeout-ms 5000 --out t/
  rdptrust policy disallowed-autoupdate --disable --out gpo-disallowed/
  rdptrust policy root-dir-url http://pki.example.internal/ctl/ --out gpo-mirror/
  rdptrust policy show gpo/Registry.pol --json""",
)
def policy() -> None:
    """Write Group Policy files for the client side (KB 2915774 Method 2), or read one."""


def _output_options(command: F) -> F:
    """``--out FOLDER`` (required) and ``--json``, as every policy writer takes them."""
    command = click.option(
        "--json", "as_json", is_flag=True, help="Print what was written as JSON."
    )(command)
    return click.option(
        "--out",
        type=click.Path(file_okay=False, path_type=Path),
        required=True,
        help="Folder to write into.",
    )(command)


def _switch(disable: bool, enable: bool) -> None:
    """A switch command takes exactly one of --disable and --enable."""
    if disable == enable:
        raise click.UsageError(
            "give --disable or --enable, not both" if disable else "say --disable or --enable"
        )


def _write(policy_set: PolicySet, out: Path, as_json: bool) -> None:
    files = write_policy_artifacts(policy_set, out)
    if as_json:
        click.echo(dumps(policy_document(policy_set, files)))
        return
    click.echo(f"{policy_set.title}:")
    for entry in policy_set.entries:
        value = entry.value
        shown = value.hex() if isinstance(value, bytes) else value
        click.echo(f"  HKLM\\{entry.key}\\{entry.value_name} = {shown}")
    click.echo("Wrote:")
    for path in files.values():
        click.echo(f"  {path}")
    if policy_set.caveat:
        click.echo(f"Note: {policy_set.caveat}")


@policy.command("root-autoupdate")
@click.option(
    "--disable", is_flag=True, help="Turn Automatic Root Certificates Update off (Method 2)."
)
@click.option("--enable", is_flag=True, help="Turn it back on (the reverse).")
@_output_options
def root_autoupdate_cmd(disable: bool, enable: bool, out: Path, as_json: bool) -> None:
    """Registry.pol, .reg and PowerShell that set DisableRootAutoUpdate.

    With root update off, Windows stops fetching authrootstl.cab from Windows Update when it
    meets an untrusted root: the wait on "Securing remote connection" for that URL goes away.
    """
    _switch(disable, enable)
    _write(root_autoupdate(disable=disable), out, as_json)


@policy.command("retrieval-timeouts")
@click.option(
    "--url-timeout-ms",
    type=click.IntRange(1, 600_000),
    default=15000,
    show_default=True,
    help="ChainUrlRetrievalTimeoutMilliseconds.",
)
@click.option(
    "--revocation-timeout-ms",
    type=click.IntRange(1, 600_000),
    default=20000,
    show_default=True,
    help="ChainRevAccumulativeUrlRetrievalTimeoutMilliseconds.",
)
@_output_options
def retrieval_timeouts_cmd(
    url_timeout_ms: int, revocation_timeout_ms: int, out: Path, as_json: bool
) -> None:
    """Shorter chain-engine retrieval time-outs, for sites that keep root update on."""
    _write(retrieval_timeouts(url_timeout_ms, revocation_timeout_ms), out, as_json)


@policy.command(
    "disallowed-autoupdate",
    epilog="""\b
Examples:
  rdptrust policy disallowed-autoupdate --disable --out gpo-disallowed/
  rdptrust policy disallowed-autoupdate --enable --out gpo-undo/""",
)
@click.option("--disable", is_flag=True, help="Turn the disallowed list and pin rules update off.")
@click.option("--enable", is_flag=True, help="Turn it back on (the reverse).")
@_output_options
def disallowed_autoupdate_cmd(disable: bool, enable: bool, out: Path, as_json: bool) -> None:
    """Registry.pol, .reg and PowerShell that set EnableDisallowedCertAutoUpdate.

    Windows 8.1 and later sync disallowedcertstl.cab (and pin rules on Windows 10) for
    trusted chains too; Method 2 leaves that sync, this switch removes it.
    """
    _switch(disable, enable)
    _write(disallowed_autoupdate(disable=disable), out, as_json)


@policy.command(
    "root-dir-url",
    epilog="""\b
Examples:
  rdptrust policy root-dir-url http://pki.example.internal/ctl/ --out gpo-mirror/
  rdptrust policy root-dir-url file://fileserver/ctl --out gpo-mirror/""",
)
@click.argument("url")
@_output_options
def root_dir_url_cmd(url: str, out: Path, as_json: bool) -> None:
    """Registry.pol, .reg and PowerShell that set RootDirUrl (an internal list mirror)."""
    try:
        policy_set = root_dir_url_policy(url)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="URL") from exc
    _write(policy_set, out, as_json)


@policy.command("show")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON.")
def show(file: Path, as_json: bool) -> None:
    """Print the entries of any Registry.pol file."""
    try:
        size = file.stat().st_size
        if size > MAX_POL_FILE:
            raise UsageError(f"{file}: {size} bytes is too large for a Registry.pol file")
        data = file.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror or exc}") from exc
    try:
        entries = parse_registry_pol(data)
    except RemoteProtocolError as exc:
        raise UsageError(f"{file} is not a valid Registry.pol file: {exc}") from exc
    if as_json:
        click.echo(dumps(registry_pol_document(file, entries)))
        click.get_current_context().exit(EXIT_OK)
    table = Table(
        title=Text(f"{safe_text(str(file))} ({len(entries)} entries)"), title_justify="left"
    )
    for column in ("Key", "Value name", "Type", "Data"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        value = entry.value
        shown = value.hex() if isinstance(value, bytes) else str(value)
        # a file's names and data may hold any character: escaped, each cell one line
        table.add_row(
            Text(safe_text(entry.key)),
            Text(safe_text(entry.value_name)),
            type_name(entry.type),
            Text(safe_text(shown)),
        )
    console().print(table)
