"""``rdptrust hosts``, ``rdptrust history`` and ``rdptrust report``: reading the inventory."""

from __future__ import annotations

import functools
import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from rdptrust.cli.common import console, stdout_is_terminal
from rdptrust.cli.db_options import db_option, open_to_read, site_filter_option, store_failure
from rdptrust.cli.exits import EXIT_USAGE, fail
from rdptrust.errors import StoreError, UsageError
from rdptrust.files import write_atomic_lines
from rdptrust.model.target import (
    Target,
    canonical_host,
    parse_target,
)
from rdptrust.report.hosts import NO_HOSTS, render_hosts, write_hosts_text
from rdptrust.report.inventory import (
    csv_rows,
    history_document,
    observation_document,
    write_hosts_json,
)
from rdptrust.report.inventory_text import (
    render_history,
    render_site_differences,
    write_history_text,
)
from rdptrust.report.jsonform import dumps
from rdptrust.report.sites import SiteDifferences, write_site_differences


def write_lines(destination: str, lines: Iterator[str]) -> Path | None:
    if destination == "-":
        for line in lines:
            sys.stdout.write(line)
        sys.stdout.flush()
        return None
    return write_atomic_lines(destination, lines)


@click.command(
    epilog="""\b
Examples:
  rdptrust hosts
  rdptrust hosts --db fleet.sqlite3 --json | jq '.hosts[].target'
  rdptrust hosts --site branch-2

\b
A host scanned from several sites (scan --site) has a row per site; those the sites see
differently (a stall from one, none from another) are listed after the table.

\b
Exit codes: 0 listed, 66 no inventory there (it is never created), 74 it cannot be read.""",
)
@db_option
@site_filter_option
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print JSON (schema rdptrust.hosts/2), one host per line.",
)
def hosts(db: str | None, site: str | None, as_json: bool) -> None:
    """List every host in the inventory with its latest state and certificate."""
    # one batch of hosts at a time, printed as it is read: a fleet of any size fits in memory
    try:
        with open_to_read(db) as inventory:
            found = itertools.chain.from_iterable(inventory.host_batches(site=site))
            if as_json:
                write_hosts_json(found, sys.stdout)
            else:
                host, name = inventory.longest_names()
                at_least = (host, 0, 0, name)
                empty = NO_HOSTS
                if site is not None:
                    empty = (
                        f"The inventory holds no host scanned from site {site!r};"
                        " 'rdptrust hosts' without --site lists every site's."
                    )
                differences = SiteDifferences()
                watched = differences.watch(found)
                if stdout_is_terminal():
                    out = console()
                    render_hosts(watched, out, at_least=at_least, empty=empty)
                    render_site_differences(differences.found, out)
                else:
                    write_hosts_text(watched, sys.stdout, at_least=at_least, empty=empty)
                    write_site_differences(differences.found, sys.stdout)
            sys.stdout.flush()
    except StoreError as exc:
        store_failure(exc)


def _history_target(text: str) -> Target:
    try:
        target = parse_target(text)
    except UsageError as exc:
        raise click.BadParameter(str(exc)) from None
    return Target(canonical_host(target.host), target.port)


@click.command(
    epilog="""\b
Examples:
  rdptrust history rdp01
  rdptrust history 10.0.0.5:3390 --json
  rdptrust history rdp01 --site hq

\b
Exit codes: 0 shown, 64 the inventory never saw the host, 66 no inventory there (it is never
created), 74 it cannot be read.""",
)
@click.argument("target", metavar="HOST[:PORT]")
@db_option
@site_filter_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON (schema rdptrust.history/2).")
def history(target: str, db: str | None, site: str | None, as_json: bool) -> None:
    """Show one host's certificate history and events (first seen, changes, reachability).

    Every site that scanned it is shown, or one (--site).
    """
    parsed = _history_target(target)
    try:
        with open_to_read(db) as inventory:
            found = inventory.history(parsed, site=site)
    except StoreError as exc:
        store_failure(exc)
        return
    except UsageError as exc:
        click.get_current_context().exit(fail(str(exc), EXIT_USAGE))
        return
    if as_json:
        click.echo(dumps(history_document(found)))
    elif stdout_is_terminal():
        render_history(found, console())
    else:
        write_history_text(found, sys.stdout)
        sys.stdout.flush()


@click.command(
    epilog="""\b
Examples:
  rdptrust report --html fleet.html
  rdptrust report --db fleet.sqlite3 --csv fleet.csv --scan 4
  rdptrust report --jsonl - | jq -c 'select(.certificate.self_signed)'

\b
Without --scan the report holds each host's latest observation across all scans, one per
site that scanned it (--site: that site's only); the HTML report compares the sites' views
of each host seen from more than one.

\b
Exit codes: 0 written, 64 usage error, 66 no inventory there (it is never created),
73 the output file cannot be created, 74 reading or writing failed.""",
)
@db_option
@click.option(
    "--html",
    "html_file",
    type=click.Path(dir_okay=False),
    help="Write one self-contained HTML file.",
)
@click.option(
    "--csv",
    "csv_file",
    type=click.Path(dir_okay=False),
    help="Write CSV ('-' for standard output).",
)
@click.option(
    "--jsonl",
    "jsonl_file",
    type=click.Path(dir_okay=False),
    help="Write one JSON object per host, schema rdptrust.scan-host/2 ('-' for standard output).",
)
@click.option(
    "--scan", "scan_id", type=click.IntRange(min=1), default=None, help="Report this scan only."
)
@site_filter_option
def report(
    db: str | None,
    site: str | None,
    html_file: str | None,
    csv_file: str | None,
    jsonl_file: str | None,
    scan_id: int | None,
) -> None:
    """Write the inventory as an HTML report, CSV or JSON lines."""
    chosen = [f for f in (html_file, csv_file, jsonl_file) if f]
    if len(chosen) != 1:
        raise click.UsageError("give exactly one of --html FILE, --csv FILE or --jsonl FILE")
    from rdptrust.report.html import MAX_EVENTS, write_html_report

    try:
        with open_to_read(db) as inventory:
            shown = inventory.scan(scan_id) if scan_id is not None else None
            path: Path | None
            if html_file:
                path = write_html_report(
                    Path(html_file),
                    functools.partial(
                        inventory.observations, scan_id=scan_id, latest_per_host=True, site=site
                    ),
                    inventory.events(scan_id=scan_id, limit=MAX_EVENTS, site=site),
                    scan=shown or inventory.latest_scan(),
                    scan_id=scan_id,
                )
            else:
                records = inventory.observations(scan_id=scan_id, latest_per_host=True, site=site)
                lines: Iterator[str]
                if csv_file:
                    lines = csv_rows(records)
                    destination = csv_file
                else:
                    lines = (dumps(observation_document(r), pretty=False) + "\n" for r in records)
                    destination = str(jsonl_file)
                path = write_lines(destination, lines)
    except StoreError as exc:
        store_failure(exc)
        return
    except UsageError as exc:
        click.get_current_context().exit(fail(str(exc), EXIT_USAGE))
        return
    if path is not None:
        click.echo(f"wrote {path}", err=True)
