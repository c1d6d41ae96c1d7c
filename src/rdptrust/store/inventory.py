"""The inventory: scans, hosts, certificates, observations, problems and events.

One :class:`Inventory` wraps one database: an SQLite file (the default,
``platformdirs.user_data_dir("rdptrust")/inventory.sqlite3``) or, for a fleet shared by
several scanners, a PostgreSQL database named by a ``postgresql://`` URL
(:mod:`rdptrust.store.postgres`): the same schema, migrations and queries on both. On
SQLite it runs in WAL mode with
``synchronous=NORMAL``: a process killed at any moment loses no committed transaction.
A scan stages each finished target (:meth:`Inventory.stage`) and :meth:`Inventory.flush`
stores the staged batch in one transaction, with the same few statements whatever its
size (:mod:`rdptrust.store.recording`), that also marks its targets done; so a scan
killed midway loses only the targets in flight or staged, which stay pending, and never
records one twice.

The inventory persists and queries; it does not judge. What a record needs to have
computed (a new leaf's facts, the probe's findings) is handed to :meth:`Inventory.stage`
by the scan. The queries are :class:`~rdptrust.store.queries.InventoryReader`'s, the
SQL and row mapping live in :mod:`rdptrust.store.rows`, the events in
:mod:`rdptrust.store.events`.

Every database failure becomes a :class:`~rdptrust.errors.StoreError` with one line a user
can act on (locked, read-only, corrupt, disk full).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Generator, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import platformdirs

from rdptrust.errors import AlreadyRecorded, StoreError, UsageError
from rdptrust.model.outcome import ProbeFailure
from rdptrust.model.probe import ProbeResult
from rdptrust.model.records import (
    CertificateEntry,
    DiagnosisRecord,
    Flushed,
    ObservationRecord,
    ProblemRecord,
    ScanInfo,
)
from rdptrust.model.site import SITE_PATTERN
from rdptrust.model.target import Target
from rdptrust.store import postgres
from rdptrust.store.database import connect, postgres_backend, process_alive
from rdptrust.store.queue import QueueStore
from rdptrust.store.recording import Staged, postgres_ids, sqlite_ids, write_batch
from rdptrust.store.retention import RetentionStore
from rdptrust.store.rows import INSERT_TARGET, now_text, sha256_hex
from rdptrust.store.schema import SCHEMA_VERSION

DATABASE_NAME = "inventory.sqlite3"
#: Targets inserted per transaction while a scan's target list is written.
_INSERT_BATCH = 5000
#: Pending targets read per query while a scan runs.
_PENDING_BATCH = 512
#: Seconds to wait for another process's write lock before giving up.
LOCK_TIMEOUT = 10.0


def machine_name() -> str:
    """This machine's name, as a scan records where it ran (and the default site)."""
    return socket.gethostname() or "localhost"


def default_site() -> str:
    """This machine's name (its first label), as the site of a scan that names none."""
    name = machine_name().split(".")[0]
    return name if SITE_PATTERN.fullmatch(name) else "local"


def default_path() -> Path:
    """Where the inventory lives unless ``--db`` says otherwise."""
    return Path(platformdirs.user_data_dir("rdptrust")) / DATABASE_NAME


class Inventory(QueueStore, RetentionStore):
    """One open inventory database. Use as a context manager, or call :meth:`close`.

    Not thread-safe: use it from one thread (the scan engine calls it from its event
    loop between awaits).
    """

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        lock_timeout: float = LOCK_TIMEOUT,
        read_only: bool = False,
    ) -> Inventory:
        """Open (creating if needed) the inventory at *path* and bring its schema up to date.

        *path* is an SQLite file, or a ``postgresql://`` URL of an existing database
        (its tables are created by the first open that may write).

        A write waits up to *lock_timeout* seconds for another process's write to end.
        With *read_only*, nothing is created or migrated (SQLite ``mode=ro``): a missing
        file, a symbolic link, a file that is not SQLite, or one whose schema is not this
        rdptrust's, is a StoreError (:func:`rdptrust.store.database.connect`).
        """
        if path is not None and postgres.is_postgres(os.fspath(path)):
            return cls._open_postgres(
                os.fspath(path), lock_timeout=lock_timeout, read_only=read_only
            )
        where = Path(path) if path is not None else default_path()
        if not read_only:
            try:
                where.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the directory for inventory {where}: {exc.strerror or exc}"
                ) from None
        if where.is_dir():
            raise StoreError(f"inventory {where} is a directory; give a file name with --db")
        db = connect(where, read_only=read_only, lock_timeout=lock_timeout)
        inventory = cls(where, db)
        try:
            with inventory._mapped():
                db.execute("PRAGMA foreign_keys = ON")
                if read_only:
                    inventory._check_schema()
                    return inventory
                # A read-only file cannot switch its journal; writes then fail with a
                # clear message, reads still work.
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("PRAGMA synchronous = NORMAL")
                inventory._migrate()
                if inventory.migrated_from != SCHEMA_VERSION:
                    inventory._checkpoint()
        except BaseException:
            db.close()
            raise
        return inventory

    @classmethod
    def _open_postgres(cls, url: str, *, lock_timeout: float, read_only: bool) -> Inventory:
        db = postgres.connect(url, read_only=read_only, lock_timeout=lock_timeout)
        inventory = cls(postgres.display_location(url), db, postgres_backend())
        try:
            with inventory._mapped():
                if read_only:
                    inventory._check_schema()
                else:
                    inventory._migrate()
        except BaseException:
            db.close()
            raise
        return inventory

    # --- scans ----------------------------------------------------------------------

    def create_scan(
        self,
        arguments: Sequence[str],
        options: Mapping[str, Any],
        targets: Iterable[Target],
        *,
        site: str | None = None,
        queued: bool = False,
    ) -> ScanInfo:
        """Start a scan: write its row and its whole target list, in one transaction.

        *site* names where it runs (the network its clients sit on); each observation
        of the scan keeps it. A *queued* scan belongs to no process: ``rdptrust worker``
        processes of its site claim its targets (:meth:`claim_targets`).

        *targets* is consumed lazily; a :class:`UsageError` raised while reading it (a
        bad line in a target file) leaves nothing behind. Duplicates are ignored.
        """
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO scans (started_at, status, arguments, options, pid, site, machine, "
                "queued) VALUES (?, 'running', ?, ?, ?, ?, ?, ?)",
                (
                    now_text(),
                    json.dumps(list(arguments)),
                    json.dumps(dict(options)),
                    None if queued else os.getpid(),
                    site,
                    machine_name(),
                    int(queued),
                ),
            )
            scan_id = int(cursor.lastrowid or 0)
            seq = 0
            batch: list[tuple[int, int, str, int]] = []
            for target in targets:
                batch.append((scan_id, seq, target.host, target.port))
                seq += 1
                if len(batch) >= _INSERT_BATCH:
                    db.executemany(INSERT_TARGET, batch)
                    batch.clear()
            if batch:
                db.executemany(INSERT_TARGET, batch)
            count = db.execute(
                "SELECT COUNT(*) AS count FROM scan_targets WHERE scan_id = ?", (scan_id,)
            ).fetchone()["count"]
            if count == 0:
                raise UsageError("no targets to scan")
            db.execute("UPDATE scans SET target_count = ? WHERE id = ?", (count, scan_id))
        self._checkpoint()
        return self.scan(scan_id)

    def _checkpoint(self) -> None:
        """On SQLite, move the write-ahead log into the database and truncate it, after a
        large write (migrations, a scan's target list): the log would otherwise keep
        the space of all of it until SQLite's automatic checkpoint at 1,000 pages, and
        records would be written after it. Nothing on PostgreSQL; a checkpoint that
        another connection's reading keeps from finishing is left to SQLite."""
        if self._backend.name == "sqlite":
            with self._mapped():
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def claim_scan(self, scan_id: int) -> ScanInfo:
        """Mark an unfinished scan as running in this process, to resume it."""
        info = self.scan(scan_id)
        if info.status == "done":
            raise UsageError(f"scan {scan_id} is already done; nothing to resume")
        if info.queued:
            raise UsageError(
                f"scan {scan_id} is queued: 'rdptrust worker --site {info.site}' works it"
            )
        here = machine_name()
        if info.status == "running" and info.pid and info.pid != os.getpid():
            if info.machine not in (None, here):
                raise UsageError(
                    f"scan {scan_id} is marked running on {info.machine} (process {info.pid}); "
                    "resume it there, or wait until it ends"
                )
            if process_alive(info.pid):
                raise UsageError(f"scan {scan_id} is still running in process {info.pid}")
        with self._transaction() as db:
            db.execute(
                "UPDATE scans SET status = 'running', pid = ?, machine = ?, finished_at = NULL "
                "WHERE id = ?",
                (os.getpid(), here, scan_id),
            )
        return self.scan(scan_id)

    def finish_scan(self, scan_id: int, status: str) -> None:
        """Set the scan's final status: ``done`` or ``interrupted``."""
        if status not in ("done", "interrupted"):
            raise ValueError(status)
        with self._transaction() as db:
            db.execute(
                "UPDATE scans SET status = ?, finished_at = ? WHERE id = ?",
                (status, now_text() if status == "done" else None, scan_id),
            )

    def pending_targets(self, scan_id: int) -> Generator[tuple[int, Target], None, None]:
        """Yield ``(seq, target)`` of each pending target, in order, a batch at a time.

        A target yielded stays pending until :meth:`record` stores it, and is not
        yielded again by this iterator.
        """
        last = -1
        while True:
            with self._mapped():
                rows = self._db.execute(
                    "SELECT seq, host, port FROM scan_targets "
                    "WHERE scan_id = ? AND state = 'pending' AND seq > ? ORDER BY seq LIMIT ?",
                    (scan_id, last, _PENDING_BATCH),
                ).fetchall()
            if not rows:
                return
            for row in rows:
                last = row["seq"]
                yield last, Target(row["host"], row["port"])

    def _scan_site(self, scan_id: int) -> str | None:
        if scan_id not in self._sites:
            if len(self._sites) > 64:
                self._sites.clear()
            with self._mapped():
                row = self._db.execute("SELECT site FROM scans WHERE id = ?", (scan_id,)).fetchone()
            self._sites[scan_id] = row["site"] if row is not None else None
        return self._sites[scan_id]

    # --- recording ------------------------------------------------------------------

    def stage(
        self,
        scan_id: int,
        seq: int,
        target: Target,
        probe: ProbeResult | None,
        *,
        failure: ProbeFailure | None = None,
        diagnosis: DiagnosisRecord | None = None,
        certificate: CertificateEntry | None = None,
        problems: Sequence[ProblemRecord] = (),
    ) -> None:
        """Keep what a scan saw of one target for the next :meth:`flush`, which stores it
        and marks the target done. Until then it is in this process's memory only: a
        crash loses it, and the target, still pending, is simply probed again on resume.

        *probe* is None when there is no probe result (the host's deadline passed);
        *failure* then says why. *certificate* is what was read of ``probe.leaf``, kept unless
        the inventory holds that certificate already; without it the leaf must be held
        already (ValueError at the flush otherwise). The problems stored are those of
        *diagnosis* followed by *problems*.
        """
        if probe is None and failure is None:
            raise ValueError("record needs a probe result or a failure")
        error = failure if failure is not None else probe.error if probe is not None else None
        leaf = probe.leaf if probe is not None and probe.leaf else None
        self._staged.append(
            Staged(
                scan_id=scan_id,
                seq=seq,
                target=target,
                probe=probe,
                error=error,
                diagnosis=diagnosis,
                certificate=certificate,
                problems=(*(diagnosis.problems if diagnosis is not None else ()), *problems),
                leaf=leaf,
                leaf_sha=sha256_hex(leaf) if leaf else None,
                at=now_text(),
                site=self._scan_site(scan_id),
            )
        )

    @property
    def staged(self) -> int:
        """How many records :meth:`stage` keeps for the next :meth:`flush`."""
        return len(self._staged)

    def flush(self) -> Flushed:
        """Store every staged record in one transaction, with a few statements for the
        whole batch (:mod:`rdptrust.store.recording`); what was stored.

        Events (first seen, certificate changed, reachability) are derived from each
        host's previous observation. A target already recorded (by another worker of a
        queued scan) is left out and listed in ``taken``. On any failure (a full disk, a
        target that is not the scan's) nothing of the batch is stored, its targets stay
        pending, and the staged records are dropped.
        """
        if not self._staged:
            return Flushed()
        items, self._staged = self._staged, []
        pg = self._backend.name == "postgresql"
        with self._transaction() as db:
            return write_batch(
                db,
                items,
                where=str(self.path),
                held=self._held,
                ids=postgres_ids(db) if pg else sqlite_ids(db),
                lock_rows=pg,
            )

    def record(
        self,
        scan_id: int,
        seq: int,
        target: Target,
        probe: ProbeResult | None,
        *,
        failure: ProbeFailure | None = None,
        diagnosis: DiagnosisRecord | None = None,
        certificate: CertificateEntry | None = None,
        problems: Sequence[ProblemRecord] = (),
    ) -> ObservationRecord:
        """Store what a scan saw of one target and mark the target done, atomically
        (:meth:`stage` then :meth:`flush`; a scan stages many per flush).

        Recording a target twice raises AlreadyRecorded and changes nothing.
        """
        self.stage(
            scan_id,
            seq,
            target,
            probe,
            failure=failure,
            diagnosis=diagnosis,
            certificate=certificate,
            problems=problems,
        )
        flushed = self.flush()
        if (scan_id, seq) in flushed.taken:
            raise AlreadyRecorded(
                f"inventory {self.path}: target {target} of scan {scan_id} is already recorded"
            )
        return flushed.records[-1]
