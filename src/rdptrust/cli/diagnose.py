"""``rdptrust diagnose``."""

from __future__ import annotations

from pathlib import Path

import click

from rdptrust.cli.client_state import (
    CLIENT_STATE,
    CLIENT_STATE_HELP,
    NO_CLIENT_STATE_HELP,
    with_client_state,
)
from rdptrust.cli.common import (
    CA_DIR,
    CA_FILE,
    CA_FILE_HELP,
    KNOWN_HOSTS,
    KNOWN_HOSTS_HELP,
    PROXY_HELP,
    FiniteRange,
    UrlType,
    console,
    run,
    target_argument,
)
from rdptrust.cli.exits import error_line
from rdptrust.cli.proxy_options import AutoProxyChoice, autoproxy_options
from rdptrust.cli.windows_options import WindowsModelChoice, windows_model_options
from rdptrust.engine import AssessOptions, assess
from rdptrust.fix.advice import fixes_for
from rdptrust.model.windows import DEFAULT_ROOT_LIST_URL, WindowsSettings
from rdptrust.pki.pinning import KnownHosts
from rdptrust.pki.trust import load_trust_anchors
from rdptrust.report.diagnosis import diagnosis_document, render_diagnosis
from rdptrust.report.jsonform import dumps


@click.command(
    "diagnose",
    epilog="""\b
Examples:
  rdptrust diagnose rdp01.example.com
  rdptrust diagnose rdp01 --ca-file corp-root.pem --json
  rdptrust diagnose rdp01 --root-update off       as if Method 2 were deployed
  rdptrust diagnose rdp01 --assume-from-capi2 capi2.evtx   the regime the client's log shows
  rdptrust diagnose rdp01 --client-state pc042.json   with that client's stores and policy
  rdptrust diagnose rdp01 --proxy http://proxy.corp.example:3128
  rdptrust diagnose rdp01 --pac http://pac.corp.example/proxy.pac   proxy per URL
  rdptrust diagnose rdp01 --pac ./proxy.pac
  rdptrust diagnose rdp01 --wpad --wpad-domain corp.example   WPAD discovery first
  rdptrust diagnose 127.0.0.1:33891 --root-list-url http://127.0.0.1:8080/authrootstl.cab
  rdptrust diagnose rdp01 --revocation-timeouts per-url --client win7
  rdptrust diagnose rdp01 --root-update off --disallowed-update off   Method 2 + switch
  rdptrust diagnose rdp01 --ctl-due no     the clients' trust lists are fresh
  rdptrust diagnose rdp01 --crl-first on   the clients try CRLs before OCSP
  rdptrust diagnose rdp01 --domain corp.example   measure ldap:/// CRLs against its DCs
  rdptrust diagnose rdp01 --domain lab.test --dns-server 127.0.0.1:5353
                                           ask that DNS server for the DCs' SRV records

\b
Exit codes (monitoring convention): 0 ok, 1 warning, 2 critical, 3 unknown (could not
probe), 64 usage error (a malformed URL, --proxy with --pac/--wpad, a --pac file that
cannot be read or is no PAC script, a --ca-file, --known-hosts or --client-state
that is missing or unreadable), 65 an --assume-from-capi2 log that is no CAPI2 log or
settles nothing, or a --client-state file that is not a client state.""",
)
@click.argument("target", metavar="HOST[:PORT]")
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object (rdptrust.diagnosis/2)."
)
@click.option(
    "--ca-file",
    "ca_files",
    multiple=True,
    type=CA_FILE,
    help=CA_FILE_HELP,
)
@click.option(
    "--ca-dir",
    "ca_dirs",
    multiple=True,
    type=CA_DIR,
    help="Also trust the certificates in this folder (repeatable).",
)
@click.option(
    "--system-trust/--no-system-trust",
    default=True,
    show_default=True,
    help="Also trust this machine's CA store.",
)
@click.option("--known-hosts", type=KNOWN_HOSTS, default=None, help=KNOWN_HOSTS_HELP)
@click.option(
    "--root-list-url",
    type=UrlType(),
    default=DEFAULT_ROOT_LIST_URL,
    show_default=True,
    help="Where Windows fetches the trusted-root list.",
)
@click.option(
    "--root-update",
    type=click.Choice(["on", "off"]),
    default="on",
    show_default=True,
    help="Model Automatic Root Certificates Update on or off (off = Method 2 deployed).",
)
@click.option("--proxy", type=UrlType(("http",)), default=None, metavar="URL", help=PROXY_HELP)
@autoproxy_options
@click.option(
    "--fetch-timeout",
    type=FiniteRange(min=0.1, max=120),
    default=15.0,
    show_default=True,
    help="Seconds rdptrust waits here for each URL; one that gives no answer by then counts "
    "as Windows' full per-URL time-out (--windows-url-timeout).",
)
@click.option(
    "--windows-url-timeout",
    type=FiniteRange(min=0.1, max=600),
    default=15.0,
    show_default=True,
    help="Windows' per-URL retrieval time-out in the model.",
)
@click.option(
    "--windows-revocation-timeout",
    type=FiniteRange(min=0.1, max=600),
    default=20.0,
    show_default=True,
    help="The accumulative regime's revocation budget in the model (each URL gets half of "
    "what remains).",
)
@windows_model_options
@click.option(
    "--assume-from-capi2",
    "capi2_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Model the settings the client's CAPI2 log settles (its mstsc.exe chain builds): "
    "the revocation regime its chain flags show.",
)
@click.option(
    "--timeout",
    type=FiniteRange(min=0.1, max=600),
    default=10.0,
    show_default=True,
    help="Seconds for the RDP connection (connect, negotiation, TLS).",
)
@click.option(
    "--warn-days",
    type=click.IntRange(0, 3650),
    default=30,
    show_default=True,
    help="Warn when a certificate ends within this many days.",
)
@click.option("--client-state", "client_state_file", type=CLIENT_STATE, help=CLIENT_STATE_HELP)
@click.option("--no-client-state", is_flag=True, help=NO_CLIENT_STATE_HELP)
def diagnose_cmd(
    target: str,
    as_json: bool,
    ca_files: tuple[Path, ...],
    ca_dirs: tuple[Path, ...],
    system_trust: bool,
    known_hosts: Path | None,
    root_list_url: str,
    root_update: str,
    proxy: str | None,
    fetch_timeout: float,
    windows_url_timeout: float,
    windows_revocation_timeout: float,
    capi2_file: Path | None,
    timeout: float,
    warn_days: int,
    client_state_file: Path | None,
    no_client_state: bool,
    windows_model: WindowsModelChoice,
    autoproxy: AutoProxyChoice,
) -> None:
    """Why does Remote Desktop hang on "Securing remote connection", and what to do.

    Judges the host's certificate chain the way the Windows client does, performs every
    retrieval the client would make (trust lists, AIA, CRL, OCSP) in parallel and times
    it, predicts the wait of the first connection and of later ones (a range over the
    revocation regimes) and names its causes, what each rests on, and the exact fixes.
    Run it from a client's network: that is where the retrievals are blocked or not.
    """
    parsed = target_argument(target)
    # Trust sources and the pinned store are read before the host is probed: a file
    # that cannot be read is an error of its own, not a verdict on the host.
    anchors = load_trust_anchors(system=system_trust, ca_files=ca_files, ca_dirs=ca_dirs)
    store = KnownHosts.load(known_hosts)
    windows = WindowsSettings(
        url_timeout_s=windows_url_timeout,
        revocation_timeout_s=windows_revocation_timeout,
        root_update=root_update == "on",
        **windows_model.settings_fields(),
    )
    if capi2_file is not None:
        windows = _assume_from_capi2(capi2_file, windows, quiet=as_json)
    options = AssessOptions(
        probe_timeout_s=timeout,
        fetch_timeout_s=fetch_timeout,
        windows=windows,
        root_list_url=root_list_url,
        proxy=proxy,
        **autoproxy.options_fields(),
        anchors=anchors,
        known_hosts=store,
        warn_days=warn_days,
    )
    # the client's own stores and policy, when given (and on Windows by default)
    options = with_client_state(options, client_state_file, no_client_state)
    result = run(assess(parsed, options))
    fixes = fixes_for(result)
    if as_json:
        click.echo(dumps(diagnosis_document(result, fixes)))
    else:
        render_diagnosis(result, console(), fixes)
    if result.probe.error is not None and not as_json:
        error_line(result.probe.error.message)
    click.get_current_context().exit(result.verdict.exit_code)


def _assume_from_capi2(path: Path, windows: WindowsSettings, *, quiet: bool) -> WindowsSettings:
    """*windows* with what the RDP chain builds of the CAPI2 log *path* settle; a log
    without one settles nothing about the RDP client (DataError, exit 65)."""
    from rdptrust.engine.capi2 import load_capi2
    from rdptrust.errors import DataError
    from rdptrust.pki.record import apply_settled, settled_settings

    rdp = [b for b in load_capi2([path]).chain_builds if b.rdp]
    if not rdp:
        raise DataError(
            f"{path}: no mstsc.exe chain build, so it settles nothing of the RDP client"
        )
    settled = [s for s in settled_settings(rdp) if s.name == "revocation_timeouts"]
    if not settled:
        raise DataError(f"{path}: its mstsc.exe chain builds do not settle the revocation regime")
    if not quiet:
        for setting in settled:
            click.echo(
                f"assumed from {path}: {setting.name} = {setting.value} ({setting.evidence})"
            )
    return apply_settled(windows, settled)
