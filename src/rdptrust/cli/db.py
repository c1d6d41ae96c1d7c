"""``rdptrust db``: the inventory's schema, its size, and how long it keeps observations."""

from __future__ import annotations

import click

from rdptrust.cli.common import FiniteRange, console
from rdptrust.cli.db_options import db_option, open_inventory, open_to_read, store_failure
from rdptrust.errors import StoreError
from rdptrust.report.jsonform import dumps, timestamp
from rdptrust.store.inventory import Inventory
from rdptrust.store.retention import PruneResult
from rdptrust.store.schema import SCHEMA_VERSION

DB_SCHEMA = "rdptrust.db/1"


@click.group(
    epilog="""\b
Examples:
  rdptrust db check
  rdptrust db migrate --db postgresql://rdptrust@db.example.net/rdptrust
  RDPTRUST_DB=postgresql://rdptrust@db.example.net/rdptrust rdptrust db prune --keep-days 90

\b
Exit codes: 0 done, 64 bad arguments, 66 no inventory there (check and prune never create
one), 69 the PostgreSQL server cannot be reached or refused the login, 74 the inventory
cannot be read or written (locked, read-only, corrupt, from a newer rdptrust)."""
)
def db() -> None:
    """The inventory database: bring its schema up to date, check it, prune old rows.

    The inventory is an SQLite file (the default) or a PostgreSQL database
    (--db postgresql://… or RDPTRUST_DB) that several scanners share.
    """


def _document(
    inventory: Inventory, *, migrated_from: int | None, pruned: tuple[float, PruneResult] | None
) -> dict[str, object]:
    scans = {"running": 0, "interrupted": 0, "done": 0}
    for scan in inventory.scans():
        scans[scan.status] = scans.get(scan.status, 0) + 1
    return {
        "schema": DB_SCHEMA,
        "backend": inventory.backend,
        "location": str(inventory.path),
        "schema_version": inventory.schema_version,
        "current_version": SCHEMA_VERSION,
        "migrated_from": migrated_from,
        "counts": inventory.counts(),
        "scans": scans,
        "pruned": None
        if pruned is None
        else {
            "keep_days": pruned[0],
            "cutoff": timestamp(pruned[1].cutoff),
            "deleted_observations": pruned[1].observations,
            "deleted_problems": pruned[1].problems,
            "deleted_certificates": pruned[1].certificates,
        },
    }


def _show(document: dict[str, object], as_json: bool) -> None:
    if as_json:
        click.echo(dumps(document))
        return
    out = console()
    out.print(
        f"inventory {document['location']} ({document['backend']}): schema version "
        f"{document['schema_version']} (this rdptrust writes {document['current_version']})",
        markup=False,
        highlight=False,
    )
    counts = document["counts"]
    assert isinstance(counts, dict)
    out.print(
        "  " + ", ".join(f"{n} {t}" for t, n in counts.items()), markup=False, highlight=False
    )
    scans = document["scans"]
    assert isinstance(scans, dict)
    out.print(
        "  scans: " + ", ".join(f"{n} {s}" for s, n in scans.items()), markup=False, highlight=False
    )


_json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON (schema rdptrust.db/1)."
)


@db.command(
    epilog="""\b
Examples:
  rdptrust db migrate
  rdptrust db migrate --db postgresql://rdptrust@db.example.net/rdptrust --json"""
)
@db_option
@_json_option
def migrate(db: str | None, as_json: bool) -> None:
    """Create the inventory or bring its schema up to date (every command that writes
    does this too; run it once before several scanners start on a new database)."""
    try:
        with open_inventory(db) as inventory:
            document = _document(inventory, migrated_from=inventory.migrated_from, pruned=None)
    except StoreError as exc:
        store_failure(exc)
        return
    if not as_json:
        before, now = document["migrated_from"], document["schema_version"]
        click.echo(
            f"schema version {now}: already up to date"
            if before == now
            else f"schema version {before} -> {now}: migrated"
        )
    _show(document, as_json)


@db.command(
    epilog="""\b
Examples:
  rdptrust db check
  rdptrust db check --db fleet.sqlite3 --json | jq .counts"""
)
@db_option
@_json_option
def check(db: str | None, as_json: bool) -> None:
    """Show the inventory's schema version and how many rows each table holds (read-only:
    an inventory from another rdptrust version is an error that says which)."""
    try:
        with open_to_read(db) as inventory:
            document = _document(inventory, migrated_from=None, pruned=None)
    except StoreError as exc:
        store_failure(exc)
        return
    _show(document, as_json)


@db.command(
    epilog="""\b
Each host keeps its newest observation, however old; events and scans are always kept.

\b
Examples:
  rdptrust db prune --keep-days 90
  rdptrust db prune --keep-days 30 --db postgresql://rdptrust@db.example.net/rdptrust"""
)
@db_option
@click.option(
    "--keep-days",
    type=FiniteRange(min=0, max=36500),
    required=True,
    help="Delete observations older than this many days (0 to 36500).",
)
@_json_option
def prune(db: str | None, keep_days: float, as_json: bool) -> None:
    """Delete old observations (and certificates nothing names any more)."""
    try:
        open_to_read(db).close()  # an inventory that is not there is not created
        with open_inventory(db) as inventory:
            result = inventory.prune(keep_days)
            document = _document(inventory, migrated_from=None, pruned=(keep_days, result))
    except StoreError as exc:
        store_failure(exc)
        return
    if not as_json:
        click.echo(
            f"pruned {result.observations} observations from before "
            f"{timestamp(result.cutoff)} and {result.certificates} certificates"
        )
    _show(document, as_json)
