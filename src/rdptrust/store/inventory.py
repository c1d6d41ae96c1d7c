"""The inventory: scans, hosts, certificates, observations, problems and events in SQLite.

One :class:`Inventory` wraps one database file (default
``platformdirs.user_data_dir("rdptrust")/inventory.sqlite3``). It runs in WAL mode with
``synchronous=NORMAL``: a process killed at any moment loses no committed transaction,
and :meth:`Inventory.record` stores each finished target in the same transaction that
marks it done (a scan batches many targets per commit), so a scan killed midway loses
only the targets in flight or not yet committed, which stay pending, and never records
one twice.

Every SQLite failure becomes a :class:`~rdptrust.errors.StoreError` with one line a user
can act on (locked, read-only, corrupt, disk full).

Certificate changes are classified when they are recorded:

- ``recreation``: the old and new leaf are both self-signed, have the same subject and
  different keys, as when Windows recreates its RDP certificate every six months;
- ``ca-issued``: the new leaf is issued by a CA (an enrolment or a renewal);
- ``unexpected``: anything else (a self-signed certificate replacing a CA-issued one, a
  new subject): check the host, it may be an interception.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import sqlite3
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from rdptrust.errors import PkiError, StoreError, UsageError
from rdptrust.model.certificate import CertificateFacts
from rdptrust.model.outcome import ProbeFailure
from rdptrust.model.probe import ENUMERATION_REQUESTS, ProbeResult
from rdptrust.model.target import Target, canonical_host
from rdptrust.model.wire import SecurityProtocol
from rdptrust.pki.facts import certificate_facts, load_certificate
from rdptrust.pki.findings import LeafSummary, probe_findings
from rdptrust.store.schema import MIGRATIONS, SCHEMA_VERSION

DATABASE_NAME = "inventory.sqlite3"
#: Targets inserted per transaction while a scan's target list is written.
_INSERT_BATCH = 5000
#: Pending targets read per query while a scan runs.
_PENDING_BATCH = 512
#: Seconds to wait for another process's write lock before giving up.
LOCK_TIMEOUT = 10.0

SCAN_STATUSES = ("running", "interrupted", "done")
EVENT_KINDS = ("first-seen", "certificate-changed", "became-unreachable", "became-reachable")
CHANGE_CLASSES = ("recreation", "ca-issued", "unexpected")


def default_path() -> Path:
    """Where the inventory lives unless ``--db`` says otherwise."""
    return Path(platformdirs.user_data_dir("rdptrust")) / DATABASE_NAME


def _now() -> str:
    return _time(dt.datetime.now(dt.UTC))


def _time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> dt.datetime:
    """Read a timestamp as stored (ISO 8601, UTC)."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- values going in ----------------------------------------------------------------


@dataclass(frozen=True)
class DiagnosisRecord:
    """What a diagnosis of the host concluded, as stored with its observation.

    ``predicted_stall_s`` is None when the diagnosis could not predict one (no chain).
    ``retrievals`` holds the JSON form of each retrieval (purpose, url, outcome,
    elapsed_ms).
    """

    verdict: str
    predicted_stall_s: float | None
    problems: tuple[ProblemRecord, ...] = ()
    retrievals: tuple[Mapping[str, Any], ...] = ()


# --- values coming out --------------------------------------------------------------


@dataclass(frozen=True)
class ProblemRecord:
    """One problem found by a diagnosis: stable code, severity, message."""

    code: str
    severity: str
    message: str


@dataclass(frozen=True)
class CertificateRecord:
    """A leaf certificate as kept in the inventory.

    The date, key and name fields are None when the certificate could not be decoded
    (its DER is still kept); ``common_name`` is None also when the subject has no CN.
    ``sha1`` is the thumbprint Windows shows (lowercase hex); None only in a record
    made without its DER.
    """

    sha256: str
    subject: str
    issuer: str
    common_name: str | None
    self_signed: bool
    not_before: dt.datetime | None
    not_after: dt.datetime | None
    public_key_sha256: str | None
    key_type: str | None
    key_bits: int | None
    signature_hash: str | None
    first_seen: dt.datetime
    sha1: str | None = None


@dataclass(frozen=True)
class EventRecord:
    """Something that changed about a host between two scans.

    ``change`` is the class of a ``certificate-changed`` event (recreation, ca-issued,
    unexpected) and None for other kinds; ``old_sha256`` / ``new_sha256`` are None when
    no certificate is involved.
    """

    id: int
    scan_id: int
    host: str
    port: int
    at: dt.datetime
    kind: str
    change: str | None
    old_sha256: str | None
    new_sha256: str | None
    detail: str


@dataclass(frozen=True)
class ObservationRecord:
    """What one scan saw of one host.

    ``error_kind``/``error_message`` are None when the host was probed (``ok``).
    ``certificate`` is None when no TLS session was made. ``selected_protocol`` is
    None when the host refused what was asked (``negotiation_failure`` says how) or was
    not reached. ``protocols`` maps each enumerated protocol to accepted (True, False or
    None = unknown) and is empty when the scan did not enumerate; ``tls_versions`` the
    same for TLS versions. The timings are None for phases not reached. ``verdict``,
    ``predicted_stall_s`` and ``retrievals`` are None when the host was not diagnosed.
    """

    id: int
    scan_id: int
    host: str
    port: int
    observed_at: dt.datetime
    ok: bool
    error_kind: str | None
    error_message: str | None
    address: str | None
    selected_protocol: str | None
    negotiation_failure: str | None
    certificate: CertificateRecord | None
    chain: tuple[str, ...]
    tls_version: str | None
    tls_cipher: str | None
    protocols: Mapping[str, bool | None]
    tls_versions: Mapping[str, bool | None]
    connect_ms: float | None
    x224_ms: float | None
    tls_ms: float | None
    total_ms: float | None
    verdict: str | None
    predicted_stall_s: float | None
    retrievals: tuple[Mapping[str, Any], ...] | None
    problems: tuple[ProblemRecord, ...] = ()
    events: tuple[EventRecord, ...] = field(default=())
    #: NTLM host information (names, ``os_version``, ``server_time``); None when not asked.
    ntlm: Mapping[str, Any] | None = None

    @property
    def target(self) -> Target:
        return Target(self.host, self.port)


@dataclass(frozen=True)
class ScanInfo:
    """One scan run. ``finished_at`` is None while running or when it was killed."""

    id: int
    started_at: dt.datetime
    finished_at: dt.datetime | None
    status: str
    arguments: tuple[str, ...]
    options: Mapping[str, Any]
    pid: int | None
    target_count: int
    done_count: int


@dataclass(frozen=True)
class HostSummary:
    """A host's latest state: its last observation, and when it was first seen."""

    host: str
    port: int
    first_seen: dt.datetime
    observations: int
    latest: ObservationRecord


@dataclass(frozen=True)
class CertificateSpan:
    """A certificate a host presented, and the first and last time it was seen there."""

    certificate: CertificateRecord
    first_seen: dt.datetime
    last_seen: dt.datetime
    observations: int


@dataclass(frozen=True)
class HostHistory:
    """Everything the inventory knows about one host, oldest first."""

    host: str
    port: int
    first_seen: dt.datetime
    certificates: tuple[CertificateSpan, ...]
    observations: tuple[ObservationRecord, ...]
    events: tuple[EventRecord, ...]


# --- the database -------------------------------------------------------------------


def _describe(exc: sqlite3.Error, path: Path) -> str:
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    if name.startswith("SQLITE_BUSY") or "locked" in text:
        return f"inventory {path} is locked by another rdptrust process; try again when it ends"
    if name.startswith("SQLITE_READONLY") or "readonly" in text:
        return f"inventory {path} is read-only; make it writable or choose another with --db"
    if name.startswith("SQLITE_FULL") or "full" in text:
        return (
            f"the disk holding inventory {path} is full; free space and run again "
            "(completed results are kept)"
        )
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "not a database" in text:
        return (
            f"inventory {path} is corrupt or not an rdptrust inventory; move it aside "
            "or choose another with --db"
        )
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in text:
        return f"cannot open inventory {path}; check that its directory exists and is writable"
    if name.startswith("SQLITE_IOERR") or "disk I/O" in text:
        return f"inventory {path}: the disk reported an I/O error ({text})"
    return f"inventory {path}: {text}"


class Inventory:
    """One open inventory database. Use as a context manager, or call :meth:`close`.

    Not thread-safe: use it from one thread (the scan engine calls it from its event
    loop between awaits).
    """

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        lock_timeout: float = LOCK_TIMEOUT,
        read_only: bool = False,
    ) -> Inventory:
        """Open (creating if needed) the inventory at *path* and bring its schema up to date.

        A write waits up to *lock_timeout* seconds for another process's write to end.
        With *read_only*, nothing is created or migrated (SQLite ``mode=ro``): a missing
        file, or one whose schema is not this rdptrust's, is a StoreError.
        """
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
        try:
            if read_only:
                uri = where.resolve().as_uri() + "?mode=ro"
                db = sqlite3.connect(uri, uri=True, timeout=lock_timeout, isolation_level=None)
            else:
                db = sqlite3.connect(where, timeout=lock_timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(_describe(exc, where)) from None
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
        except BaseException:
            db.close()
            raise
        return inventory

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Inventory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _mapped(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(_describe(exc, self.path)) from exc

    @contextlib.contextmanager
    def _transaction(self, *, batched: bool = False) -> Iterator[sqlite3.Connection]:
        """One transaction; with *batched*, one savepoint in the open batch instead.

        A batched write joins (or begins) the batch transaction, which :meth:`commit`
        ends; if it fails, only its own savepoint is rolled back.
        """
        with self._mapped():
            if batched:
                if not self._db.in_transaction:
                    self._db.execute("BEGIN IMMEDIATE")
                self._db.execute("SAVEPOINT record")
                try:
                    yield self._db
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK TO record")
                        self._db.execute("RELEASE record")
                    raise
                self._db.execute("RELEASE record")
                return
            if self._db.in_transaction:
                raise RuntimeError("commit() the batched records before another write")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @property
    def uncommitted(self) -> bool:
        """Whether records made with ``commit=False`` wait for :meth:`commit`."""
        return self._db.in_transaction

    def commit(self) -> None:
        """Make the records written with ``commit=False`` durable (nothing when none wait).

        If the commit fails (a full disk), all of them are rolled back: their targets
        stay pending, as if they had never been recorded.
        """
        if not self._db.in_transaction:
            return
        try:
            with self._mapped():
                self._db.execute("COMMIT")
        except StoreError:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise

    def _check_schema(self) -> None:
        """For a read-only open: the schema must be this rdptrust's, as it cannot migrate."""
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master")}
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

    def _migrate(self) -> None:
        db = self._db
        db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        current = db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[
            0
        ]
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"inventory {self.path} has schema version {current}, newer than this rdptrust "
                f"knows ({SCHEMA_VERSION}); upgrade rdptrust"
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            db.execute("BEGIN IMMEDIATE")
            try:
                for statement in _statements(MIGRATIONS[version - 1]):
                    db.execute(statement)
                db.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                    (version, _now()),
                )
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    @property
    def schema_version(self) -> int:
        with self._mapped():
            return int(
                self._db.execute(
                    "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"
                ).fetchone()[0]
            )

    # --- scans ----------------------------------------------------------------------

    def create_scan(
        self,
        arguments: Sequence[str],
        options: Mapping[str, Any],
        targets: Iterable[Target],
    ) -> ScanInfo:
        """Start a scan: write its row and its whole target list, in one transaction.

        *targets* is consumed lazily; a :class:`UsageError` raised while reading it (a
        bad line in a target file) leaves nothing behind. Duplicates are ignored.
        """
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO scans (started_at, status, arguments, options, pid) "
                "VALUES (?, 'running', ?, ?, ?)",
                (_now(), json.dumps(list(arguments)), json.dumps(dict(options)), os.getpid()),
            )
            scan_id = int(cursor.lastrowid or 0)
            seq = 0
            batch: list[tuple[int, int, str, int]] = []
            for target in targets:
                batch.append((scan_id, seq, target.host, target.port))
                seq += 1
                if len(batch) >= _INSERT_BATCH:
                    db.executemany(_INSERT_TARGET, batch)
                    batch.clear()
            if batch:
                db.executemany(_INSERT_TARGET, batch)
            count = db.execute(
                "SELECT COUNT(*) FROM scan_targets WHERE scan_id = ?", (scan_id,)
            ).fetchone()[0]
            if count == 0:
                raise UsageError("no targets to scan")
            db.execute("UPDATE scans SET target_count = ? WHERE id = ?", (count, scan_id))
        return self.scan(scan_id)

    def scan(self, scan_id: int) -> ScanInfo:
        """The scan with id *scan_id*; UsageError when there is none."""
        with self._mapped():
            row = self._db.execute(_SCAN_SELECT + " WHERE s.id = ?", (scan_id,)).fetchone()
        if row is None:
            raise UsageError(f"inventory {self.path} holds no scan {scan_id}")
        return _scan_info(row)

    def scans(self) -> list[ScanInfo]:
        """Every scan, newest first."""
        with self._mapped():
            rows = self._db.execute(_SCAN_SELECT + " ORDER BY s.id DESC").fetchall()
        return [_scan_info(r) for r in rows]

    def latest_scan(self, *, resumable: bool = False) -> ScanInfo | None:
        """The newest scan; with *resumable*, the newest that did not finish."""
        where = " WHERE s.status != 'done'" if resumable else ""
        with self._mapped():
            row = self._db.execute(_SCAN_SELECT + where + " ORDER BY s.id DESC LIMIT 1").fetchone()
        return _scan_info(row) if row else None

    def claim_scan(self, scan_id: int) -> ScanInfo:
        """Mark an unfinished scan as running in this process, to resume it."""
        info = self.scan(scan_id)
        if info.status == "done":
            raise UsageError(f"scan {scan_id} is already done; nothing to resume")
        if info.status == "running" and info.pid and info.pid != os.getpid():
            if _process_alive(info.pid):
                raise UsageError(f"scan {scan_id} is still running in process {info.pid}")
        with self._transaction() as db:
            db.execute(
                "UPDATE scans SET status = 'running', pid = ?, finished_at = NULL WHERE id = ?",
                (os.getpid(), scan_id),
            )
        return self.scan(scan_id)

    def finish_scan(self, scan_id: int, status: str) -> None:
        """Set the scan's final status: ``done`` or ``interrupted``."""
        if status not in ("done", "interrupted"):
            raise ValueError(status)
        with self._transaction() as db:
            db.execute(
                "UPDATE scans SET status = ?, finished_at = ? WHERE id = ?",
                (status, _now() if status == "done" else None, scan_id),
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
            for seq, host, port in rows:
                last = seq
                yield seq, Target(host, port)

    # --- recording ------------------------------------------------------------------

    def record(
        self,
        scan_id: int,
        seq: int,
        target: Target,
        probe: ProbeResult | None,
        *,
        failure: ProbeFailure | None = None,
        diagnosis: DiagnosisRecord | None = None,
        commit: bool = True,
    ) -> ObservationRecord:
        """Store what a scan saw of one target and mark the target done, atomically.

        With *commit* False the record joins a batch that :meth:`commit` makes durable
        (one commit for many hosts is what lets a scan record hundreds per second);
        until then it is visible only to this connection, and a crash loses it together
        with its "done" mark, so the target is simply probed again on resume.

        *probe* is None when there is no probe result (the host's deadline passed);
        *failure* then says why. Events (first seen, certificate changed, reachability)
        are derived from the host's previous observation in the same transaction.
        Recording a target twice raises StoreError and changes nothing.
        """
        if probe is None and failure is None:
            raise ValueError("record needs a probe result or a failure")
        error = failure if failure is not None else probe.error if probe is not None else None
        at = _now()
        leaf = probe.leaf if probe is not None else None
        leaf_sha = _sha256(leaf) if leaf else None
        chain = [_sha256(d) for d in probe.chain] if probe is not None else []
        neg = probe.negotiation if probe is not None else None
        timings = probe.timings if probe is not None else None
        protocols = _protocols(probe)
        versions = {v.version: v.accepted for v in probe.tls_versions} if probe is not None else {}
        with self._transaction(batched=not commit) as db:
            done = db.execute(
                "UPDATE scan_targets SET state = 'done' "
                "WHERE scan_id = ? AND seq = ? AND state = 'pending'",
                (scan_id, seq),
            )
            if done.rowcount != 1:
                raise StoreError(
                    f"inventory {self.path}: target {target} of scan {scan_id} is already recorded"
                )
            host_id, new_host = _host_id(db, target, at)
            # the newest observation's reachability, and the newest certificate seen
            previous = (
                None
                if new_host
                else db.execute(
                    "SELECT (SELECT ok FROM observations WHERE host_id = ?1 "
                    "ORDER BY id DESC LIMIT 1), (SELECT sha256 FROM observations "
                    "WHERE host_id = ?1 AND sha256 IS NOT NULL ORDER BY id DESC LIMIT 1)",
                    (host_id,),
                ).fetchone()
            )
            was_ok = None if previous is None or previous[0] is None else bool(previous[0])
            old_sha = None if previous is None else previous[1]
            leaf_summary: LeafSummary | None = None
            if leaf and leaf_sha is not None:
                known = db.execute(
                    "SELECT subject, self_signed, not_after FROM certificates WHERE sha256 = ?",
                    (leaf_sha,),
                ).fetchone()
                if known is None:
                    row, facts = _certificate_row(leaf, at)
                    db.execute(_INSERT_CERTIFICATE, row)
                    leaf_summary = facts
                elif known[2] is not None:
                    leaf_summary = _StoredLeaf(known[0], bool(known[1]), parse_time(known[2]))
            cursor = db.execute(
                _INSERT_OBSERVATION,
                (
                    scan_id,
                    host_id,
                    at,
                    probe.address if probe is not None else None,
                    int(error is None),
                    error.kind if error is not None else None,
                    error.message if error is not None else None,
                    _protocol_name(neg.selected) if neg is not None else None,
                    neg.failure if neg is not None else None,
                    leaf_sha,
                    json.dumps(chain),
                    probe.tls.version if probe is not None and probe.tls else None,
                    probe.tls.cipher if probe is not None and probe.tls else None,
                    json.dumps(protocols),
                    json.dumps(versions),
                    timings.connect_ms if timings else None,
                    timings.x224_ms if timings else None,
                    timings.tls_ms if timings else None,
                    timings.total_ms if timings else None,
                    diagnosis.verdict if diagnosis else None,
                    diagnosis.predicted_stall_s if diagnosis else None,
                    json.dumps([dict(r) for r in diagnosis.retrievals]) if diagnosis else None,
                    _ntlm_json(probe),
                ),
            )
            observation_id = int(cursor.lastrowid or 0)
            problems = (
                [(p.code, p.severity, p.message) for p in diagnosis.problems]
                if diagnosis is not None
                # without a diagnosis, the security findings the probe allows
                else [
                    (p.code, p.severity.value, p.message)
                    for p in (probe_findings(probe, leaf=leaf_summary) if probe is not None else ())
                ]
            )
            if problems:
                db.executemany(
                    "INSERT INTO problems (observation_id, code, severity, message) "
                    "VALUES (?, ?, ?, ?)",
                    [(observation_id, *p) for p in problems],
                )
            for event in _events(
                db,
                new_host=was_ok is None,
                was_ok=was_ok,
                now_ok=error is None,
                old_sha=old_sha,
                new_sha=leaf_sha,
                error=error,
            ):
                db.execute(
                    "INSERT INTO events (host_id, scan_id, observation_id, at, kind, change, "
                    "old_sha256, new_sha256, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (host_id, scan_id, observation_id, at, *event),
                )
            record = self._observation(db, observation_id, with_events=True)
        return record

    # --- queries --------------------------------------------------------------------

    def _observation(
        self, db: sqlite3.Connection, observation_id: int, *, with_events: bool = False
    ) -> ObservationRecord:
        row = db.execute(_OBSERVATION_SELECT + " WHERE o.id = ?", (observation_id,)).fetchone()
        return self._observation_from_row(db, row, with_events=with_events)

    def _observation_from_row(
        self, db: sqlite3.Connection, row: tuple[Any, ...], *, with_events: bool
    ) -> ObservationRecord:
        problems = tuple(
            ProblemRecord(*p)
            for p in db.execute(
                "SELECT code, severity, message FROM problems WHERE observation_id = ?",
                (row[0],),
            )
        )
        events: tuple[EventRecord, ...] = ()
        if with_events:
            events = tuple(
                _event(e)
                for e in db.execute(_EVENT_SELECT + " WHERE e.observation_id = ?", (row[0],))
            )
        return _observation_record(row, problems, events)

    def observations(
        self, *, scan_id: int | None = None, latest_per_host: bool = False
    ) -> Iterator[ObservationRecord]:
        """Yield observations, ordered by host and port, one query row at a time.

        With *scan_id*, those of that scan; with *latest_per_host*, only each host's
        newest observation (within the scan when one is given).
        """
        clauses: list[str] = []
        params: list[Any] = []
        if scan_id is not None:
            clauses.append("o.scan_id = ?")
            params.append(scan_id)
        if latest_per_host:
            inner = "SELECT MAX(i.id) FROM observations i"
            if scan_id is not None:
                inner += " WHERE i.scan_id = ?"
                params.append(scan_id)
            clauses.append(f"o.id IN ({inner} GROUP BY i.host_id)")
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        with self._mapped():
            cursor = self._db.execute(
                _OBSERVATION_SELECT + where + " ORDER BY h.host, h.port, o.id", params
            )
            while True:
                rows = cursor.fetchmany(256)
                if not rows:
                    return
                for row in rows:
                    yield self._observation_from_row(self._db, row, with_events=False)

    def hosts(self) -> list[HostSummary]:
        """Every host with its latest observation, sorted by host and port."""
        return list(self.iter_hosts())

    def iter_hosts(self) -> Iterator[HostSummary]:
        """:meth:`hosts` one at a time, for output that streams (a large fleet)."""
        with self._mapped():
            counts = {
                (host, port): (count, first)
                for host, port, count, first in self._db.execute(
                    "SELECT h.host, h.port, COUNT(o.id), h.first_seen FROM hosts h "
                    "LEFT JOIN observations o ON o.host_id = h.id GROUP BY h.id"
                )
            }
        for latest in self.observations(latest_per_host=True):
            count, first = counts[(latest.host, latest.port)]
            yield HostSummary(latest.host, latest.port, parse_time(first), count, latest)

    def history(self, target: Target) -> HostHistory:
        """The whole record of one host; UsageError when the inventory never saw it."""
        with self._mapped():
            row = self._db.execute(
                "SELECT id, first_seen FROM hosts WHERE host = ? AND port = ?",
                (canonical_host(target.host), target.port),
            ).fetchone()
            if row is None:
                raise UsageError(f"inventory {self.path} has no record of {target}")
            host_id, first_seen = row
            observations = tuple(
                self._observation_from_row(self._db, r, with_events=False)
                for r in self._db.execute(
                    _OBSERVATION_SELECT + " WHERE o.host_id = ? ORDER BY o.id", (host_id,)
                ).fetchall()
            )
            events = tuple(
                _event(e)
                for e in self._db.execute(
                    _EVENT_SELECT + " WHERE e.host_id = ? ORDER BY e.id", (host_id,)
                )
            )
        spans: dict[str, list[Any]] = {}
        for obs in observations:
            if obs.certificate is None:
                continue
            span = spans.get(obs.certificate.sha256)
            if span is None:
                spans[obs.certificate.sha256] = [
                    obs.certificate,
                    obs.observed_at,
                    obs.observed_at,
                    1,
                ]
            else:
                span[2] = obs.observed_at
                span[3] += 1
        return HostHistory(
            host=target.host,
            port=target.port,
            first_seen=parse_time(first_seen),
            certificates=tuple(CertificateSpan(*s) for s in spans.values()),
            observations=observations,
            events=events,
        )

    def events(self, *, scan_id: int | None = None, limit: int | None = None) -> list[EventRecord]:
        """Events, newest first; of one scan when *scan_id* is given."""
        query = _EVENT_SELECT
        params: list[Any] = []
        if scan_id is not None:
            query += " WHERE e.scan_id = ?"
            params.append(scan_id)
        query += " ORDER BY e.id DESC"
        if limit is not None:
            query += " LIMIT ?"
            params.append(limit)
        with self._mapped():
            return [_event(r) for r in self._db.execute(query, params)]

    def target_states(self, scan_id: int) -> dict[str, int]:
        """How many targets of the scan are pending and done."""
        with self._mapped():
            rows = self._db.execute(
                "SELECT state, COUNT(*) FROM scan_targets WHERE scan_id = ? GROUP BY state",
                (scan_id,),
            ).fetchall()
        states = {"pending": 0, "done": 0}
        states.update({state: count for state, count in rows})
        return states


# --- SQL and row conversion ---------------------------------------------------------

_INSERT_TARGET = "INSERT OR IGNORE INTO scan_targets (scan_id, seq, host, port) VALUES (?, ?, ?, ?)"
_INSERT_CERTIFICATE = (
    "INSERT OR IGNORE INTO certificates (sha256, der, subject, issuer, common_name, "
    "self_signed, not_before, not_after, public_key_sha256, key_type, key_bits, "
    "signature_hash, first_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_OBSERVATION = (
    "INSERT INTO observations (scan_id, host_id, observed_at, address, ok, error_kind, "
    "error_message, selected_protocol, negotiation_failure, sha256, chain, tls_version, "
    "tls_cipher, protocols, tls_versions, connect_ms, x224_ms, tls_ms, total_ms, verdict, "
    "predicted_stall_s, retrievals, ntlm) VALUES "
    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SCAN_SELECT = (
    "SELECT s.id, s.started_at, s.finished_at, s.status, s.arguments, s.options, s.pid, "
    "s.target_count, (SELECT COUNT(*) FROM scan_targets t WHERE t.scan_id = s.id AND "
    "t.state = 'done') FROM scans s"
)
_CERT_COLUMNS = (
    "c.sha256, c.subject, c.issuer, c.common_name, c.self_signed, c.not_before, c.not_after, "
    "c.public_key_sha256, c.key_type, c.key_bits, c.signature_hash, c.first_seen"
)
_OBSERVATION_SELECT = (
    "SELECT o.id, o.scan_id, h.host, h.port, o.observed_at, o.ok, o.error_kind, "
    "o.error_message, o.address, o.selected_protocol, o.negotiation_failure, o.chain, "
    "o.tls_version, o.tls_cipher, o.protocols, o.tls_versions, o.connect_ms, o.x224_ms, "
    "o.tls_ms, o.total_ms, o.verdict, o.predicted_stall_s, o.retrievals, "
    f"{_CERT_COLUMNS}, o.ntlm, c.der FROM observations o JOIN hosts h ON h.id = o.host_id "
    "LEFT JOIN certificates c ON c.sha256 = o.sha256"
)
_EVENT_SELECT = (
    "SELECT e.id, e.scan_id, h.host, h.port, e.at, e.kind, e.change, e.old_sha256, "
    "e.new_sha256, e.detail FROM events e JOIN hosts h ON h.id = e.host_id"
)


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sha256(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def _protocol_name(value: SecurityProtocol | None) -> str | None:
    if value is None:
        return None
    if value == SecurityProtocol.RDP:
        return "RDP"
    names = [p.name or "" for p in SecurityProtocol if p and (value & p) == p]
    return "|".join(names) or hex(value)


def _protocols(probe: ProbeResult | None) -> dict[str, bool | None]:
    if probe is None or not probe.protocols:
        return {}
    found = {p.name: p.accepted for p in probe.protocols}
    return {name: found.get(name) for name in ENUMERATION_REQUESTS if name in found}


def _certificate_row(der: bytes, at: str) -> tuple[tuple[Any, ...], CertificateFacts | None]:
    """The certificates row for *der*, and its facts (None when it cannot be decoded)."""
    sha = _sha256(der)
    try:
        facts = certificate_facts(load_certificate(der))
    except PkiError as exc:
        row: tuple[Any, ...] = (
            sha,
            der,
            f"(undecodable certificate: {exc})",
            "",
            None,
            0,
            None,
            None,
            None,
            None,
            None,
            None,
            at,
        )
        return row, None
    row = (
        sha,
        der,
        facts.subject,
        facts.issuer,
        facts.common_name,
        int(facts.self_signed),
        _time(facts.not_before),
        _time(facts.not_after),
        facts.public_key_sha256 or None,
        facts.key_type,
        facts.key_bits,
        facts.signature_hash,
        at,
    )
    return row, facts


@dataclass(frozen=True)
class _StoredLeaf:
    """What the findings need of a leaf already in the certificates table."""

    subject: str
    self_signed: bool
    not_after: dt.datetime


def _host_id(db: sqlite3.Connection, target: Target, at: str) -> tuple[int, bool]:
    row = db.execute(
        "SELECT id FROM hosts WHERE host = ? AND port = ?", (target.host, target.port)
    ).fetchone()
    if row is not None:
        return int(row[0]), False
    cursor = db.execute(
        "INSERT INTO hosts (host, port, first_seen) VALUES (?, ?, ?)",
        (target.host, target.port, at),
    )
    return int(cursor.lastrowid or 0), True


def classify_change(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """Class of a certificate change: ``recreation``, ``ca-issued`` or ``unexpected``.

    *old* and *new* hold ``subject``, ``self_signed`` and ``public_key_sha256``.
    """
    if (
        old["self_signed"]
        and new["self_signed"]
        and old["subject"] == new["subject"]
        and old["public_key_sha256"] != new["public_key_sha256"]
    ):
        return "recreation"
    if not new["self_signed"] and new["public_key_sha256"] is not None:
        return "ca-issued"
    return "unexpected"


_CHANGE_DETAIL = {
    "recreation": "new self-signed certificate with the same subject and a new key, as when "
    "Windows recreates its RDP certificate every six months; clients that trusted the old "
    "one will prompt again (pin the new one or issue a CA certificate)",
    "ca-issued": "the host now presents a CA-issued certificate",
    "unexpected": "the certificate changed in a way no renewal explains; check the host, "
    "this may be an interception",
}


def _events(
    db: sqlite3.Connection,
    *,
    new_host: bool,
    was_ok: bool | None,
    now_ok: bool,
    old_sha: str | None,
    new_sha: str | None,
    error: ProbeFailure | None,
) -> list[tuple[str, str | None, str | None, str | None, str]]:
    events: list[tuple[str, str | None, str | None, str | None, str]] = []
    if new_host:
        detail = "first scan of this host" + (
            "" if now_ok else f" (not reachable: {error.message if error else 'unknown'})"
        )
        events.append(("first-seen", None, None, new_sha, detail))
        return events
    if was_ok and not now_ok:
        message = error.message if error is not None else "unknown"
        events.append(("became-unreachable", None, old_sha, None, message))
    elif was_ok is False and now_ok:
        events.append(("became-reachable", None, None, new_sha, "the host answers again"))
    if new_sha is not None and old_sha is not None and new_sha != old_sha:
        columns = "subject, self_signed, public_key_sha256"
        old = db.execute(
            f"SELECT {columns} FROM certificates WHERE sha256 = ?", (old_sha,)
        ).fetchone()
        new = db.execute(
            f"SELECT {columns} FROM certificates WHERE sha256 = ?", (new_sha,)
        ).fetchone()
        keys = ("subject", "self_signed", "public_key_sha256")
        change = classify_change(
            dict(zip(keys, old, strict=True)), dict(zip(keys, new, strict=True))
        )
        events.append(("certificate-changed", change, old_sha, new_sha, _CHANGE_DETAIL[change]))
    return events


def _opt_time(text: str | None) -> dt.datetime | None:
    return parse_time(text) if text else None


def _scan_info(row: tuple[Any, ...]) -> ScanInfo:
    return ScanInfo(
        id=row[0],
        started_at=parse_time(row[1]),
        finished_at=_opt_time(row[2]),
        status=row[3],
        arguments=tuple(json.loads(row[4])),
        options=json.loads(row[5]),
        pid=row[6],
        target_count=row[7],
        done_count=row[8],
    )


def _event(row: tuple[Any, ...]) -> EventRecord:
    return EventRecord(
        id=row[0],
        scan_id=row[1],
        host=row[2],
        port=row[3],
        at=parse_time(row[4]),
        kind=row[5],
        change=row[6],
        old_sha256=row[7],
        new_sha256=row[8],
        detail=row[9],
    )


def _ntlm_json(probe: ProbeResult | None) -> str | None:
    info = probe.ntlm if probe is not None else None
    if info is None or not info.ok:
        return None
    version = info.os_version
    return json.dumps(
        {
            "netbios_computer_name": info.netbios_computer_name,
            "netbios_domain_name": info.netbios_domain_name,
            "dns_computer_name": info.dns_computer_name,
            "dns_domain_name": info.dns_domain_name,
            "dns_tree_name": info.dns_tree_name,
            "os_version": (f"{version.major}.{version.minor}.{version.build}" if version else None),
            "server_time": info.server_time.isoformat() if info.server_time else None,
        }
    )


def _observation_record(
    row: tuple[Any, ...], problems: tuple[ProblemRecord, ...], events: tuple[EventRecord, ...]
) -> ObservationRecord:
    cert = row[23:]
    certificate = (
        CertificateRecord(
            sha256=cert[0],
            subject=cert[1],
            issuer=cert[2],
            common_name=cert[3],
            self_signed=bool(cert[4]),
            not_before=_opt_time(cert[5]),
            not_after=_opt_time(cert[6]),
            public_key_sha256=cert[7],
            key_type=cert[8],
            key_bits=cert[9],
            signature_hash=cert[10],
            first_seen=parse_time(cert[11]),
            sha1=hashlib.sha1(row[36]).hexdigest() if len(row) > 36 and row[36] else None,
        )
        if cert[0] is not None
        else None
    )
    return ObservationRecord(
        id=row[0],
        scan_id=row[1],
        host=row[2],
        port=row[3],
        observed_at=parse_time(row[4]),
        ok=bool(row[5]),
        error_kind=row[6],
        error_message=row[7],
        address=row[8],
        selected_protocol=row[9],
        negotiation_failure=row[10],
        certificate=certificate,
        chain=tuple(json.loads(row[11])),
        tls_version=row[12],
        tls_cipher=row[13],
        protocols=json.loads(row[14]),
        tls_versions=json.loads(row[15]),
        connect_ms=row[16],
        x224_ms=row[17],
        tls_ms=row[18],
        total_ms=row[19],
        verdict=row[20],
        predicted_stall_s=row[21],
        retrievals=tuple(json.loads(row[22])) if row[22] is not None else None,
        problems=problems,
        events=events,
        ntlm=json.loads(row[35]) if len(row) > 35 and row[35] else None,
    )
