"""The shared queue: workers claim a queued scan's targets for a lease.

``rdptrust scan --queue`` writes a scan with ``queued`` set and no owning process;
``rdptrust worker`` processes call :meth:`QueueStore.claim_targets` for a batch, record
each target as a scan does (which needs it pending: a target is recorded at most once),
renew their lease while they work and give back what they did not finish. A claim whose
lease has passed is free again. The database is the coordinator: ``FOR UPDATE SKIP
LOCKED`` on PostgreSQL, the write transaction on SQLite.
"""

from __future__ import annotations

import datetime as dt

from rdptrust.model.records import QueueStatus, ScanInfo, WorkerProgress
from rdptrust.model.target import Target
from rdptrust.store.rows import now_text, time_text
from rdptrust.store.writer import InventoryWriter


class QueueStore(InventoryWriter):
    """The queue's claims, leases and progress over one inventory connection."""

    def claim_targets(
        self, site: str, worker: str, count: int, lease_s: float
    ) -> tuple[ScanInfo, list[tuple[int, Target]]] | None:
        """Claim up to *count* pending targets of the oldest queued scan of *site* that
        has any free, for *worker* until *lease_s* seconds from now; None when none is.

        A target is free when nobody holds it or its lease has passed (its worker was
        killed, its machine is gone). On PostgreSQL the rows are locked as they are
        chosen and rows another worker is choosing are skipped (``FOR UPDATE SKIP
        LOCKED``), so workers on any number of machines never claim the same target at
        once; on SQLite the write transaction does the same for processes of one machine.
        """
        now = dt.datetime.now(dt.UTC)
        until = time_text(now + dt.timedelta(seconds=lease_s))
        free = (
            "SELECT seq, host, port FROM scan_targets WHERE scan_id = ? AND state = 'pending' "
            "AND (lease_until IS NULL OR lease_until < ?) ORDER BY seq LIMIT ?"
            + self._backend.claim_lock
        )
        with self._transaction() as db:
            scans = db.execute(
                "SELECT id FROM scans WHERE queued = 1 AND status = 'running' AND site = ? "
                "ORDER BY id",
                (site,),
            ).fetchall()
            for row in scans:
                rows = db.execute(free, (row["id"], time_text(now), count)).fetchall()
                if not rows:
                    continue
                scan_id = int(row["id"])
                db.executemany(
                    "UPDATE scan_targets SET worker = ?, lease_until = ? "
                    "WHERE scan_id = ? AND seq = ?",
                    [(worker, until, scan_id, r["seq"]) for r in rows],
                )
                claimed = [(int(r["seq"]), Target(r["host"], r["port"])) for r in rows]
                break
            else:
                return None
        return self.scan(scan_id), claimed

    def renew_claims(self, scan_id: int, worker: str, lease_s: float) -> int:
        """Move the lease of *worker*'s pending targets of the scan *lease_s* seconds from
        now (a live worker keeps what it holds); how many it holds."""
        until = time_text(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=lease_s))
        with self._transaction() as db:
            return int(
                db.execute(
                    "UPDATE scan_targets SET lease_until = ? "
                    "WHERE scan_id = ? AND worker = ? AND state = 'pending'",
                    (until, scan_id, worker),
                ).rowcount
            )

    def release_claims(self, scan_id: int, worker: str) -> None:
        """Give back *worker*'s pending targets of the scan (a batch not finished)."""
        with self._transaction() as db:
            db.execute(
                "UPDATE scan_targets SET worker = NULL, lease_until = NULL "
                "WHERE scan_id = ? AND worker = ? AND state = 'pending'",
                (scan_id, worker),
            )

    def finish_queued(self, scan_id: int) -> bool:
        """Mark a queued scan done once none of its targets is pending; whether it is."""
        with self._transaction() as db:
            db.execute(
                "UPDATE scans SET status = 'done', finished_at = ? WHERE id = ? AND "
                "status = 'running' AND NOT EXISTS (SELECT 1 FROM scan_targets "
                "WHERE scan_id = ? AND state = 'pending')",
                (now_text(), scan_id, scan_id),
            )
        return self.scan(scan_id).status == "done"

    def open_queued(self, site: str) -> list[int]:
        """The queued scans of *site* still running (those with no pending target left
        are marked done first: a worker may have died between its last commit and that)."""
        with self._mapped():
            ids = [
                int(r["id"])
                for r in self._db.execute(
                    "SELECT id FROM scans WHERE queued = 1 AND status = 'running' AND site = ? "
                    "ORDER BY id",
                    (site,),
                ).fetchall()
            ]
        return [scan_id for scan_id in ids if not self.finish_queued(scan_id)]

    def queue_status(self, scan_id: int) -> QueueStatus:
        """A queued scan's progress, per worker (``scan --status``)."""
        scan = self.scan(scan_id)
        now = now_text()
        with self._mapped():
            rows = self._db.execute(
                "SELECT worker, state, live, COUNT(*) AS n FROM (SELECT worker, state, "
                "CASE WHEN state = 'pending' AND lease_until >= ? THEN 1 ELSE 0 END AS live "
                "FROM scan_targets WHERE scan_id = ?) t GROUP BY worker, state, live",
                (now, scan_id),
            ).fetchall()
        done = claimed = waiting = 0
        workers: dict[str, list[int]] = {}
        for row in rows:
            n = int(row["n"])
            if row["state"] == "done":
                done += n
                if row["worker"]:
                    workers.setdefault(row["worker"], [0, 0])[0] += n
            elif row["live"] and row["worker"]:
                claimed += n
                workers.setdefault(row["worker"], [0, 0])[1] += n
            else:
                waiting += n
        return QueueStatus(
            scan,
            done,
            claimed,
            waiting,
            tuple(WorkerProgress(w, d, c) for w, (d, c) in sorted(workers.items())),
        )
