"""The ``--db`` and ``--site`` options and how the commands that use the inventory open it.

Kept apart from the inventory's listing commands (``hosts``, ``history``, ``report``) so
that ``scan``, ``worker`` and ``db`` do not import the report modules to start.
"""

from __future__ import annotations

from pathlib import Path

import click

from rdptrust.cli.exits import EXIT_NO_INPUT, fail, store_exit_code
from rdptrust.errors import StoreError, UsageError
from rdptrust.model.site import parse_site
from rdptrust.store.inventory import Inventory, default_path
from rdptrust.store.postgres import is_postgres

DB_HELP = (
    "Inventory: an SQLite file (default: inventory.sqlite3 in the user data directory) "
    "or a postgresql:// URL shared by several scanners; its password, if any, is best "
    "kept in PGPASSFILE (~/.pgpass) and is never shown or stored."
)
#: The ``--db`` option of every command that uses the inventory.
db_option = click.option(
    "--db", envvar="RDPTRUST_DB", show_envvar=True, metavar="FILE|URL", help=DB_HELP
)


def _site(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return parse_site(value)
    except UsageError as exc:
        raise click.BadParameter(str(exc)) from None


#: ``--site`` of the commands that read: only what was seen from that site.
site_filter_option = click.option(
    "--site",
    callback=_site,
    default=None,
    metavar="NAME",
    help="Only what was seen from this site (scan --site); default: every site.",
)


def open_inventory(db: str | None) -> Inventory:
    # a file or a postgresql:// URL: Inventory.open tells them apart
    return Inventory.open(db or None)


def open_to_read(db: str | None) -> Inventory:
    """The inventory of a command that only reads it: never created, opened read-only."""
    if db and is_postgres(db):
        return Inventory.open(db, read_only=True)
    return Inventory.open(_existing(db), read_only=True)


def open_existing(db: str | None) -> Inventory:
    """The inventory of a command that continues what it holds (``scan --resume``): never
    created, opened to write."""
    if db and is_postgres(db):
        return Inventory.open(db)
    return Inventory.open(_existing(db))


def _existing(db: str | None) -> Path:
    """The SQLite inventory file *db* names (None: the default); exit 66 when there is none."""
    path = Path(db) if db else default_path()
    if not path.exists():
        click.get_current_context().exit(
            fail(
                f"no inventory at {path}: 'rdptrust scan' creates one"
                + ("" if db else ", or give another with --db"),
                EXIT_NO_INPUT,
            )
        )
    return path


def store_failure(exc: StoreError) -> None:
    click.get_current_context().exit(fail(str(exc), store_exit_code(exc)))
