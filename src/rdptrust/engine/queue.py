"""Working a queued scan: claim a batch of its targets, scan them, give back the rest.

``rdptrust scan --queue`` writes a scan and its targets and leaves; any number of
``rdptrust worker --site NAME`` processes, on any machines that reach the inventory,
then run :func:`work_queue`. Each claims a batch of pending targets of its site's oldest
queued scan (the database is the coordinator: ``SELECT … FOR UPDATE SKIP LOCKED`` on
PostgreSQL, the write transaction on SQLite), scans them with the scan's own options
through :func:`rdptrust.engine.scan.run_scan`, which records each target in the same
transaction that marks it done, and keeps its lease alive while it works. A worker
that is killed holds its batch only until the lease passes; then another worker claims
what was not recorded. A target is recorded at most once: recording needs it pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Collection, Generator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from rdptrust.engine.pace import Window
from rdptrust.engine.scan import ScanInventory, ScanSummary, run_scan
from rdptrust.engine.scan_options import Observer, ScanOptions
from rdptrust.errors import StoreError
from rdptrust.model.outcome import ProbeFailure
from rdptrust.model.probe import ProbeResult
from rdptrust.model.records import (
    CertificateEntry,
    CertificateRecord,
    DiagnosisRecord,
    Flushed,
    ObservationRecord,
    ProblemRecord,
    ScanInfo,
)
from rdptrust.model.target import Target

#: Targets a worker claims at a time.
DEFAULT_BATCH = 100
#: Seconds a claim lasts unless its worker renews it (a third of it between renewals).
DEFAULT_LEASE_S = 120.0
#: Seconds between looks at the queue when it is empty (unless the worker exits then).
DEFAULT_POLL_S = 5.0


class QueueInventory(ScanInventory, Protocol):
    """What a worker needs of the inventory (:class:`rdptrust.store.inventory.Inventory`)."""

    def claim_targets(
        self, site: str, worker: str, count: int, lease_s: float
    ) -> tuple[ScanInfo, list[tuple[int, Target]]] | None: ...

    def renew_claims(self, scan_id: int, worker: str, lease_s: float) -> int: ...

    def release_claims(self, scan_id: int, worker: str) -> None: ...

    def finish_queued(self, scan_id: int) -> bool: ...

    def open_queued(self, site: str) -> list[int]: ...


def worker_name(machine: str) -> str:
    """How a worker is named in the queue: ``machine:pid``."""
    return f"{machine}:{os.getpid()}"


class _Claimed:
    """The scan loop's inventory for one claimed batch: its targets are the batch, and a
    scan is marked done only when no target of it is pending any more (other workers
    may still hold some), never interrupted (what is left goes back to the queue)."""

    def __init__(self, inventory: QueueInventory, targets: Sequence[tuple[int, Target]]) -> None:
        self._inventory = inventory
        self._targets = targets

    def pending_targets(self, scan_id: int) -> Generator[tuple[int, Target], None, None]:
        yield from self._targets

    def certificate(self, sha256: str) -> CertificateRecord | None:
        return self._inventory.certificate(sha256)

    def certificates(self, sha256s: Collection[str]) -> dict[str, CertificateRecord]:
        return self._inventory.certificates(sha256s)

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
        self._inventory.stage(
            scan_id,
            seq,
            target,
            probe,
            failure=failure,
            diagnosis=diagnosis,
            certificate=certificate,
            problems=problems,
        )

    def flush(self) -> Flushed:
        return self._inventory.flush()

    def finish_scan(self, scan_id: int, status: str) -> None:
        self._inventory.finish_queued(scan_id)

    def target_states(self, scan_id: int) -> dict[str, int]:
        return self._inventory.target_states(scan_id)


@dataclass
class WorkSummary:
    """What one worker did: batches claimed, targets recorded (ok and not), the scans it
    saw finish, and the batches that ended on an inventory error (their unrecorded
    targets went back to the queue)."""

    batches: int = 0
    recorded: int = 0
    ok: int = 0
    errors: int = 0
    finished_scans: list[int] = field(default_factory=list)
    #: targets another worker recorded first (after this one's lease had passed)
    taken: int = 0
    failed_batches: int = 0
    last_error: str | None = None
    #: the most hosts a batch kept in flight once this machine's CPU could not serve more
    #: on time (:mod:`rdptrust.engine.pace`); None when it always could
    paced: int | None = None


async def work_queue(
    inventory: QueueInventory,
    *,
    site: str,
    worker: str,
    options_for: Callable[[ScanInfo], ScanOptions],
    batch: int = DEFAULT_BATCH,
    lease_s: float = DEFAULT_LEASE_S,
    poll_s: float = DEFAULT_POLL_S,
    exit_when_idle: bool = False,
    stop: asyncio.Event | None = None,
    observer_for: Callable[[ScanOptions], Observer] | None = None,
    on_result: Callable[[ObservationRecord], None] | None = None,
    on_error: Callable[[str], None] | None = None,
) -> WorkSummary:
    """Claim and scan batches of *site*'s queued scans until *stop* is set (or, with
    *exit_when_idle*, until every queued scan of the site is done: while other workers
    hold targets, this one waits, to take them over should their leases pass).

    *options_for* gives the options to scan a queued scan's targets with (its own, with
    what this machine changes, such as the concurrency). An inventory error ends only
    the batch it happened in (*on_error* hears of it; the batch's unrecorded targets are
    given back); a second one in a row is raised.
    """
    stop = stop or asyncio.Event()
    summary = WorkSummary()
    failures_in_a_row = 0
    # one pace for all the batches scanned with the same concurrency and time-out: each
    # batch starts where the last one left it, not at the window's start again
    windows: dict[tuple[int, float], Window] = {}
    while not stop.is_set():
        claim = inventory.claim_targets(site, worker, batch, lease_s)
        if claim is None:
            # nothing free: done, or held by other workers (whose leases may yet pass)
            if exit_when_idle and not inventory.open_queued(site):
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll_s)
            continue
        scan, targets = claim
        summary.batches += 1
        options = options_for(scan)
        key = (options.concurrency, options.timeout)
        if key not in windows:
            windows[key] = Window(*key)

        async def renew(scan_id: int = scan.id) -> None:
            while True:
                await asyncio.sleep(lease_s / 3)
                with contextlib.suppress(StoreError):
                    inventory.renew_claims(scan_id, worker, lease_s)

        async def relay(batch_stop: asyncio.Event) -> None:
            await stop.wait()
            batch_stop.set()

        renewer = asyncio.create_task(renew())
        # the batch's own stop: the scan loop sets it on an inventory error, which ends
        # this batch only; a stop of the worker (Ctrl-C) is passed on to it
        batch_stop = asyncio.Event()
        relayer = asyncio.create_task(relay(batch_stop))
        try:
            result: ScanSummary = await run_scan(
                _Claimed(inventory, targets),
                scan,
                options,
                observer=observer_for(options) if observer_for is not None else None,
                on_result=on_result,
                stop=batch_stop,
                pace=windows[key],
            )
        except StoreError as exc:
            summary.failed_batches += 1
            summary.last_error = str(exc)
            failures_in_a_row += 1
            if on_error is not None:
                on_error(str(exc))
            if failures_in_a_row > 1:
                raise
            continue
        finally:
            for task in (renewer, relayer):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            with contextlib.suppress(StoreError):
                inventory.release_claims(scan.id, worker)
        failures_in_a_row = 0
        summary.recorded += result.recorded
        summary.ok += result.ok
        summary.errors += result.errors
        summary.taken += result.taken
        if result.paced is not None:
            summary.paced = max(summary.paced or 0, result.paced)
        if result.status == "done" and scan.id not in summary.finished_scans:
            summary.finished_scans.append(scan.id)
    return summary
