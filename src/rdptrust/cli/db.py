"""``rdptrust db``: the inventory's schema, its size, and how long it keeps observations."""

from __future__ import annotations

import click

from rdptrust.cli.common import FiniteRange, console
from rdptrust.cli.db_options import db_option, open_inventory, open_to_read, store_failure
from rdptrust.cli.exits import EXIT_IO_ERROR, fail
from rdptrust.errors import StoreError
from rdptrust.model.text import safe_text
from rdptrust.report.jsonform import dumps, timestamp
from rdptrust.store.inventory import Inventory
from rdptrust.store.retention import PruneResult
from rdptrust.store.schema import SCHEMA_VERSION

DB_SCHEMA = "rdptrust.db/1"
QUICK_CHECK = "PRAGMA quick_check"


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
    inventory: Inventory,
    *,
    migrated_from: int | None,
    pruned: tuple[float, PruneResult] | None,
    checked: bool = False,
    integrity: list[str] | None = None,
) -> dict[str, object]:
    """The rdptrust.db/1 document; when *checked* (``db check``), *integrity* is what it
    found: a list of problems, None where the backend checks its own pages."""
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
        "integrity": None
        if not checked
        else {
            "checked_with": None if integrity is None else QUICK_CHECK,
            "ok": None if integrity is None else not integrity,
            "found": integrity or [],
        },
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
    integrity = document.get("integrity")
    if isinstance(integrity, dict):
        _show_integrity(integrity)


def _show_integrity(integrity: dict[str, object]) -> None:
    out = console()
    if integrity["ok"] is None:
        line = "  integrity: not checked here (PostgreSQL checks its own pages)"
    elif integrity["ok"]:
        line = f"  integrity: ok ({integrity['checked_with']})"
    else:
        problems = integrity["found"]
        assert isinstance(problems, list)
        line = f"  integrity: {integrity['checked_with']} found problems:\n" + "\n".join(
            f"    {safe_text(str(p))}" for p in problems
        )
    out.print(line, markup=False, highlight=False)


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
    """Show the inventory's schema version and how many rows each table holds, and check
    its pages (read-only: an inventory from another rdptrust version is an error that says
    which; a damaged one is exit 74 with what SQLite's quick_check found)."""
    try:
        with open_to_read(db) as inventory:
            problems = inventory.integrity()
            location = inventory.path
            try:
                document: dict[str, object] | None = _document(
                    inventory, migrated_from=None, pruned=None, checked=True, integrity=problems
                )
            except StoreError:
                if not problems:
                    raise
                document = None  # too damaged to count: say what quick_check found
    except StoreError as exc:
        store_failure(exc)
        return
    if document is not None:
        _show(document, as_json)
    elif not as_json:
        click.echo(f"inventory {location}: too damaged to count its rows")
        _show_integrity({"checked_with": QUICK_CHECK, "ok": False, "found": problems})
    if problems:
        click.get_current_context().exit(
            fail(
                f"inventory {location} is damaged: {QUICK_CHECK} found "
                f"{len(problems)}{'+' if len(problems) >= 10 else ''} problems; restore it "
                "from a copy, or move it aside and scan again into a new one",
                EXIT_IO_ERROR,
            )
        )


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
