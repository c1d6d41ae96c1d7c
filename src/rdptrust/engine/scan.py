"""The scan engine: probe many targets concurrently and stream each result into the inventory.

A fixed pool of workers pulls pending targets from the inventory a batch at a time, so
memory stays flat however many targets a scan has: nothing is kept per target once it
is recorded. Each target gets a deadline of its own; an optional token bucket limits
how many targets start per second, and fewer than ``--concurrency`` are in flight while
this machine's CPU cannot serve more on time (:mod:`rdptrust.engine.pace`). Setting the
*stop* event (the command line does so on Ctrl-C and SIGTERM) cancels the targets in
flight, which stay pending, and the scan is marked interrupted: :func:`run_scan` on the
same scan later probes exactly the targets still pending.

The inventory does not judge: the observer assesses each host (:func:`rdptrust.engine.assess`,
the same judgement as ``diagnose``); :func:`~rdptrust.engine.leaves.judge_host` reads the
leaf's entry (once per certificate, :class:`~rdptrust.engine.leaves.LeafReader`), and the
probe's findings for an observer that returned no assessment, before :func:`stage_result`
hands them to :meth:`Inventory.stage <rdptrust.store.inventory.Inventory.stage>`. The scan
loop holds each finished host until its batch is stored: then it looks up the batch's
leaves in one query, stages each host and flushes them in one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from rdptrust.engine.leaves import CertificateLookup, LeafReader, LeafSource, judge_host
from rdptrust.engine.pace import LoopLag, Window
from rdptrust.engine.scan_options import Observer, ScanOptions
from rdptrust.errors import (
    AlreadyRecorded,
    LocalResourceError,
    RdptrustError,
    StoreError,
    WorkerError,
)
from rdptrust.model.outcome import ProbeFailure
from rdptrust.model.probe import ProbeResult
from rdptrust.model.records import (
    CertificateEntry,
    DiagnosisRecord,
    Flushed,
    HostResult,
    ObservationRecord,
    ProblemRecord,
    ScanInfo,
)
from rdptrust.model.target import Target

#: Hosts stored together in one transaction (a batch takes the same 14 statements for 8
#: hosts as for 64, so the cost per host falls with its size).
COMMIT_EVERY = 64
#: Seconds a recorded host waits at most for its commit (and for on_result).
COMMIT_INTERVAL = 0.25


#: Times a target is tried again after this machine hit a limit (open files, buffers).
LOCAL_RETRIES = 3
#: Seconds a worker pauses after a local limit before it takes the next target.
LOCAL_PAUSE_S = 0.5


class ScanInventory(CertificateLookup, Protocol):
    """What the scan loop needs of an inventory (:class:`rdptrust.store.inventory.Inventory`
    has it): the scan's pending targets, a place to record each host, batched commits."""

    def pending_targets(self, scan_id: int) -> Generator[tuple[int, Target], None, None]: ...

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
    ) -> None: ...

    def flush(self) -> Flushed: ...

    def finish_scan(self, scan_id: int, status: str) -> None: ...

    def target_states(self, scan_id: int) -> dict[str, int]: ...


def stage_result(
    inventory: ScanInventory,
    scan_id: int,
    seq: int,
    target: Target,
    result: HostResult,
    *,
    leaves: LeafReader | None = None,
) -> None:
    """Judge *result* (:func:`judge_host`) and stage it as target *seq* of the scan, for
    the inventory's next flush.

    *leaves* is the scan's reader of leaf certificates (a new one when None).
    """
    certificate, problems = judge_host(leaves or LeafReader(inventory), result)
    inventory.stage(
        scan_id,
        seq,
        target,
        result.probe,
        failure=result.failure,
        diagnosis=result.diagnosis,
        certificate=certificate,
        problems=problems,
    )


def record_result(
    inventory: ScanInventory,
    scan_id: int,
    seq: int,
    target: Target,
    result: HostResult,
    *,
    leaves: LeafReader | None = None,
) -> ObservationRecord:
    """Judge *result* and store it at once as target *seq* of the scan (with whatever
    else was staged); AlreadyRecorded when that target is recorded already."""
    stage_result(inventory, scan_id, seq, target, result, leaves=leaves)
    flushed = inventory.flush()
    if (scan_id, seq) in flushed.taken:
        raise AlreadyRecorded(f"target {target} of scan {scan_id} is already recorded")
    return flushed.records[-1]


def default_observer(options: ScanOptions) -> Observer:
    """Each target assessed (:mod:`rdptrust.engine.scan_assessment`), with the client's
    retrievals when ``options.diagnose``."""
    from rdptrust.engine.scan_assessment import assessment_observer

    return assessment_observer(options)


@dataclass(frozen=True)
class ScanSummary:
    """How a run of a scan ended.

    ``recorded``, ``ok`` and ``errors`` count the targets recorded by this run (a
    resumed scan counts only what it did); ``done`` and ``targets`` count the whole scan.
    ``unjudged`` counts the targets left pending because this machine hit a limit (open
    files, buffer space) every time they were tried: nothing is recorded for them, and
    ``local_limit`` says which limit (None when none was hit). ``concurrency`` is how
    many targets were in flight at the end (lowered from the options' after a limit).
    """

    scan_id: int
    status: str
    targets: int
    done: int
    recorded: int
    ok: int
    errors: int
    elapsed_s: float
    unjudged: int = 0
    local_limit: str | None = None
    concurrency: int = 0
    #: targets of a queued scan that another worker recorded first (this one's lease
    #: had passed); nothing was recorded for them here
    taken: int = 0
    #: at most this many hosts were in flight once this machine's CPU could not keep up
    #: with more (:mod:`rdptrust.engine.pace`); None when it always could
    paced: int | None = None

    @property
    def interrupted(self) -> bool:
        return self.status == "interrupted"

    @property
    def hosts_per_second(self) -> float:
        return self.recorded / self.elapsed_s if self.elapsed_s > 0 else 0.0


class TokenBucket:
    """Lets at most *rate* starts happen per second (no bursts beyond one)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._tokens = 1.0
        self._last = time.monotonic()

    async def acquire(self) -> None:
        while True:
            now = time.monotonic()
            self._tokens = min(1.0, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return
            await asyncio.sleep((1.0 - self._tokens) / self.rate)


async def observe_with_deadline(observer: Observer, target: Target, deadline: float) -> HostResult:
    """Run *observer* on *target* within *deadline* seconds; any failure becomes a result."""
    try:
        async with asyncio.timeout(deadline):
            return await observer(target)
    except TimeoutError:
        return HostResult(
            None, ProbeFailure("timeout", f"{target}: no result within {deadline:g} s")
        )
    except WorkerError:
        raise  # not the host's: the scan stops, the target stays pending
    except RdptrustError as exc:
        return HostResult(None, ProbeFailure.from_exception(exc))
    except Exception as exc:
        # One host must never sink the scan; the failure is kept with the host.
        return HostResult(None, ProbeFailure("internal", f"{target}: {type(exc).__name__}: {exc}"))


async def run_scan(
    inventory: ScanInventory,
    scan: ScanInfo,
    options: ScanOptions,
    *,
    observer: Observer | None = None,
    on_result: Callable[[ObservationRecord], None] | None = None,
    on_batch: Callable[[list[ObservationRecord]], None] | None = None,
    stop: asyncio.Event | None = None,
    leaf_source: LeafSource | None = None,
    grace_s: float = 0.0,
    remote_lag: Callable[[], float] | None = None,
    pace: Window | None = None,
) -> ScanSummary:
    """Probe every pending target of *scan* and record each as it completes.

    Returns when all targets are done (status ``done``) or *stop* was set (status
    ``interrupted``; the targets in flight stay pending). Records are committed in
    batches (:data:`COMMIT_EVERY` hosts or :data:`COMMIT_INTERVAL` seconds, whichever
    comes first) and *on_result* sees each one after its commit (*on_batch* each committed
    batch at once, right after its commit), so a killed scan
    neither reports a host it then forgets nor reports one twice after ``--resume``.
    A :class:`StoreError` while recording stops the scan the same way and is raised
    after the scan is marked interrupted (when the database still allows it), as is a
    :class:`WorkerError` from an observer in worker processes (*leaf_source* is where
    those processes' readings of leaf certificates are found; *remote_lag* how late their
    event loops run, which paces the scan as this loop's own lag does: see
    :mod:`rdptrust.engine.pace`). *pace* is the window to start from (one a run of
    several scans keeps between them); by default a new one.
    """
    observe = observer or default_observer(options)
    stop = stop or asyncio.Event()
    bucket = TokenBucket(options.rate) if options.rate else None
    deadline = options.host_deadline() + grace_s
    pending = inventory.pending_targets(scan.id)
    counts = {"recorded": 0, "ok": 0, "errors": 0}
    taken = {"count": 0}
    failure: list[BaseException] = []
    started = time.monotonic()
    # Finished but not yet stored: staged and stored at the next flush, reported
    # (on_result) only once durable.
    held: list[tuple[int, Target, HostResult]] = []
    leaves = LeafReader(inventory, source=leaf_source)
    # Targets to try again after a local limit, how often each was tried, and how many
    # workers may still run (halved at each limit; never below one).
    again: list[tuple[int, Target]] = []
    tries: dict[int, int] = {}
    local: dict[str, Any] = {"allowed": options.concurrency, "unjudged": 0, "limit": None}

    def flush() -> None:
        # Stages what is held (its leaves looked up in one query) and stores it, in one
        # transaction; a no-op when nothing is.
        batch = held.copy()
        held.clear()
        try:
            leaves.prefetch(r.probe.leaf for _, _, r in batch if r.probe and r.probe.leaf)
            for seq, target, result in batch:
                stage_result(inventory, scan.id, seq, target, result, leaves=leaves)
            flushed = inventory.flush()
        except (StoreError, ValueError) as exc:
            failure.append(exc)
            stop.set()
            return
        # a worker of a queued scan whose lease passed: another took those over
        taken["count"] += len(flushed.taken)
        records = list(flushed.records)
        for record in records:
            counts["recorded"] += 1
            counts["ok" if record.ok else "errors"] += 1
            if on_result is not None:
                on_result(record)
        if on_batch is not None and records:
            on_batch(records)

    async def flusher() -> None:
        while True:
            await asyncio.sleep(COMMIT_INTERVAL)
            flush()

    def local_limit(seq: int, target: Target, failure: ProbeFailure) -> None:
        # Not the host's fault: nothing is recorded, the target is tried again later
        # with fewer targets in flight, and after LOCAL_RETRIES it stays pending.
        local["limit"] = local["limit"] or failure.message
        local["allowed"] = max(1, local["allowed"] // 2)
        tries[seq] = tries.get(seq, 0) + 1
        if tries[seq] <= LOCAL_RETRIES:
            again.append((seq, target))
        else:
            local["unjudged"] += 1

    async def worker(index: int) -> None:
        while not stop.is_set() and index < local["allowed"]:
            await window.admit()
            try:
                if again:
                    seq, target = again.pop(0)
                else:
                    try:
                        seq, target = next(pending)
                    except StopIteration:
                        return
                if bucket is not None:
                    await bucket.acquire()
                result = await observe_with_deadline(observe, target, deadline)
            finally:
                window.release()
            if result.failure is not None and result.failure.kind == LocalResourceError.kind:
                local_limit(seq, target, result.failure)
                await asyncio.sleep(LOCAL_PAUSE_S)
                continue
            held.append((seq, target, result))
            if len(held) >= COMMIT_EVERY:
                flush()

    # as many in flight as this loop (and the workers' loops) can serve on time
    window = pace if pace is not None else Window(options.concurrency, options.timeout)
    lag = LoopLag(lambda own: window.observe(max(own, remote_lag()) if remote_lag else own))
    lag.start()
    workers = {asyncio.create_task(worker(index)) for index in range(options.concurrency)}
    stopper = asyncio.create_task(stop.wait())
    committer = asyncio.create_task(flusher())
    try:
        while workers:
            done, _ = await asyncio.wait(workers | {stopper}, return_when=asyncio.FIRST_COMPLETED)
            if stopper in done:
                break
            for task in done:
                workers.discard(task)
                exc = task.exception()
                if exc is not None:
                    failure.append(exc)
                    stop.set()
            if not workers and again and not stop.is_set():
                # the workers that would have taken these ended first
                workers.add(asyncio.create_task(worker(0)))
    finally:
        lag.stop()
        stopper.cancel()
        committer.cancel()
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, stopper, committer, return_exceptions=True)
        flush()
        with contextlib.suppress(StoreError):
            pending.close()
        states = _states_or_none(inventory, scan.id)
        status = "done" if states is not None and states["pending"] == 0 else "interrupted"
        with contextlib.suppress(StoreError):
            inventory.finish_scan(scan.id, status)
    if failure:
        raise failure[0]
    return ScanSummary(
        scan_id=scan.id,
        status=status,
        targets=scan.target_count,
        done=states["done"] if states is not None else 0,
        recorded=counts["recorded"],
        ok=counts["ok"],
        errors=counts["errors"],
        elapsed_s=time.monotonic() - started,
        unjudged=local["unjudged"] + len(again),
        local_limit=local["limit"],
        concurrency=local["allowed"],
        taken=taken["count"],
        paced=window.paced,
    )


def _states_or_none(inventory: ScanInventory, scan_id: int) -> dict[str, int] | None:
    try:
        return inventory.target_states(scan_id)
    except StoreError:
        return None
