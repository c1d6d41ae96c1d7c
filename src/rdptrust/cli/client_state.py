"""``rdptrust client-state``: a Windows client's stores and policy, as one JSON document."""

from __future__ import annotations

from pathlib import Path

import click

from rdptrust.engine.client_live import read_live_client_state
from rdptrust.files import write_atomic
from rdptrust.report.client_state import client_state_document
from rdptrust.report.client_state_script import client_state_script
from rdptrust.report.jsonform import dumps


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
