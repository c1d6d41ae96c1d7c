"""Retention: old observations pruned (``rdptrust db prune --keep-days N``), events kept."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from rdptrust.errors import UsageError
from rdptrust.store.rows import parse_time, time_text
from rdptrust.store.writer import InventoryWriter


@dataclass(frozen=True)
class PruneResult:
    """What :meth:`Inventory.prune` deleted: observations observed before *cutoff* (each
    host's newest excepted), their problems, and certificates no longer named."""

    cutoff: dt.datetime
    observations: int
    problems: int
    certificates: int


class RetentionStore(InventoryWriter):
    """Pruning over one inventory connection."""

    def prune(self, keep_days: float, *, now: dt.datetime | None = None) -> PruneResult:
        """Delete observations older than *keep_days* days, and what only they used.

        Each host keeps its newest observation, however old, so ``hosts`` still shows
        every host; every event is kept (one of a deleted observation loses only its
        link to it), and so are the scans. Certificates that no observation and no event
        names any more are deleted with them.
        """
        if keep_days < 0:
            raise UsageError("--keep-days must be 0 or more")
        cutoff = time_text((now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=keep_days))
        old = (
            "SELECT o.id FROM observations o WHERE o.observed_at < ? AND o.id NOT IN "
            "(SELECT MAX(i.id) FROM observations i GROUP BY i.host_id)"
        )
        with self._transaction() as db:
            db.execute(
                f"UPDATE events SET observation_id = NULL WHERE observation_id IN ({old})",
                (cutoff,),
            )
            problems = db.execute(
                f"DELETE FROM problems WHERE observation_id IN ({old})", (cutoff,)
            ).rowcount
            observations = db.execute(
                f"DELETE FROM observations WHERE id IN ({old})", (cutoff,)
            ).rowcount
            certificates = db.execute(
                "DELETE FROM certificates WHERE sha256 NOT IN (SELECT sha256 FROM observations "
                "WHERE sha256 IS NOT NULL) AND sha256 NOT IN (SELECT old_sha256 FROM events "
                "WHERE old_sha256 IS NOT NULL) AND sha256 NOT IN (SELECT new_sha256 FROM "
                "events WHERE new_sha256 IS NOT NULL)"
            ).rowcount
        self._held.clear()
        return PruneResult(parse_time(cutoff), observations, problems, certificates)
