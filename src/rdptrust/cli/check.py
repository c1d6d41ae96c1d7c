"""``rdptrust check``: a monitoring plugin (Nagios, Icinga, Naemon) for one RDP host."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import click

from rdptrust.cli.client_state import CLIENT_STATE_HELP
from rdptrust.cli.common import (
    CA_FILE_HELP,
    KNOWN_HOSTS_HELP,
    PROXY_HELP,
    FiniteRange,
    UrlType,
    run,
)
from rdptrust.cli.proxy_options import AutoProxyChoice, autoproxy_options
from rdptrust.cli.windows_options import WindowsModelChoice, windows_model_options
from rdptrust.engine import AssessOptions, assess
from rdptrust.engine.client_state import load_client_state, options_with_client_state
from rdptrust.errors import PkiError, RdptrustError, StoreError, UsageError
from rdptrust.model.target import parse_target
from rdptrust.model.text import redact_credentials, safe_text
from rdptrust.model.windows import DEFAULT_ROOT_LIST_URL, WindowsSettings
from rdptrust.monitor.check import PluginState, Thresholds, evaluate
from rdptrust.pki.pinning import KnownHosts
from rdptrust.pki.trust import load_trust_anchors
from rdptrust.report.check import check_document, unknown_document
from rdptrust.report.jsonform import dumps


@click.command(
    epilog="""\b
States (worst wins: CRITICAL, UNKNOWN, WARNING, OK):
  CRITICAL  expired or not yet valid; revoked; the pinned certificate changed; no
            certificate; EKU not for RDP; a CA-issued certificate for another name;
            MD5 or a key under 1024 bits; a certificate of the path ends within
            --crit-days; predicted stall over twice --max-stall
  WARNING   ends within --warn-days; self-signed, not pinned; untrusted root;
            incomplete chain; SHA-1; a key under 2048 bits; predicted stall over
            --max-stall; no CRL or OCSP answer for a trusted chain
  UNKNOWN   the host cannot be probed (refused, time-out, not RDP); HOST is no host
            name or address; a --ca-file, the --known-hosts store or the
            --client-state file is missing or cannot be read (--json: the document
            with "error" saying why)

\b
Output: one line 'RDPTRUST STATE - summary | perfdata'. Perfdata: days_left (d, ranges
WARN: and CRIT: alert below), stall (s, with --diagnose), tls_handshake (s), time (s).

\b
Examples:
  rdptrust check rdp01.example.com --ca-file /etc/ssl/corp-root.pem
  rdptrust check 10.0.0.5:3390 --warn-days 21 --crit-days 7
  rdptrust check rdp01 --diagnose --max-stall 3 --root-list-url http://wsus/authrootstl.cab
  rdptrust check rdp01 --diagnose --client-state /etc/rdptrust/pc042.json

\b
Exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, 64 wrong options.""",
)
@click.argument("target", metavar="HOST[:PORT]")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON object (rdptrust.check/2) instead of the plugin line; same exit code.",
)
@click.option(
    "--warn-days",
    type=click.IntRange(min=0, max=3650),
    default=30,
    show_default=True,
    help="WARNING when a certificate of the path ends within this many days.",
)
@click.option(
    "--crit-days",
    type=click.IntRange(min=0, max=3650),
    default=7,
    show_default=True,
    help="CRITICAL when a certificate of the path ends within this many days.",
)
@click.option(
    "--max-stall",
    type=FiniteRange(min=0, max=600),
    default=5.0,
    show_default=True,
    help="WARNING when the predicted stall exceeds this many seconds, CRITICAL over twice it "
    "(with --diagnose).",
)
@click.option(
    "--ca-file",
    "ca_files",
    # no checks here: a missing or unreadable file is UNKNOWN (3), not click's 64
    type=click.Path(path_type=Path),
    multiple=True,
    help=CA_FILE_HELP,
)
@click.option(
    "--system-trust/--no-system-trust",
    default=True,
    show_default=True,
    help="Also trust the system's CA store.",
)
@click.option(
    "--known-hosts",
    type=click.Path(path_type=Path),
    default=None,
    help=KNOWN_HOSTS_HELP,
)
@click.option(
    "--timeout",
    type=FiniteRange(min=0.1, max=600),
    default=10.0,
    show_default=True,
    help="Seconds for the connection (connect, negotiation and TLS together).",
)
@click.option(
    "--diagnose/--no-diagnose",
    default=False,
    show_default=True,
    help="Also fetch the URLs Windows fetches (root list, AIA, CRL, OCSP) and judge the "
    "predicted stall and revocation.",
)
@click.option(
    "--root-list-url",
    type=UrlType(),
    default=None,
    help="With --diagnose: where the Windows root list is fetched "
    "(default: the Windows Update URL).",
)
@click.option(
    "--root-update",
    type=click.Choice(["on", "off"]),
    default="on",
    show_default=True,
    help="With --diagnose: whether the clients' Automatic Root Certificates Update is on.",
)
@click.option("--proxy", type=UrlType(("http",)), default=None, metavar="URL", help=PROXY_HELP)
@autoproxy_options
@click.option(
    "--fetch-timeout",
    type=FiniteRange(min=0.1, max=120),
    default=5.0,
    show_default=True,
    help="With --diagnose: seconds rdptrust waits here for each URL; one that gives no "
    "answer by then counts as Windows' full per-URL time-out (--windows-url-timeout).",
)
@click.option(
    "--windows-url-timeout",
    type=FiniteRange(min=0.1, max=600),
    default=15.0,
    show_default=True,
    help="With --diagnose: Windows' per-URL retrieval time-out in the model.",
)
@click.option(
    "--windows-revocation-timeout",
    type=FiniteRange(min=0.1, max=600),
    default=20.0,
    show_default=True,
    help="With --diagnose: the accumulative regime's revocation budget in the model.",
)
@click.option(
    "--client-state",
    "client_state_file",
    type=click.Path(path_type=Path),
    help=CLIENT_STATE_HELP.split(" [default")[0] + " (a bad file is UNKNOWN).",
)
@windows_model_options
def check(
    target: str,
    as_json: bool,
    warn_days: int,
    crit_days: int,
    max_stall: float,
    ca_files: tuple[Path, ...],
    system_trust: bool,
    known_hosts: Path | None,
    timeout: float,
    diagnose: bool,
    root_list_url: str | None,
    root_update: str,
    proxy: str | None,
    fetch_timeout: float,
    windows_url_timeout: float,
    windows_revocation_timeout: float,
    client_state_file: Path | None,
    windows_model: WindowsModelChoice,
    autoproxy: AutoProxyChoice,
) -> None:
    """Check one RDP host's certificate as a monitoring plugin: OK, WARNING, CRITICAL, UNKNOWN.

    Probes HOST (default port 3389) the way Remote Desktop Connection starts, judges the
    certificate chain it sends against the trust sources and the pinned-host store,
    and prints one line in the Nagios/Icinga plugin format with performance data. The
    rules are below; the exit code is the state.
    """
    if crit_days > warn_days:
        raise click.BadParameter(
            f"--crit-days {crit_days} is more than --warn-days {warn_days}",
            param_hint="--crit-days",
        )
    ctx = click.get_current_context()
    try:
        parsed = parse_target(target)
    except UsageError as exc:
        # A plugin's exit codes are 0-3: a target that is no host name is UNKNOWN, not 64.
        _unknown(ctx, as_json, target, exc)
    thresholds = Thresholds(warn_days=warn_days, crit_days=crit_days, max_stall_s=max_stall)
    try:
        anchors = load_trust_anchors(system=system_trust, ca_files=list(ca_files))
    except (PkiError, StoreError) as exc:
        _unknown(ctx, as_json, str(parsed), exc)
    try:
        # Read now, so that a store named but missing or broken is UNKNOWN even for a
        # host that sends no certificate, never "no pins".
        store = KnownHosts.load(known_hosts, must_exist=known_hosts is not None)
    except (StoreError, PkiError) as exc:
        _unknown(ctx, as_json, str(parsed), exc, store=True)
    options = AssessOptions(
        probe_timeout_s=timeout,
        enumerate=False,
        standard_security=False,
        diagnose=diagnose,
        fetch_timeout_s=fetch_timeout,
        windows=WindowsSettings(
            url_timeout_s=windows_url_timeout,
            revocation_timeout_s=windows_revocation_timeout,
            root_update=root_update == "on",
            **windows_model.settings_fields(),
        ),
        root_list_url=root_list_url or DEFAULT_ROOT_LIST_URL,
        proxy=proxy,
        **autoproxy.options_fields(),
        anchors=anchors,
        known_hosts=store,
        warn_days=warn_days,
    )
    if client_state_file is not None:
        try:
            options = options_with_client_state(options, load_client_state(client_state_file))
        except RdptrustError as exc:
            _unknown(ctx, as_json, str(parsed), exc)
        except OSError as exc:
            unreadable = StoreError(
                f"cannot read the client-state file {client_state_file}: {exc.strerror or exc}"
            )
            _unknown(ctx, as_json, str(parsed), unreadable)
    try:
        observation = run(assess(parsed, options))
    except RdptrustError as exc:
        _unknown(ctx, as_json, str(parsed), exc, prefix=f"{parsed}: ")
    result = evaluate(observation, thresholds)
    if as_json:
        document = check_document(result.state.name, result.exit_code, result.line(), observation)
        click.echo(dumps(document))
    else:
        click.echo(result.line())
    ctx.exit(result.exit_code)


def _unknown(
    ctx: click.Context,
    as_json: bool,
    target: str,
    exc: Exception,
    *,
    store: bool = False,
    prefix: str = "",
) -> NoReturn:
    """Stop with UNKNOWN before a result: the plugin line, or its ``--json`` document."""
    message = _one_line(str(exc))
    line = f"RDPTRUST UNKNOWN - {prefix}{message}"
    if as_json:
        kind = getattr(exc, "kind", "local_resource")
        document = unknown_document(target, line, kind, message, message if store else None)
        click.echo(dumps(document))
    else:
        click.echo(line)
    ctx.exit(PluginState.UNKNOWN)


def _one_line(text: str) -> str:
    return safe_text(redact_credentials(" ".join(text.replace("|", "/").split())))
