"""``rdptrust scan``, ``rdptrust hosts``, ``rdptrust history`` and ``rdptrust report``."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
from collections.abc import Iterable
from pathlib import Path

import click

from rdptrust.cli.client_state import SCAN_CLIENT_STATE_OPTION
from rdptrust.cli.common import (
    CA_FILE,
    CA_FILE_HELP,
    KNOWN_HOSTS,
    KNOWN_HOSTS_HELP,
    PROXY_HELP,
    FiniteRange,
    UrlType,
    run,
)
from rdptrust.cli.db_options import (
    db_option,
    open_existing,
    open_inventory,
    open_to_read,
    store_failure,
)
from rdptrust.cli.exits import EXIT_OK, EXIT_TEMPFAIL, EXIT_USAGE, fail
from rdptrust.cli.progress import ScanProgress
from rdptrust.cli.proxy_options import AutoProxyChoice, autoproxy_options
from rdptrust.cli.scan_targets import checked_specs
from rdptrust.cli.signals import stop_on_signals
from rdptrust.cli.windows_options import WindowsModelChoice, windows_model_options
from rdptrust.engine.client_state import load_client_state
from rdptrust.engine.scan import ScanSummary, run_scan
from rdptrust.engine.scan_options import ScanOptions, fit_concurrency
from rdptrust.engine.workers import GRACE_S, ProcessObserver, default_workers
from rdptrust.errors import StoreError, UsageError, WorkerError
from rdptrust.model.records import ObservationRecord, ScanInfo
from rdptrust.model.site import parse_site
from rdptrust.model.target import (
    DEFAULT_MAX_TARGETS,
    expand_targets,
)
from rdptrust.report.inventory import (
    observation_document,
)
from rdptrust.report.jsonform import dumps
from rdptrust.store.inventory import Inventory, default_site

#: Pending targets from which a scan uses every core by default (starting the worker
#: processes costs about a second).
AUTO_WORKERS_FROM = 500

#: Exit code of a scan stopped by Ctrl-C or SIGTERM (128 + SIGINT).
EXIT_INTERRUPTED = 130


def _worker_count(requested: int | None, info: ScanInfo, options: ScanOptions) -> int:
    """Processes to observe in: as asked, else the cores for a scan big enough to gain."""
    if requested is None:
        pending = info.target_count - info.done_count
        requested = default_workers() if pending >= AUTO_WORKERS_FROM else 1
    return max(1, min(requested, options.concurrency))


async def _scan(
    inventory: Inventory,
    info: ScanInfo,
    options: ScanOptions,
    jsonl: bool,
    workers: int = 1,
) -> ScanSummary:
    stop = asyncio.Event()
    with stop_on_signals(stop):
        with ScanProgress(info.target_count, info.done_count, sys.stderr.isatty()) as progress:

            def on_batch(batch: list[ObservationRecord]) -> None:
                # Called once the batch's commit is durable, so a printed host is a
                # committed one; the whole batch goes out in one write at once (also after
                # Ctrl-C, for the last batch), so a committed host is a printed one even if
                # the process is killed. A reader gone (| head) drops the rest; the scan
                # still records every host.
                for record in batch:
                    progress.advance(record)
                if jsonl:
                    lines = "".join(
                        dumps(observation_document(r), pretty=False) + "\n" for r in batch
                    )
                    sys.stdout.write(lines)
                    sys.stdout.flush()

            if workers == 1:
                return await run_scan(inventory, info, options, on_batch=on_batch, stop=stop)
            async with ProcessObserver(options, workers) as observe:
                return await run_scan(
                    inventory,
                    info,
                    options,
                    observer=observe,
                    on_batch=on_batch,
                    stop=stop,
                    leaf_source=observe.leaf,
                    grace_s=GRACE_S,
                    remote_lag=observe.lag,
                )


def _show_status(db: str | None, which: str) -> None:
    """One scan's progress per worker; without an ID, every queued scan still running
    (one per site and enqueueing), or the latest queued one when none is."""
    ctx = click.get_current_context()
    try:
        with open_to_read(db) as inventory:
            if which == "latest":
                queued = [s for s in inventory.scans() if s.queued]
                if not queued:
                    ctx.exit(fail(f"inventory {inventory.path} holds no queued scan", EXIT_USAGE))
                running = [s for s in queued if s.status == "running"]
                ids = [s.id for s in reversed(running)] or [queued[0].id]
            elif which.isdigit():
                ids = [int(which)]
            else:
                raise UsageError(f"--status takes a scan id (a number), not {which!r}")
            statuses = [inventory.queue_status(scan_id) for scan_id in ids]
    except StoreError as exc:
        store_failure(exc)
        return
    except UsageError as exc:
        ctx.exit(fail(str(exc), EXIT_USAGE))
        return
    for status in statuses:
        scan = status.scan
        total = status.done + status.claimed + status.waiting
        click.echo(
            f"scan {scan.id} ({'queued' if scan.queued else 'not queued'}, site "
            f"{scan.site or '-'}): {scan.status}; {status.done} of {total} targets done, "
            f"{status.claimed} claimed by workers, {status.waiting} waiting"
        )
        for worker in status.workers:
            click.echo(f"  {worker.worker}: {worker.done} done, {worker.claimed} claimed now")


def _resume_id(inventory: Inventory, resume: str) -> int:
    if resume == "latest":
        found = inventory.latest_scan(resumable=True)
        if found is None:
            raise UsageError(f"inventory {inventory.path} holds no interrupted scan to resume")
        return found.id
    if not resume.isdigit():
        raise UsageError(f"--resume takes a scan id (a number), not {resume!r}")
    return int(resume)


@click.command(
    epilog="""\b
Examples:
  rdptrust scan 10.0.0.0/24
  rdptrust scan -i hosts.txt --concurrency 200 --rate 50
  rdptrust scan -i fleet.txt --workers 4   # four processes probe, one records
  rdptrust scan rdp01 rdp02:3390 '[fd00::/120]:3389' --diagnose
  rdptrust scan 10.1.0.0/16 --jsonl > scan.jsonl
  rdptrust scan -i all-sites.txt --max-targets 4194304   # more than one /12 in all
  rdptrust scan --resume            # continue the latest interrupted scan
  rdptrust scan --resume 12         # continue scan 12
  rdptrust scan -i fleet.txt --site branch-2 --db postgresql://rdptrust@db/rdptrust
  rdptrust scan --queue --site hq -i fleet.txt   # for 'rdptrust worker --site hq' processes
  rdptrust scan --status 7          # a queued scan's progress, per worker

\b
A target is HOST, HOST:PORT, [IPv6]:PORT or a network (10.0.0.0/24, [fd00::/120]:3390;
at most a /12 for IPv4 and a /108 for IPv6). A target file holds one per line; '#' starts
a comment. Duplicates are scanned once. Ctrl-C stops cleanly: finished hosts are kept and
'--resume' does the rest.

\b
Exit codes: 0 scan done (whatever the hosts answered) or queued, 64 usage error, 66 no
inventory to --resume in, 69 the inventory's PostgreSQL server cannot be reached, 73 the
inventory cannot be created there, 74 the inventory cannot be used, 75 targets left pending
(a local limit, or a worker process that ended), 130 interrupted.""",
)
@click.argument("targets", nargs=-1, metavar="TARGET…")
@click.option(
    "-i",
    "--input",
    "input_file",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Read targets from FILE, one per line ('-' for standard input).",
)
@db_option
@click.option(
    "--site",
    envvar="RDPTRUST_SITE",
    show_envvar=True,
    default=None,
    metavar="NAME",
    help="Where this scan runs: the network whose clients it speaks for, as hosts, history "
    "and report show it (a host seen from two sites keeps both views). Default: this "
    "machine's name.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 10000),
    default=ScanOptions.concurrency,
    show_default=True,
    help="Hosts probed at the same time, at most (lowered to fit the open-file limit; "
    "fewer while this machine's CPU cannot serve that many before their --timeout).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=None,
    help="Processes that probe and judge (each with its own event loop; the --concurrency "
    f"hosts are shared among them; one process records). Default: the cores, for a scan of "
    f"{AUTO_WORKERS_FROM} or more pending targets; otherwise 1.",
)
@click.option(
    "--timeout",
    type=FiniteRange(min=0.1, max=600),
    default=5.0,
    show_default=True,
    help="Seconds for each connection (connect, negotiation and TLS together).",
)
@click.option(
    "--deadline",
    type=FiniteRange(min=0.1, max=3600),
    default=None,
    help="Seconds for all work on one host [default: from the time-outs].",
)
@click.option(
    "--rate",
    type=FiniteRange(min=0.01),
    default=None,
    help="Start at most this many hosts per second [default: no limit].",
)
@click.option(
    "--enumerate",
    "enumerate_",
    is_flag=True,
    help="Also make one connection per security protocol and per TLS version.",
)
@click.option(
    "--diagnose",
    is_flag=True,
    help="Diagnose each host like 'rdptrust diagnose' (performs its URL retrievals).",
)
@click.option(
    "--fetch-timeout",
    type=FiniteRange(min=0.1, max=120),
    default=15.0,
    show_default=True,
    help="With --diagnose: seconds rdptrust waits here for each URL; one that gives no answer "
    "by then counts as Windows' full per-URL time-out (15 s) in the predicted stall.",
)
@click.option(
    "--root-update",
    type=click.Choice(["on", "off"]),
    default="on",
    show_default=True,
    help="With --diagnose: whether the modelled client fetches the root list.",
)
@click.option(
    "--root-list-url",
    type=UrlType(),
    default=None,
    help="With --diagnose: where the root list is fetched [default: the Windows Update URL].",
)
@windows_model_options
@click.option(
    "--proxy",
    type=UrlType(("http",)),
    default=None,
    metavar="URL",
    help="With --diagnose: " + PROXY_HELP,
)
@autoproxy_options
@click.option(
    "--ca-file",
    "ca_files",
    multiple=True,
    type=CA_FILE,
    help=f"With --diagnose: {CA_FILE_HELP[0].lower()}{CA_FILE_HELP[1:]}",
)
@click.option(
    "--known-hosts",
    type=KNOWN_HOSTS,
    default=None,
    help=f"With --diagnose: {KNOWN_HOSTS_HELP[0].lower()}{KNOWN_HOSTS_HELP[1:]}",
)
@SCAN_CLIENT_STATE_OPTION
@click.option(
    "--jsonl",
    is_flag=True,
    help="Print one JSON object per host (schema rdptrust.scan-host/2) as it completes.",
)
@click.option(
    "--resume",
    is_flag=False,
    flag_value="latest",
    default=None,
    metavar="[ID]",
    help="Continue an interrupted scan (the latest, or scan ID) with its own options.",
)
@click.option(
    "--queue",
    is_flag=True,
    help="Only queue the scan (its targets and options) for 'rdptrust worker --site NAME' "
    "processes of its --site, on this machine or others sharing the inventory; print its id.",
)
@click.option(
    "--status",
    "status_of",
    is_flag=False,
    flag_value="latest",
    default=None,
    metavar="[ID]",
    help="Show queued scans' progress per site and worker (every queued scan still "
    "running, or scan ID).",
)
@click.option(
    "--max-targets",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_TARGETS,
    show_default=True,
    help="Refuse a scan whose TARGETs and lines together stand for more addresses.",
)
def scan(
    targets: tuple[str, ...],
    input_file: str | None,
    db: str | None,
    site: str | None,
    concurrency: int,
    workers: int | None,
    timeout: float,
    deadline: float | None,
    rate: float | None,
    enumerate_: bool,
    diagnose: bool,
    fetch_timeout: float,
    root_update: str,
    root_list_url: str | None,
    proxy: str | None,
    ca_files: tuple[Path, ...],
    known_hosts: Path | None,
    client_state_file: Path | None,
    jsonl: bool,
    resume: str | None,
    windows_model: WindowsModelChoice,
    queue: bool,
    status_of: str | None,
    max_targets: int,
    autoproxy: AutoProxyChoice,
) -> None:
    """Probe many RDP hosts at once and keep the results in the inventory.

    Each host gets the main probe connection (as Remote Desktop Connection makes it); its
    certificate, TLS session, timings and, with --diagnose, the verdict and predicted
    stall go into the inventory, which keeps every host's certificate history and notes
    changes (the six-month recreation, a new CA certificate, an unexpected one).
    """
    ctx = click.get_current_context()
    if status_of is not None:
        if targets or input_file or resume is not None or queue:
            raise click.UsageError("--status shows a scan; give it alone (with --db)")
        _show_status(db, status_of)
        return
    if queue and resume is not None:
        raise click.UsageError("--queue starts a scan; --resume continues one")
    if resume is not None and (targets or input_file):
        raise click.UsageError("--resume continues a scan; give no targets with it")
    if resume is not None and site is not None and not os.environ.get("RDPTRUST_SITE"):
        raise click.UsageError("--resume continues a scan from its own site; give no --site")
    try:
        scan_site = parse_site(site) if site is not None else default_site()
    except UsageError as exc:
        raise click.BadParameter(str(exc), param_hint="--site") from None
    if resume is None and not targets and not input_file:
        raise click.UsageError("give at least one TARGET or -i FILE (or --resume)")
    if client_state_file is not None:
        load_client_state(client_state_file)  # a bad file: one line, exit 65, before the scan
    specs: Iterable[str] = ()
    if resume is None:
        try:
            specs = checked_specs(targets, input_file, max_targets)
        except UsageError as exc:
            ctx.exit(fail(str(exc), EXIT_USAGE))
    try:
        inventory = open_inventory(db) if resume is None else open_existing(db)
    except StoreError as exc:
        store_failure(exc)
        return
    try:
        with inventory:
            if resume is not None:
                info = inventory.claim_scan(_resume_id(inventory, resume))
                options = ScanOptions.from_json(info.options)
            else:
                options = ScanOptions(
                    concurrency=concurrency,
                    timeout=timeout,
                    deadline=deadline,
                    rate=rate,
                    enumerate=enumerate_,
                    diagnose=diagnose,
                    url_timeout=fetch_timeout,
                    root_update=root_update == "on",
                    root_list_url=root_list_url,
                    revocation_timeouts=windows_model.revocation_timeouts.value,
                    disallowed_update=windows_model.disallowed_update,
                    ctl_due=windows_model.ctl_due,
                    client=windows_model.client.value,
                    root_dir_url=windows_model.root_dir_url,
                    crl_first=windows_model.crl_first,
                    domain=windows_model.domain,
                    dns_server=windows_model.dns_server,
                    list_timeout=windows_model.list_timeout,
                    proxy=proxy,
                    pac=autoproxy.pac,
                    wpad=autoproxy.wpad,
                    wpad_domain=autoproxy.wpad_domain,
                    ca_files=tuple(str(f.resolve()) for f in ca_files),
                    known_hosts=str(known_hosts.resolve()) if known_hosts else None,
                    client_state=str(client_state_file.resolve()) if client_state_file else None,
                )
                arguments = list(targets) + (
                    ["-i", str(Path(input_file).resolve()) if input_file != "-" else "-"]
                    if input_file
                    else []
                )
                info = inventory.create_scan(
                    arguments,
                    options.to_json(),
                    expand_targets(specs),
                    site=scan_site,
                    queued=queue,
                )
                if queue:
                    click.echo(
                        f"queued scan {info.id}: {info.target_count} targets for site "
                        f"{scan_site}; start workers there with 'rdptrust worker --site "
                        f"{scan_site}' (same --db); 'rdptrust scan --status {info.id}' shows "
                        "progress"
                    )
                    return
            fitted = fit_concurrency(options)
            if fitted < options.concurrency:
                click.echo(
                    f"rdptrust: warning: {options.concurrency} hosts at once need "
                    f"{options.concurrency * options.sockets_per_host()} open files, more than "
                    f"this process may open (ulimit -n); scanning {fitted} at once",
                    err=True,
                )
                options = dataclasses.replace(options, concurrency=fitted)
            count = _worker_count(workers, info, options)
            summary = run(_scan(inventory, info, options, jsonl, count))
    except WorkerError as exc:
        ctx.exit(
            fail(
                f"{exc}; scan {info.id} is interrupted: "
                f"'rdptrust scan --resume {info.id}' continues it",
                EXIT_TEMPFAIL,
            )
        )
        return
    except StoreError as exc:
        store_failure(exc)
        return
    except UsageError as exc:
        ctx.exit(fail(str(exc), EXIT_USAGE))
        return
    line = (
        f"scan {summary.scan_id} {summary.status}: {summary.done} of {summary.targets} targets "
        f"recorded ({summary.recorded} now: {summary.ok} ok, {summary.errors} errors) in "
        f"{summary.elapsed_s:.1f} s, {summary.hosts_per_second:.0f} hosts/s"
        + (
            f" (paced to {summary.paced} hosts at once: this machine's CPU could not serve "
            f"--concurrency {options.concurrency} on time)"
            if summary.paced is not None
            else ""
        )
        + f"; inventory {inventory.path}"
    )
    if summary.interrupted:
        line += f"; continue with 'rdptrust scan --resume {summary.scan_id}'"
    if summary.local_limit is not None:
        click.echo(
            f"rdptrust: warning: {summary.local_limit}; lowered to {summary.concurrency} "
            f"hosts at once; {summary.unjudged} targets could not be judged and stay pending",
            err=True,
        )
    click.echo(line, err=jsonl or summary.interrupted)
    if summary.unjudged:
        ctx.exit(EXIT_TEMPFAIL)
    ctx.exit(EXIT_INTERRUPTED if summary.interrupted else EXIT_OK)
