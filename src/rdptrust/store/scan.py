"""The scan engine: probe many targets concurrently and stream each result into the inventory.

A fixed pool of workers pulls pending targets from the inventory a batch at a time, so
memory stays flat however many targets a scan has: nothing is kept per target once it
is recorded. Each target gets a deadline of its own; an optional token bucket limits
how many targets start per second. Setting the *stop* event (the command line does so
on Ctrl-C and SIGTERM) cancels the targets in flight, which stay pending, and the scan
is marked interrupted: :func:`run_scan` on the same scan later probes exactly the
targets still pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rdptrust.errors import RdptrustError, StoreError
from rdptrust.model.outcome import ProbeFailure
from rdptrust.model.probe import ENUMERATION_REQUESTS, ProbeResult
from rdptrust.model.target import Target
from rdptrust.net.connection import TLS_VERSIONS
from rdptrust.net.probe import probe_host
from rdptrust.store.inventory import DiagnosisRecord, Inventory, ObservationRecord, ScanInfo

#: Recorded hosts committed together (one SQLite commit costs as much as recording a host).
COMMIT_EVERY = 64
#: Seconds a recorded host waits at most for its commit (and for on_result).
COMMIT_INTERVAL = 0.25
#: Seconds added to the per-host deadline beyond the connection time-outs.
_DEADLINE_SLACK = 2.0
#: File descriptors kept back for the inventory, the terminal and the interpreter.
_RESERVED_FILES = 64
#: Parallel retrievals a diagnosis may have open at once (root list, AIA, CRL, OCSP).
_DIAGNOSE_SOCKETS = 8


@dataclass(frozen=True)
class ScanOptions:
    """How a scan probes each target.

    ``timeout`` is the budget of each connection (connect, negotiation and TLS).
    ``deadline`` bounds all the work on one target; None means "derived from the
    time-outs" (:meth:`host_deadline`). ``rate`` is targets started per second, None for
    no limit. ``enumerate`` adds one connection per security protocol and TLS version;
    ``diagnose`` runs the diagnosis (with its retrievals) on each host; ``url_timeout``
    is then how long each retrieval may take (one that does not answer counts as the
    Windows time-out in the prediction), ``root_update`` whether the
    modelled client fetches the root list, ``root_list_url`` where from (None: the
    diagnosis' default, the Windows Update URL), ``ca_files`` extra trusted CAs and
    ``known_hosts`` the pinned-host store (None: rdptrust's default).
    """

    concurrency: int = 200
    timeout: float = 5.0
    deadline: float | None = None
    rate: float | None = None
    enumerate: bool = False
    diagnose: bool = False
    url_timeout: float = 15.0
    root_update: bool = True
    root_list_url: str | None = None
    ca_files: tuple[str, ...] = ()
    known_hosts: str | None = None

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")
        if self.rate is not None and self.rate <= 0:
            raise ValueError("rate must be positive")

    def host_deadline(self) -> float:
        """Seconds allowed for one target: the given deadline, or one derived from the time-outs."""
        if self.deadline is not None:
            return self.deadline
        budget = self.timeout
        if self.enumerate:
            budget += self.timeout
        if self.diagnose:
            # issuer fetches (AIA) come before the revocation fetches of the path
            budget += 2 * self.url_timeout
        return budget + _DEADLINE_SLACK

    def sockets_per_host(self) -> int:
        """The most connections one target can have open at the same time."""
        sockets = 1
        if self.enumerate:
            # one per protocol and per TLS version, and the NTLM one, side by side
            sockets += len(ENUMERATION_REQUESTS) + len(TLS_VERSIONS) + 1
        if self.diagnose:
            sockets += _DIAGNOSE_SOCKETS
        return sockets

    def to_json(self) -> dict[str, Any]:
        return {
            "concurrency": self.concurrency,
            "timeout": self.timeout,
            "deadline": self.deadline,
            "rate": self.rate,
            "enumerate": self.enumerate,
            "diagnose": self.diagnose,
            "url_timeout": self.url_timeout,
            "root_update": self.root_update,
            "root_list_url": self.root_list_url,
            "ca_files": list(self.ca_files),
            "known_hosts": self.known_hosts,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScanOptions:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        if "ca_files" in known:
            known["ca_files"] = tuple(known["ca_files"])
        return cls(**known)


def fit_concurrency(options: ScanOptions) -> int:
    """How many targets can be in flight at once within the open-file limit.

    Raises the process's soft limit toward what ``options.concurrency`` needs (up to the
    hard limit) and returns the concurrency that fits: ``options.concurrency`` itself
    unless the hard limit is lower than that needs.
    """
    needed = options.concurrency * options.sockets_per_host() + _RESERVED_FILES
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return options.concurrency
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return options.concurrency
    return max(1, (soft - _RESERVED_FILES) // options.sockets_per_host())


@dataclass(frozen=True)
class HostResult:
    """What observing one target produced.

    ``probe`` is None when no probe result exists (the deadline passed, or the observer
    failed); ``failure`` then says why. ``diagnosis`` is None when the host was not
    diagnosed.
    """

    probe: ProbeResult | None
    failure: ProbeFailure | None = None
    diagnosis: DiagnosisRecord | None = None


#: Observes one target; must return a result for every target, never raise for a host.
Observer = Callable[[Target], Awaitable[HostResult]]


def probe_observer(options: ScanOptions) -> Observer:
    """The default observer: the main probe connection, plus enumeration when asked."""

    async def observe(target: Target) -> HostResult:
        result = await probe_host(
            target,
            timeout=options.timeout,
            enumerate_protocols=options.enumerate,
            enumerate_tls_versions=options.enumerate,
            standard_security=False,
            # which machine answered: one more connection, with --enumerate
            ntlm=options.enumerate,
        )
        return HostResult(result)

    return observe


def default_observer(options: ScanOptions) -> Observer:
    """The diagnosis with ``options.diagnose``, else the probe."""
    if options.diagnose:
        from rdptrust.store.diagnosis import diagnose_observer

        return diagnose_observer(options)
    return probe_observer(options)


@dataclass(frozen=True)
class ScanSummary:
    """How a run of a scan ended.

    ``recorded``, ``ok`` and ``errors`` count the targets recorded by this run (a
    resumed scan counts only what it did); ``done`` and ``targets`` count the whole scan.
    """

    scan_id: int
    status: str
    targets: int
    done: int
    recorded: int
    ok: int
    errors: int
    elapsed_s: float

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
    except RdptrustError as exc:
        return HostResult(None, ProbeFailure.from_exception(exc))
    except Exception as exc:
        # One host must never sink the scan; the failure is kept with the host.
        return HostResult(None, ProbeFailure("internal", f"{target}: {type(exc).__name__}: {exc}"))


async def run_scan(
    inventory: Inventory,
    scan: ScanInfo,
    options: ScanOptions,
    *,
    observer: Observer | None = None,
    on_result: Callable[[ObservationRecord], None] | None = None,
    stop: asyncio.Event | None = None,
) -> ScanSummary:
    """Probe every pending target of *scan* and record each as it completes.

    Returns when all targets are done (status ``done``) or *stop* was set (status
    ``interrupted``; the targets in flight stay pending). Records are committed in
    batches (:data:`COMMIT_EVERY` hosts or :data:`COMMIT_INTERVAL` seconds, whichever
    comes first) and *on_result* sees each one after its commit, so a killed scan
    neither reports a host it then forgets nor reports one twice after ``--resume``.
    A :class:`StoreError` while recording stops the scan the same way and is raised
    after the scan is marked interrupted (when the database still allows it).
    """
    observe = observer or default_observer(options)
    stop = stop or asyncio.Event()
    bucket = TokenBucket(options.rate) if options.rate else None
    deadline = options.host_deadline()
    pending = inventory.pending_targets(scan.id)
    counts = {"recorded": 0, "ok": 0, "errors": 0}
    failure: list[BaseException] = []
    started = time.monotonic()
    # Recorded but not yet committed; reported (on_result) only once durable.
    unflushed: list[ObservationRecord] = []

    def flush() -> None:
        # Commits whatever batch is open, even with nothing to report (a record that
        # failed first in its batch leaves the batch open); a no-op when none is.
        try:
            inventory.commit()
        except StoreError as exc:
            unflushed.clear()
            failure.append(exc)
            stop.set()
            return
        batch = unflushed.copy()
        unflushed.clear()
        for record in batch:
            counts["recorded"] += 1
            counts["ok" if record.ok else "errors"] += 1
            if on_result is not None:
                on_result(record)

    async def flusher() -> None:
        while True:
            await asyncio.sleep(COMMIT_INTERVAL)
            flush()

    async def worker() -> None:
        while not stop.is_set():
            try:
                seq, target = next(pending)
            except StopIteration:
                return
            if bucket is not None:
                await bucket.acquire()
            result = await observe_with_deadline(observe, target, deadline)
            try:
                record = inventory.record(
                    scan.id,
                    seq,
                    target,
                    result.probe,
                    failure=result.failure,
                    diagnosis=result.diagnosis,
                    commit=False,
                )
            except StoreError as exc:
                failure.append(exc)
                stop.set()
                return
            unflushed.append(record)
            if len(unflushed) >= COMMIT_EVERY:
                flush()

    workers = {asyncio.create_task(worker()) for _ in range(options.concurrency)}
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
    finally:
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
    )


def _states_or_none(inventory: Inventory, scan_id: int) -> dict[str, int] | None:
    try:
        return inventory.target_states(scan_id)
    except StoreError:
        return None
