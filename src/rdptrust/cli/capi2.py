"""``rdptrust capi2``: what the Windows client recorded in its CAPI2 log."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import click

from rdptrust.cli.common import (
    CA_FILE,
    CA_FILE_HELP,
    KNOWN_HOSTS,
    KNOWN_HOSTS_HELP,
    FiniteRange,
    UrlType,
    console,
    run,
    target_argument,
)
from rdptrust.errors import UsageError

if TYPE_CHECKING:
    from rdptrust.engine import AssessOptions
    from rdptrust.model.capi2 import Capi2Log, RecordComparison


def _thumbprint(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    text = value.replace(":", "").replace(" ", "").lower()
    if not re.fullmatch(r"[0-9a-f]{40}", text):
        raise click.BadParameter("give the SHA-1 thumbprint as 40 hex digits")
    return text


@click.command(
    "capi2",
    epilog="""\b
Examples:
  rdptrust capi2 capi2.evtx                       every chain build, RDP first
  rdptrust capi2 capi2.xml --process mstsc.exe --json
  rdptrust capi2 capi2.evtx --thumbprint 9617094A1CFB59AE7C1F7DFDB6739E4E7C40508F
  rdptrust capi2 capi2.evtx --host rdp01.example.com   model beside record

\b
On the Windows client (as administrator), before and after reproducing the stall:
  wevtutil sl Microsoft-Windows-CAPI2/Operational /e:true
  wevtutil epl Microsoft-Windows-CAPI2/Operational capi2.evtx

\b
Exit codes: 0 read, 3 --host could not be probed, 64 usage error (also a FILE that is
not there), 65 a file that is no CAPI2 log (not EVTX or event XML, truncated, another
channel's log, no CAPI2 events).""",
)
@click.argument(
    "files",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    metavar="FILE...",
)
@click.option(
    "--process",
    default=None,
    metavar="NAME",
    help="Keep the chain builds of this process only, e.g. mstsc.exe [default: all, RDP first].",
)
@click.option(
    "--thumbprint",
    default=None,
    callback=_thumbprint,
    metavar="SHA1",
    help="Keep the chain builds of the certificate with this SHA-1 thumbprint.",
)
@click.option(
    "--host",
    "host",
    default=None,
    metavar="HOST[:PORT]",
    help="Probe this RDP host, keep the chain builds of its certificate and put "
    "rdptrust's prediction beside what the client recorded.",
)
@click.option(
    "--root-list-url",
    type=UrlType(),
    default=None,
    help="With --host: where the modelled client fetches the trusted-root list.",
)
@click.option(
    "--fetch-timeout",
    type=FiniteRange(min=0.1, max=120),
    default=15.0,
    show_default=True,
    help="With --host: seconds rdptrust waits for each URL (as diagnose).",
)
@click.option("--ca-file", "ca_files", multiple=True, type=CA_FILE, help=CA_FILE_HELP)
@click.option(
    "--known-hosts", type=KNOWN_HOSTS, default=None, help="With --host: " + KNOWN_HOSTS_HELP
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (rdptrust.capi2/1).")
def capi2(
    files: tuple[Path, ...],
    process: str | None,
    thumbprint: str | None,
    host: str | None,
    root_list_url: str | None,
    fetch_timeout: float,
    ca_files: tuple[Path, ...],
    known_hosts: Path | None,
    as_json: bool,
) -> None:
    """Read the client's own record of a stall: the CAPI2 Operational log.

    Reads logs exported as .evtx (wevtutil epl) or XML (wevtutil qe ... /f:xml), groups
    the events into chain builds and prints for each its process, certificate, chain
    flags (the revocation regime), trust errors, time, and every URL retrieval with its
    time-out, elapsed time, proxy action and result; then the waits that made the stall,
    largest first, each with its fix.
    """
    from rdptrust.engine.capi2 import load_capi2
    from rdptrust.pki.record import settled_settings
    from rdptrust.protocol.capi2_builds import select
    from rdptrust.report.capi2 import capi2_document, render_capi2
    from rdptrust.report.jsonform import dumps

    if host is None and (root_list_url is not None or ca_files or known_hosts is not None):
        raise UsageError("--root-list-url, --ca-file and --known-hosts need --host")
    log = load_capi2(files)
    comparison = None
    exit_code = 0
    if host is not None:
        options = _options(root_list_url, fetch_timeout, ca_files, known_hosts)
        comparison, sha1 = _compare(host, log, process, thumbprint, options)
        if comparison is None:
            exit_code = 3
        thumbprint = sha1 or thumbprint
    builds = select(log, process=process, sha1=thumbprint)
    settled = settled_settings([b for b in builds if b.rdp] or builds)
    if as_json:
        click.echo(dumps(capi2_document(log, builds, settled, comparison)))
    else:
        render_capi2(log, builds, console(), settled, comparison)
    click.get_current_context().exit(exit_code)


def _options(
    root_list_url: str | None,
    fetch_timeout: float,
    ca_files: tuple[Path, ...],
    known_hosts: Path | None,
) -> AssessOptions:
    """The options of the host's assessment: those of ``diagnose`` by default."""
    from rdptrust.engine import AssessOptions
    from rdptrust.model.windows import DEFAULT_ROOT_LIST_URL
    from rdptrust.pki.pinning import KnownHosts
    from rdptrust.pki.trust import load_trust_anchors

    return AssessOptions(
        fetch_timeout_s=fetch_timeout,
        root_list_url=root_list_url or DEFAULT_ROOT_LIST_URL,
        anchors=load_trust_anchors(system=True, ca_files=ca_files),
        known_hosts=KnownHosts.load(known_hosts),
    )


def _compare(
    host: str,
    log: Capi2Log,
    process: str | None,
    thumbprint: str | None,
    options: AssessOptions,
) -> tuple[RecordComparison | None, str | None]:
    """Assess *host* (with the diagnosis) and compare it with the log's chain builds of
    its certificate; (None, None) when the host gives no certificate."""
    from rdptrust.engine import assess
    from rdptrust.pki.record import compare
    from rdptrust.protocol.capi2_builds import select

    target = target_argument(host)
    result = run(assess(target, options))
    if result.leaf is None:
        reason = result.probe.error.message if result.probe.error else "no certificate"
        click.echo(f"rdptrust: error: {target}: {reason}", err=True)
        return None, None
    sha1 = result.leaf.sha1
    if thumbprint is not None and thumbprint != sha1:
        raise UsageError(f"--thumbprint {thumbprint} is not the certificate of {target} ({sha1})")
    builds = select(log, process=process, sha1=sha1)
    return compare(result, builds), sha1
