"""``rdptrust client-state``: a Windows client's stores and policy, as one JSON document."""

from __future__ import annotations

from pathlib import Path

import click

from rdptrust.engine.client_live import read_live_client_state
from rdptrust.engine.client_state import client_state_for, options_with_client_state
from rdptrust.engine.options import AssessOptions
from rdptrust.files import write_atomic
from rdptrust.report.client_state import client_state_document
from rdptrust.report.client_state_script import client_state_script
from rdptrust.report.jsonform import dumps

#: ``--client-state FILE`` of the judging commands: an existing file (its content is
#: checked when it is read: a malformed one is exit 65).
CLIENT_STATE = click.Path(exists=True, dir_okay=False, path_type=Path)
CLIENT_STATE_HELP = (
    "Judge with this Windows client's trust stores and policy (an rdptrust.client-state/1 "
    "file from 'rdptrust client-state') instead of this machine's trust: its Root, CA and "
    "Disallowed stores, root update switches, time-outs, RootDirUrl and WinHTTP proxy "
    "replace --system-trust, --root-update and the --windows-* time-outs (--ca-file still "
    "adds) [default on Windows: this machine's own client state]."
)
NO_CLIENT_STATE_HELP = (
    "On Windows: judge with rdptrust's own trust (--system-trust, --ca-file) instead of "
    "this machine's live client state."
)

#: ``scan --client-state FILE``.
SCAN_CLIENT_STATE_OPTION = click.option(
    "--client-state",
    "client_state_file",
    type=CLIENT_STATE,
    help="With --diagnose: judge with this Windows client's stores and policy "
    "(rdptrust.client-state/1), as 'diagnose --client-state' does.",
)


def with_client_state(
    options: AssessOptions, path: Path | None, no_client_state: bool
) -> AssessOptions:
    """*options* with the client state of ``--client-state``/``--no-client-state``."""
    if path is not None and no_client_state:
        raise click.UsageError("give --client-state FILE or --no-client-state, not both")
    state = client_state_for(path, live=not no_client_state)
    if state is None:
        return options
    where = str(path) if path is not None else "this Windows machine's stores and policy"
    click.echo(f"rdptrust: judging with the client state of {where}", err=True)
    return options_with_client_state(options, state)


@click.command(
    "client-state",
    epilog="""\b
Examples:
  rdptrust client-state --out client-state.json      on the Windows client itself
  rdptrust client-state --script --out client-state.ps1
      then on the client: powershell -NoProfile -ExecutionPolicy Bypass -File
      client-state.ps1 -Out client-state.json
  rdptrust diagnose rdp01 --client-state client-state.json

\b
Exit codes: 0 written, 64 usage (reading the live state anywhere but on Windows),
65 the client's registry holds a malformed value, 73/74 the file cannot be written.""",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the document (or with --script, the script) to this file, atomically "
    "[default: standard output].",
)
@click.option(
    "--script",
    is_flag=True,
    help="Write the PowerShell script that produces the same document on a Windows client "
    "(standard cmdlets only; it changes nothing). Works on any system.",
)
def client_state(out: Path | None, script: bool) -> None:
    """Read this Windows client's trust stores and chain-engine policy into
    rdptrust.client-state/1, for 'diagnose --client-state FILE'.

    Reads the Root (with Group Policy's roots), AuthRoot, CA and Disallowed stores, the
    AuthRoot policy (DisableRootAutoUpdate, EnableDisallowedCertAutoUpdate), the cached
    CTL's LastSyncTime and RootDirUrl, the ChainEngine\\Config time-outs and WinHTTP's
    static proxy. Nothing is changed on the machine.
    """
    if script:
        text = client_state_script()
    else:
        text = dumps(client_state_document(read_live_client_state())) + "\n"
    if out is None:
        click.echo(text, nl=False)
        return
    write_atomic(out, text)
    what = "PowerShell script" if script else "client state"
    click.echo(f"wrote the {what} to {out}", err=True)
