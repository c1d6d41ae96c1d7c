"""``rdptrust worker``: work the queued scans of one site, sharing them through the inventory."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import Callable

import click

from rdptrust.cli.common import FiniteRange, run
from rdptrust.cli.db_options import db_option, open_inventory, store_failure
from rdptrust.cli.exits import EXIT_OK, EXIT_USAGE, fail
from rdptrust.cli.scan import EXIT_INTERRUPTED
from rdptrust.cli.signals import stop_on_signals
from rdptrust.engine.queue import (
    DEFAULT_BATCH,
    DEFAULT_LEASE_S,
    DEFAULT_POLL_S,
    WorkSummary,
    work_queue,
    worker_name,
)
from rdptrust.engine.scan_options import ScanOptions, fit_concurrency
from rdptrust.errors import StoreError, UsageError
from rdptrust.model.records import ObservationRecord, ScanInfo
from rdptrust.model.site import parse_site
from rdptrust.report.inventory import observation_document
from rdptrust.report.jsonform import dumps
from rdptrust.store.inventory import Inventory, default_site, machine_name


@click.command(
    epilog="""\b
Examples:
  rdptrust scan --queue --site branch-2 -i branch-2.txt --diagnose   # anywhere, once
  rdptrust worker --site branch-2              # on each scanner in branch-2, as a service
  rdptrust worker --site hq --exit-when-idle   # work what is queued for hq, then stop

\b
Workers share the inventory's queue: each claims a batch of a queued scan's targets for a
lease, renewed while it works; a worker that is killed (or a machine that is gone) holds
its batch only until the lease passes, and another worker takes what was not recorded.
On PostgreSQL, workers on any number of machines share one queue (SELECT ... FOR UPDATE
SKIP LOCKED); on an SQLite file, the worker processes of one machine do.

\b
Exit codes: 0 stopped when idle (--exit-when-idle), 64 usage error, 69 the PostgreSQL
server cannot be reached, 74 the inventory cannot be used, 130 interrupted (Ctrl-C or
SIGTERM; the batch in hand goes back to the queue).""",
)
@db_option
@click.option(
    "--site",
    envvar="RDPTRUST_SITE",
    show_envvar=True,
    default=None,
    metavar="NAME",
    help="The site whose queued scans this worker works [default: this machine's name].",
)
@click.option(
    "--batch",
    type=click.IntRange(1, 100000),
    default=DEFAULT_BATCH,
    show_default=True,
    help="Targets claimed at a time.",
)
@click.option(
    "--lease",
    "lease_s",
    type=FiniteRange(min=1, max=86400),
    default=DEFAULT_LEASE_S,
    show_default=True,
    help="Seconds a claim lasts if this worker stops renewing it (killed, machine gone).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 10000),
    default=None,
    help="Hosts probed at the same time [default: the queued scan's own].",
)
@click.option(
    "--exit-when-idle",
    is_flag=True,
    help="Stop when nothing is queued for the site (default: wait for more).",
)
@click.option(
    "--poll",
    "poll_s",
    type=FiniteRange(min=0.1, max=3600),
    default=DEFAULT_POLL_S,
    show_default=True,
    help="Seconds between looks at an empty queue.",
)
@click.option(
    "--jsonl",
    is_flag=True,
    help="Print one JSON object per host recorded (schema rdptrust.scan-host/2).",
)
def worker(
    db: str | None,
    site: str | None,
    batch: int,
    lease_s: float,
    concurrency: int | None,
    exit_when_idle: bool,
    poll_s: float,
    jsonl: bool,
) -> None:
    """Scan the targets queued for one site (rdptrust scan --queue), with other workers."""
    ctx = click.get_current_context()
    try:
        name = parse_site(site) if site is not None else default_site()
    except UsageError as exc:
        raise click.BadParameter(str(exc), param_hint="--site") from None
    try:
        inventory = open_inventory(db)
    except StoreError as exc:
        store_failure(exc)
        return
    me = worker_name(machine_name())

    def options_for(scan: ScanInfo) -> ScanOptions:
        options = ScanOptions.from_json(scan.options)
        if concurrency is not None:
            options = dataclasses.replace(options, concurrency=concurrency)
        return dataclasses.replace(options, concurrency=fit_concurrency(options))

    def on_result(record: ObservationRecord) -> None:
        if jsonl:
            sys.stdout.write(dumps(observation_document(record), pretty=False) + "\n")
            sys.stdout.flush()

    def on_error(message: str) -> None:
        click.echo(f"rdptrust: warning: {message}; the batch goes back to the queue", err=True)

    try:
        with inventory:
            summary, stopped = run(
                _work(
                    inventory,
                    name,
                    me,
                    options_for,
                    batch,
                    lease_s,
                    poll_s,
                    exit_when_idle,
                    on_result,
                    on_error,
                )
            )
    except StoreError as exc:
        store_failure(exc)
        return
    except UsageError as exc:
        ctx.exit(fail(str(exc), EXIT_USAGE))
        return
    click.echo(
        f"worker {me} (site {name}): {summary.batches} batches, {summary.recorded} targets "
        f"recorded ({summary.ok} ok, {summary.errors} errors)"
        + (f", {summary.taken} taken over by other workers" if summary.taken else "")
        + (
            f"; paced to {summary.paced} hosts at once (this machine's CPU could not serve "
            "more on time)"
            if summary.paced is not None
            else ""
        )
        + (
            f"; scans finished: {', '.join(map(str, summary.finished_scans))}"
            if summary.finished_scans
            else ""
        ),
        err=True,
    )
    ctx.exit(EXIT_INTERRUPTED if stopped else EXIT_OK)


async def _work(
    inventory: Inventory,
    site: str,
    me: str,
    options_for: Callable[[ScanInfo], ScanOptions],
    batch: int,
    lease_s: float,
    poll_s: float,
    exit_when_idle: bool,
    on_result: Callable[[ObservationRecord], None],
    on_error: Callable[[str], None],
) -> tuple[WorkSummary, bool]:
    stop = asyncio.Event()
    with stop_on_signals(stop):
        summary = await work_queue(
            inventory,
            site=site,
            worker=me,
            options_for=options_for,
            batch=batch,
            lease_s=lease_s,
            poll_s=poll_s,
            exit_when_idle=exit_when_idle,
            stop=stop,
            on_result=on_result,
            on_error=on_error,
        )
    return summary, stop.is_set()
