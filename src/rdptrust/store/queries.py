"""Reading the inventory: scans, observations, hosts, one host's history, events.

:class:`InventoryReader` holds the connection and every query;
:class:`~rdptrust.store.inventory.Inventory` adds the writes. Every SQLite failure
becomes a :class:`~rdptrust.errors.StoreError` with one line a user can act on
(:func:`rdptrust.store.database.describe_error`, or its PostgreSQL twin).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any, Self

from rdptrust.errors import StoreError, UsageError
from rdptrust.model.records import (
    CertificateRecord,
    CertificateSpan,
    EventRecord,
    HostHistory,
    HostSummary,
    ObservationRecord,
    ProblemRecord,
    ScanInfo,
)
from rdptrust.model.target import Target, canonical_host
from rdptrust.store.database import SQLITE, Backend
from rdptrust.store.rows import (
    CERTIFICATE_SELECT,
    EVENT_SELECT,
    OBSERVATION_SELECT,
    PROBLEM_SELECT,
    SCAN_SELECT,
    SUMMARY_SELECT,
    certificate_record,
    event_record,
    observation_record,
    parse_time,
    problem_record,
    scan_info,
    select_certificates,
)

#: The tables ``rdptrust db check`` counts, in the order it lists them.
COUNTED_TABLES = (
    "scans",
    "scan_targets",
    "hosts",
    "certificates",
    "observations",
    "problems",
    "events",
)
#: Observation rows fetched at a time while observations stream out.
_FETCH_BATCH = 256


class InventoryReader:
    """The queries over one inventory connection (whose rows are :class:`sqlite3.Row`,
    or :class:`rdptrust.store.postgres.Row` on PostgreSQL: both read by column name).

    *path* is where the inventory is, as shown to users: a file, or a PostgreSQL URL
    without its password.
    """

    def __init__(self, path: Path | str, connection: Any, backend: Backend = SQLITE) -> None:
        self.path = path
        self._db = connection
        self._backend = backend
        self._db.row_factory = sqlite3.Row

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _mapped(self) -> Iterator[None]:
        try:
            yield
        except self._backend.errors as exc:
            raise StoreError(self._backend.describe(exc, str(self.path))) from exc

    @property
    def schema_version(self) -> int:
        with self._mapped():
            row = self._db.execute(
                "SELECT COALESCE(MAX(version), 0) AS version FROM schema_migrations"
            ).fetchone()
        return int(row["version"])

    def counts(self) -> dict[str, int]:
        """How many rows each of the inventory's tables holds (``rdptrust db check``)."""
        with self._mapped():
            return {
                table: int(self._db.execute(f"SELECT COUNT(*) AS n FROM {table}").fetchone()["n"])
                for table in COUNTED_TABLES
            }

    def integrity(self, limit: int = 10) -> list[str] | None:
        """What SQLite's ``PRAGMA quick_check`` finds wrong in the file's pages (up to
        *limit* lines; empty when it is sound), or None on PostgreSQL, which checks its own
        pages. Unlike the other queries, this reads every page of every table and index."""
        if self._backend.name != "sqlite":
            return None
        with self._mapped():
            rows = self._db.execute(f"PRAGMA quick_check({int(limit)})").fetchall()
        found = [line for row in rows for line in str(row[0]).splitlines()]
        if found == ["ok"]:
            return []
        return [line for line in found if not line.startswith("*** in database")][:limit]

    # --- scans ----------------------------------------------------------------------

    def scan(self, scan_id: int) -> ScanInfo:
        """The scan with id *scan_id*; UsageError when there is none."""
        with self._mapped():
            row = self._db.execute(SCAN_SELECT + " WHERE s.id = ?", (scan_id,)).fetchone()
        if row is None:
            raise UsageError(f"inventory {self.path} holds no scan {scan_id}")
        return scan_info(row)

    def scans(self) -> list[ScanInfo]:
        """Every scan, newest first."""
        with self._mapped():
            rows = self._db.execute(SCAN_SELECT + " ORDER BY s.id DESC").fetchall()
        return [scan_info(r) for r in rows]

    def latest_scan(self, *, resumable: bool = False) -> ScanInfo | None:
        """The newest scan; with *resumable*, the newest that did not finish."""
        where = " WHERE s.status != 'done'" if resumable else ""
        with self._mapped():
            row = self._db.execute(SCAN_SELECT + where + " ORDER BY s.id DESC LIMIT 1").fetchone()
        return scan_info(row) if row else None

    def target_states(self, scan_id: int) -> dict[str, int]:
        """How many targets of the scan are pending and done."""
        with self._mapped():
            rows = self._db.execute(
                "SELECT state, COUNT(*) AS count FROM scan_targets WHERE scan_id = ? "
                "GROUP BY state",
                (scan_id,),
            ).fetchall()
        states = {"pending": 0, "done": 0}
        states.update({row["state"]: row["count"] for row in rows})
        return states

    # --- certificates and observations ----------------------------------------------

    def certificate(self, sha256: str) -> CertificateRecord | None:
        """The certificate with this SHA-256 (lowercase hex); None when never recorded."""
        with self._mapped():
            row = self._db.execute(CERTIFICATE_SELECT + " WHERE c.sha256 = ?", (sha256,)).fetchone()
        return certificate_record(row) if row is not None else None

    def certificates(self, sha256s: Collection[str]) -> dict[str, CertificateRecord]:
        """Those of the certificates with these SHA-256s that were ever recorded, by
        SHA-256: one query per :data:`~rdptrust.store.rows.IN_CHUNK` of them."""
        with self._mapped():
            return select_certificates(self._db, sha256s)

    def _observation(
        self, db: Any, observation_id: int, *, with_events: bool = False
    ) -> ObservationRecord:
        row = db.execute(SUMMARY_SELECT + " WHERE o.id = ?", (observation_id,)).fetchone()
        return self._observation_from_row(db, row, with_events=with_events)

    def _observation_from_row(
        self, db: Any, row: sqlite3.Row, *, with_events: bool
    ) -> ObservationRecord:
        observation_id = row["id"]
        problems = tuple(problem_record(p) for p in db.execute(PROBLEM_SELECT, (observation_id,)))
        events: tuple[EventRecord, ...] = ()
        if with_events:
            events = tuple(
                event_record(e)
                for e in db.execute(EVENT_SELECT + " WHERE e.observation_id = ?", (observation_id,))
            )
        return observation_record(row, problems, events)

    def observations(
        self,
        *,
        scan_id: int | None = None,
        latest_per_host: bool = False,
        site: str | None = None,
    ) -> Iterator[ObservationRecord]:
        """Yield observations, ordered by host, port and site, one query row at a time.

        With *scan_id*, those of that scan; with *site*, those made from that site; with
        *latest_per_host*, only each host's newest observation from each site (within
        the scan when one is given).
        """
        clauses: list[str] = []
        params: list[Any] = []
        if scan_id is not None:
            clauses.append("o.scan_id = ?")
            params.append(scan_id)
        if site is not None:
            clauses.append("o.site = ?")
            params.append(site)
        if latest_per_host:
            inner = "SELECT MAX(i.id) FROM observations i"
            if scan_id is not None:
                inner += " WHERE i.scan_id = ?"
                params.append(scan_id)
            clauses.append(f"o.id IN ({inner} GROUP BY i.host_id, i.site)")
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        with self._mapped():
            cursor = self._db.execute(
                OBSERVATION_SELECT + where + " ORDER BY h.host, h.port, o.site, o.id", params
            )
            while True:
                rows = cursor.fetchmany(_FETCH_BATCH)
                if not rows:
                    return
                for row in rows:
                    yield self._observation_from_row(self._db, row, with_events=False)

    # --- hosts ----------------------------------------------------------------------

    def hosts(self, *, site: str | None = None) -> list[HostSummary]:
        """Every host with its latest observation from each site (from *site* only when
        given), sorted by host, port and site."""
        return list(self.iter_hosts(site=site))

    def iter_hosts(self, *, site: str | None = None) -> Iterator[HostSummary]:
        """:meth:`hosts` one at a time, for output that streams (a large fleet)."""
        with self._mapped():
            counts = {
                (row["host"], row["port"], row["site"]): (row["count"], row["first_seen"])
                for row in self._db.execute(
                    "SELECT h.host, h.port, o.site, COUNT(o.id) AS count, h.first_seen "
                    "FROM hosts h JOIN observations o ON o.host_id = h.id "
                    "GROUP BY h.id, h.host, h.port, h.first_seen, o.site"
                )
            }
        for latest in self.observations(latest_per_host=True, site=site):
            count, first = counts[(latest.host, latest.port, latest.site)]
            yield HostSummary(latest.host, latest.port, parse_time(first), count, latest)

    def sites(self) -> list[str]:
        """The sites the inventory holds observations from, sorted."""
        with self._mapped():
            rows = self._db.execute(
                "SELECT DISTINCT site FROM observations WHERE site IS NOT NULL ORDER BY site"
            ).fetchall()
        return [str(r["site"]) for r in rows]

    def host_batches(
        self, size: int = _FETCH_BATCH, *, site: str | None = None
    ) -> Iterator[list[HostSummary]]:
        """The hosts of :meth:`hosts` (one per host and site; of *site* only, when given),
        in the same order, *size* at a time.

        The latest observations are read *size* rows per fetch; each batch's counts and
        problems take one query each, so memory holds one batch whatever the fleet's size.
        Their certificates come without the SHA-1 thumbprint (no DER is read).
        """
        only = "" if site is None else " AND o.site = ?"
        with self._mapped():
            # host by host in the hosts index's order: no sort holds the fleet first
            cursor = self._db.execute(
                SUMMARY_SELECT + " WHERE o.id = (SELECT MAX(i.id) FROM observations i "
                "WHERE i.host_id = h.id AND COALESCE(i.site, '') = COALESCE(o.site, ''))"
                + only
                + " ORDER BY h.host, h.port, o.site",
                () if site is None else (site,),
            )
            while rows := cursor.fetchmany(size):
                ids = [row["id"] for row in rows]
                marks = ",".join("?" * len(ids))
                hosts = {
                    found["id"]: (parse_time(found["first_seen"]), found["count"])
                    for found in self._db.execute(
                        "SELECT o.id, h.first_seen, (SELECT COUNT(*) FROM observations n "
                        "WHERE n.host_id = o.host_id AND COALESCE(n.site, '') = "
                        "COALESCE(o.site, '')) AS count FROM observations o "
                        f"JOIN hosts h ON h.id = o.host_id WHERE o.id IN ({marks})",
                        ids,
                    )
                }
                problems: dict[int, list[ProblemRecord]] = {i: [] for i in ids}
                for found in self._db.execute(
                    "SELECT observation_id, code, severity, message FROM problems "
                    f"WHERE observation_id IN ({marks}) ORDER BY observation_id",
                    ids,
                ):
                    problems[found["observation_id"]].append(problem_record(found))
                yield [
                    HostSummary(
                        row["host"],
                        row["port"],
                        *hosts[row["id"]],
                        observation_record(row, tuple(problems[row["id"]]), ()),
                    )
                    for row in rows
                ]

    def longest_names(self) -> tuple[int, int]:
        """The characters in the longest ``host:port`` of any host (IPv6 in brackets) and
        in the longest common name (or, without one, subject) of any certificate: the
        widest a table of :meth:`host_batches` can need, without reading it (0 when none)."""
        with self._mapped():
            row = self._db.execute(
                "SELECT (SELECT MAX(LENGTH(host) + LENGTH(CAST(port AS TEXT)) + 1 + "
                "CASE WHEN host LIKE '%:%' THEN 2 ELSE 0 END) FROM hosts) AS host, "
                "(SELECT MAX(LENGTH(COALESCE(common_name, subject))) FROM certificates) AS name"
            ).fetchone()
        return int(row["host"] or 0), int(row["name"] or 0)

    def history(self, target: Target, *, site: str | None = None) -> HostHistory:
        """The whole record of one host (from *site* only, when given); UsageError when
        the inventory never saw it (from there)."""
        with self._mapped():
            row = self._db.execute(
                "SELECT id, first_seen FROM hosts WHERE host = ? AND port = ?",
                (canonical_host(target.host), target.port),
            ).fetchone()
            if row is None:
                raise UsageError(f"inventory {self.path} has no record of {target}")
            host_id = row["id"]
            only = "" if site is None else " AND o.site = ?"
            where: tuple[Any, ...] = (host_id,) if site is None else (host_id, site)
            observations = tuple(
                self._observation_from_row(self._db, r, with_events=False)
                for r in self._db.execute(
                    OBSERVATION_SELECT + " WHERE o.host_id = ?" + only + " ORDER BY o.id", where
                ).fetchall()
            )
            if site is not None and not observations:
                raise UsageError(f"inventory {self.path} has no record of {target} from {site}")
            events = tuple(
                event_record(e)
                for e in self._db.execute(
                    EVENT_SELECT
                    + " WHERE e.host_id = ?"
                    + only.replace("o.", "e.")
                    + " ORDER BY e.id",
                    where,
                )
            )
        spans: dict[str, CertificateSpan] = {}
        for obs in observations:
            if obs.certificate is None:
                continue
            span = spans.get(obs.certificate.sha256)
            spans[obs.certificate.sha256] = (
                CertificateSpan(obs.certificate, obs.observed_at, obs.observed_at, 1)
                if span is None
                else CertificateSpan(
                    span.certificate, span.first_seen, obs.observed_at, span.observations + 1
                )
            )
        return HostHistory(
            host=target.host,
            port=target.port,
            first_seen=parse_time(row["first_seen"]),
            certificates=tuple(spans.values()),
            observations=observations,
            events=events,
        )

    def events(
        self, *, scan_id: int | None = None, limit: int | None = None, site: str | None = None
    ) -> list[EventRecord]:
        """Events, newest first; of one scan when *scan_id* is given, of one site when
        *site* is."""
        query = EVENT_SELECT
        params: list[Any] = []
        clauses: list[str] = []
        if scan_id is not None:
            clauses.append("e.scan_id = ?")
            params.append(scan_id)
        if site is not None:
            clauses.append("e.site = ?")
            params.append(site)
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        query += " ORDER BY e.id DESC"
        if limit is not None:
            query += " LIMIT ?"
            params.append(limit)
        with self._mapped():
            return [event_record(r) for r in self._db.execute(query, params)]
