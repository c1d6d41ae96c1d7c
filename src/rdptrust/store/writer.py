"""The inventory's writing half: transactions and migrations.

:class:`InventoryWriter` holds what every write needs: one transaction at a time, the
records staged for the next batch, and bringing the schema up to date
(:data:`rdptrust.store.schema.MIGRATIONS`, each in its own transaction, on SQLite and
PostgreSQL alike). :class:`~rdptrust.store.inventory.Inventory` builds the scans and
records on it; :mod:`rdptrust.store.queue` the shared queue, :mod:`rdptrust.store.retention`
the pruning.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rdptrust.errors import StoreError
from rdptrust.model.records import CertificateRecord
from rdptrust.store import postgres
from rdptrust.store.database import SQLITE, Backend
from rdptrust.store.queries import InventoryReader
from rdptrust.store.recording import Staged
from rdptrust.store.rows import now_text
from rdptrust.store.schema import MIGRATIONS, SCHEMA_VERSION, SQLITE_ONLY, SQLITE_REBUILDS


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


class InventoryWriter(InventoryReader):
    """An inventory connection that may write (see :class:`~rdptrust.store.inventory.Inventory`)."""

    def __init__(self, path: Path | str, connection: Any, backend: Backend = SQLITE) -> None:
        super().__init__(path, connection, backend)
        # Leaf certificates this connection knows are in the certificates table (written
        # or met by record()), so that a fleet sharing one is not inserted per host.
        # Forgotten whenever a rollback may have undone an insert.
        self._held: dict[str, CertificateRecord] = {}
        self._sites: dict[int, str | None] = {}
        # what scans have staged for the next flush (store/recording.py)
        self._staged: list[Staged] = []
        #: the schema version found when this inventory was opened (before migrating)
        self.migrated_from: int | None = None

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._backend.name

    def _table_names(self) -> set[str]:
        if isinstance(self._db, postgres.PostgresConnection):
            return self._db.table_names()
        return {r[0] for r in self._db.execute("SELECT name FROM sqlite_master")}

    def _check_schema(self) -> None:
        """For a read-only open: the schema must be this rdptrust's, as it cannot migrate."""
        tables = self._table_names()
        if "schema_migrations" not in tables:
            raise StoreError(f"{self.path} is not an rdptrust inventory (it has no schema)")
        current = self._db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0]
        if current != SCHEMA_VERSION:
            raise StoreError(
                f"inventory {self.path} has schema version {current}, this rdptrust reads "
                f"{SCHEMA_VERSION}; a scan with this rdptrust brings it up to date"
                if (current or 0) < SCHEMA_VERSION
                else f"inventory {self.path} has schema version {current}, newer than this "
                f"rdptrust knows ({SCHEMA_VERSION}); upgrade rdptrust"
            )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Any]:
        """One write transaction (on SQLite it takes the write lock at once). On any
        failure, the commit's own (a full disk) included, it is rolled back and the
        leaves remembered as stored are forgotten."""
        with self._mapped():
            if self._db.in_transaction:
                raise RuntimeError("a write transaction is already open on this connection")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._held.clear()
                with contextlib.suppress(*self._backend.errors):
                    self._db.execute("ROLLBACK")
                raise

    def _migrate(self) -> None:
        db = self._db
        pg = db if isinstance(db, postgres.PostgresConnection) else None
        create = (
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        if pg is not None:
            pg.execute_schema(create)
        else:
            db.execute(create)
        current = self._applied_version()
        self.migrated_from = current
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"inventory {self.path} has schema version {current}, newer than this rdptrust "
                f"knows ({SCHEMA_VERSION}); upgrade rdptrust"
            )
        while current < SCHEMA_VERSION:
            rebuild = pg is None and current + 1 in SQLITE_REBUILDS
            if rebuild:
                # outside a transaction (SQLite ignores it inside one)
                db.execute("PRAGMA foreign_keys = OFF")
            try:
                applied = self._migrate_one(pg, rebuild)
            finally:
                if rebuild:
                    db.execute("PRAGMA foreign_keys = ON")
            if applied is None:
                return
            current = applied

    def _migrate_one(self, pg: postgres.PostgresConnection | None, rebuild: bool) -> int | None:
        """Apply the next migration in its own transaction; its version, or None when
        another process brought the schema up to date meanwhile."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            if pg is not None:
                pg.lock_migrations()
            # another process may have migrated meanwhile: read again, under the lock
            current = self._applied_version()
            if current >= SCHEMA_VERSION:
                db.execute("COMMIT")
                return None
            version = current + 1
            if rebuild != (pg is None and version in SQLITE_REBUILDS):
                raise StoreError(
                    f"inventory {self.path} was migrated by another process meanwhile; "
                    "run the command again"
                )
            for statement in _statements(MIGRATIONS[version - 1]):
                if pg is not None:
                    if version not in SQLITE_ONLY:
                        pg.execute_schema(statement)
                else:
                    db.execute(statement)
            if rebuild:
                broken = db.execute("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise StoreError(
                        f"inventory {self.path}: migration {version} would break "
                        f"{len(broken)} references; nothing was changed"
                    )
            db.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                (version, now_text()),
            )
        except BaseException:
            with contextlib.suppress(*self._backend.errors):
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return version

    def _applied_version(self) -> int:
        row = self._db.execute(
            "SELECT COALESCE(MAX(version), 0) AS version FROM schema_migrations"
        ).fetchone()
        return int(row["version"])
