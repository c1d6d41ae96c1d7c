"""A scan on more than one core: the observer runs in worker processes, one writer records.

``rdptrust scan --workers N`` starts N processes, each with an event loop of its own that
runs the scan's observer (connect, negotiation, TLS, the Windows model's judgement: the
part of a scan that costs CPU). The scan loop (:func:`rdptrust.engine.scan.run_scan`) does
not change: it takes the pending targets, hands each to the least busy process through
:class:`ProcessObserver`, and records what comes back. So the inventory keeps one writer,
and batched commits, ``--resume``, Ctrl-C and the local-limit handling behave as in one
process; a target is recorded exactly once because only the parent records.

On Linux the processes are forked from a fork server, a fresh process that imports the
scanner once for all of them and ends with the scan; on macOS and Windows they are
started with ``spawn`` (neither forks a process that holds threads). Targets go to a process
and results come back over one-way pipes as pickles (about 2 KB per host); a thread per
process reads its results, so nothing here needs the event loop to watch a pipe (which
Windows' event loop cannot). Both sides send what one turn of their event loop produced as
one message (at most :data:`BATCH` items), so a busy scan pays a pipe write and a thread
wake-up per turn, not per host. A process that dies ends the scan: the targets in flight
stay pending and :class:`~rdptrust.errors.WorkerError` says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from typing import Any

from rdptrust.engine.scan_options import ScanOptions, fit_concurrency
from rdptrust.errors import WorkerError
from rdptrust.model.records import CertificateEntry, HostResult
from rdptrust.model.target import Target
from rdptrust.pki.findings import LeafSummary

#: Seconds the scan loop waits beyond a target's own deadline before it gives up on a
#: result (the worker answers a target that ran out of time itself, with the reason).
GRACE_S = 5.0
#: Seconds a worker process may take to start and say it is ready (imports, trust anchors).
START_TIMEOUT_S = 60.0
#: Seconds a process gets to end after its pipe is closed, before it is terminated.
STOP_TIMEOUT_S = 5.0
#: Leaves the workers' readings are kept of until the scan loop records them.
LEAVES_KEPT = 4096
#: Most items (targets, cancellations, results) one pipe message carries.
BATCH = 256


def default_workers() -> int:
    """The cores this process may run on (its CPU affinity where the system says)."""
    affinity = getattr(os, "sched_getaffinity", None)
    if affinity is not None:
        with contextlib.suppress(OSError):
            return max(1, len(affinity(0)))
    return max(1, os.cpu_count() or 1)


#: What the fork server imports once, before it forks any worker (Linux).
PRELOAD = (
    "rdptrust.engine.workers",
    "rdptrust.engine.scan",
    "rdptrust.engine.scan_assessment",
    "rdptrust.engine.leaves",
    "uvloop",
)
#: Observers of this process whose workers came from the fork server (it stops with the last).
_forked_observers = 0


def _context() -> Any:
    """How worker processes start: on Linux forked from a fork server (a fresh process,
    started once per scan, that has imported :data:`PRELOAD` and holds no threads), so
    the workers do not each import the scanner again; elsewhere ``spawn``."""
    if sys.platform.startswith("linux"):
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(list(PRELOAD))
        return context
    return multiprocessing.get_context("spawn")


def _stop_fork_server() -> None:
    """End the fork server and wait for it, so that it does not outlive the scan and its
    CPU, and its workers', count as this process's children's (``RUSAGE_CHILDREN``)."""
    from multiprocessing import forkserver

    stop = getattr(forkserver._forkserver, "_stop", None)  # absent: it ends with us
    if stop is not None:
        with contextlib.suppress(OSError):
            stop()


def share(total: int, index: int, parts: int) -> int:
    """Process *index*'s part of *total* targets in flight, split as evenly as it goes."""
    return total // parts + (1 if index < total % parts else 0)


# --- in the worker process ---------------------------------------------------------------


def _worker_main(targets: Connection, results: Connection, options: Mapping[str, Any]) -> None:
    """A worker process: observe each target it is sent, send back each result."""
    # Ctrl-C goes to the whole process group: the parent decides, and closes our pipe.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    scan_options = ScanOptions.from_json(options)
    fit_concurrency(scan_options)  # this process's own open-file limit, for its share
    try:
        _run_loop(_serve(targets, results, scan_options))
    finally:
        with contextlib.suppress(OSError):
            results.close()


def _run_loop(coro: Any) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
    else:
        uvloop.run(coro)


async def _serve(targets: Connection, results: Connection, options: ScanOptions) -> None:
    from rdptrust.engine.leaves import read_leaf, sha256_hex
    from rdptrust.engine.pace import LoopLag
    from rdptrust.engine.scan import default_observer, observe_with_deadline

    observe = default_observer(options)
    deadline = options.host_deadline()
    loop = asyncio.get_running_loop()
    running: dict[int, asyncio.Task[None]] = {}
    finished = asyncio.Event()
    sent: dict[str, None] = {}  # leaves already sent to the parent (bounded, oldest out)
    lag = LoopLag()  # how late this loop runs, sent with each result (the scan's pace)
    lag.start()
    outbox = _Outbox(loop, results.send)

    async def one(ident: int, target: Target) -> None:
        result = await observe_with_deadline(observe, target, deadline)
        # The leaf as this process read it (its facts are in this process's caches), so
        # the parent need not parse it again; each leaf is sent once.
        leaf = None
        der = result.probe.leaf if result.probe is not None else None
        if der:
            sha256 = sha256_hex(der)
            if sha256 not in sent:
                leaf = (sha256, *read_leaf(der))
                sent[sha256] = None
                if len(sent) > LEAVES_KEPT:
                    del sent[next(iter(sent))]
        outbox.post((ident, result, leaf, lag.lag))
        running.pop(ident, None)

    def receive(messages: list[tuple[str, int, Target | None]]) -> None:
        for what, ident, target in messages:
            if what == "observe" and target is not None:
                running[ident] = loop.create_task(one(ident, target))
            elif what == "cancel":
                task = running.pop(ident, None)
                if task is not None:
                    task.cancel()

    def reader() -> None:
        try:
            while True:
                messages = targets.recv()
                loop.call_soon_threadsafe(receive, messages)
        except (EOFError, OSError):
            pass
        finally:
            loop.call_soon_threadsafe(finished.set)

    thread = threading.Thread(target=reader, name="rdptrust-targets", daemon=True)
    thread.start()
    outbox.post(("ready", os.getpid(), None))
    await finished.wait()
    lag.stop()
    for task in list(running.values()):
        task.cancel()
    await asyncio.gather(*running.values(), return_exceptions=True)
    outbox.flush()


class _Outbox:
    """Items for one pipe, sent together once the event loop's turn is over (a message of
    at most :data:`BATCH` items each). *send* takes the list; what it raises goes to
    *failed* with the items it did not take (by default it is ignored)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        send: Callable[[list[Any]], None],
        failed: Callable[[list[Any], Exception], None] | None = None,
    ) -> None:
        self._loop = loop
        self._send = send
        self._failed = failed
        self.items: list[Any] = []

    def post(self, item: Any) -> None:
        self.items.append(item)
        if len(self.items) == 1:
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        items, self.items = self.items, []
        for start in range(0, len(items), BATCH):
            try:
                self._send(items[start : start + BATCH])
            except (OSError, ValueError) as exc:
                if self._failed is not None:
                    self._failed(items[start:], exc)
                return


# --- in the scanning process -------------------------------------------------------------


@dataclasses.dataclass
class _Worker:
    index: int
    process: Any
    targets: Connection
    results: Connection
    thread: threading.Thread | None = None
    in_flight: int = 0
    handled: int = 0
    pid: int | None = None
    ready: asyncio.Future[None] | None = None
    #: how late its event loop ran, as its last result said (seconds)
    lag: float = 0.0
    #: the targets and cancellations not yet sent to it
    outbox: _Outbox | None = None


class ProcessObserver:
    """An observer that runs in *count* worker processes (see the module docstring).

    Use as ``async with ProcessObserver(options, count) as observe:``; ``observe(target)``
    returns the target's :class:`HostResult` as the in-process observer would, and
    :meth:`leaf` what the worker read of the target's leaf certificate.
    """

    def __init__(self, options: ScanOptions, count: int) -> None:
        if count < 1:
            raise ValueError("count must be at least 1")
        self._options = options
        self._count = count
        self._workers: list[_Worker] = []
        self._waiting: dict[int, tuple[asyncio.Future[HostResult], _Worker]] = {}
        self._leaves: dict[str, tuple[CertificateEntry, LeafSummary | None]] = {}
        self._closing = False
        self._ids = itertools.count()
        self._lost: WorkerError | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: whether this observer's workers come from the fork server (counted in _forked_observers)
        self._forked = False

    async def __aenter__(self) -> ProcessObserver:
        global _forked_observers
        self._loop = asyncio.get_running_loop()
        context = _context()
        if context.get_start_method() == "forkserver":
            _forked_observers += 1
            self._forked = True
        try:
            for index in range(self._count):
                options = dataclasses.replace(
                    self._options,
                    concurrency=max(1, share(self._options.concurrency, index, self._count)),
                )
                to_worker_r, to_worker_w = context.Pipe(duplex=False)
                from_worker_r, from_worker_w = context.Pipe(duplex=False)
                process = context.Process(
                    target=_worker_main,
                    args=(to_worker_r, from_worker_w, options.to_json()),
                    name=f"rdptrust-scan-worker-{index + 1}",
                    daemon=True,
                )
                process.start()
                # the parent keeps only its own ends
                to_worker_r.close()
                from_worker_w.close()
                worker = _Worker(index, process, to_worker_w, from_worker_r)
                worker.outbox = self._outbox(worker)
                worker.ready = self._loop.create_future()
                worker.thread = threading.Thread(
                    target=self._read, args=(worker,), name=f"rdptrust-results-{index + 1}"
                )
                worker.thread.daemon = True
                worker.thread.start()
                self._workers.append(worker)
            async with asyncio.timeout(START_TIMEOUT_S):
                await asyncio.gather(*(w.ready for w in self._workers if w.ready is not None))
        except BaseException:
            await self.close()
            if self._lost is not None:
                raise self._lost from None
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _outbox(self, worker: _Worker) -> _Outbox:
        assert self._loop is not None

        def failed(items: list[tuple[str, int, Target | None]], exc: Exception) -> None:
            # the targets not sent fail as the pipe did; their waits end with it
            error = self._lost or WorkerError(
                f"scan worker {worker.index + 1} cannot take targets ({exc})"
            )
            for what, ident, _ in items:
                waiting = self._waiting.pop(ident, None) if what == "observe" else None
                if waiting is not None:
                    worker.in_flight -= 1
                    if not waiting[0].done():
                        waiting[0].set_exception(error)

        return _Outbox(self._loop, worker.targets.send, failed)

    def _read(self, worker: _Worker) -> None:
        """Thread: each batch of results *worker* sends, handed to the event loop."""
        loop = self._loop
        assert loop is not None
        try:
            while True:
                messages = worker.results.recv()
                loop.call_soon_threadsafe(self._arrived_all, worker, messages)
        except (EOFError, OSError):
            pass
        loop.call_soon_threadsafe(self._ended, worker)

    def _arrived_all(self, worker: _Worker, messages: list[tuple[Any, ...]]) -> None:
        for message in messages:
            self._arrived(worker, message)

    def _arrived(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        ident, result, leaf, *lag = message
        if ident == "ready":
            worker.pid = result
            if worker.ready is not None and not worker.ready.done():
                worker.ready.set_result(None)
            return
        waiting = self._waiting.pop(ident, None)
        if waiting is None:
            return  # given up on already
        future, owner = waiting
        owner.in_flight -= 1
        owner.handled += 1
        if lag:
            owner.lag = float(lag[0])
        if leaf is not None:
            sha256, entry, summary = leaf
            self._leaves[sha256] = (entry, summary)
            if len(self._leaves) > LEAVES_KEPT:
                del self._leaves[next(iter(self._leaves))]
        if not future.done():
            future.set_result(result)

    def _ended(self, worker: _Worker) -> None:
        if self._lost is None and not self._closing:
            process = worker.process
            process.join(timeout=1.0)
            code = process.exitcode
            self._lost = WorkerError(
                f"scan worker {worker.index + 1} (pid {worker.pid or process.pid}) ended "
                f"unexpectedly (exit code {code}); the targets in flight stay pending"
            )
        lost = self._lost or WorkerError(f"scan worker {worker.index + 1} ended")
        if worker.ready is not None and not worker.ready.done():
            worker.ready.set_exception(lost)
        for ident, (future, owner) in list(self._waiting.items()):
            if owner is worker:
                del self._waiting[ident]
                if not future.done():
                    future.set_exception(lost)

    async def __call__(self, target: Target) -> HostResult:
        if self._lost is not None:
            raise self._lost
        worker = min(self._workers, key=lambda w: w.in_flight)
        ident = next(self._ids)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[HostResult] = loop.create_future()
        self._waiting[ident] = (future, worker)
        worker.in_flight += 1
        outbox = worker.outbox
        assert outbox is not None
        observe = ("observe", ident, target)
        outbox.post(observe)
        try:
            # the scan loop's deadline for the target ends this wait (run_scan's grace_s)
            return await future
        except BaseException:
            if self._waiting.pop(ident, None) is not None:
                worker.in_flight -= 1
                if observe in outbox.items:
                    outbox.items.remove(observe)  # not sent yet: nothing to cancel
                else:
                    outbox.post(("cancel", ident, None))
            raise

    def leaf(self, sha256: str) -> tuple[CertificateEntry, LeafSummary | None] | None:
        """What a worker read of the leaf *sha256* (:func:`~rdptrust.engine.scan.read_leaf`)."""
        return self._leaves.pop(sha256, None)

    def lag(self) -> float:
        """How late the worker processes' event loops run, the worst of them (seconds)."""
        return max((w.lag for w in self._workers), default=0.0)

    @property
    def handled(self) -> tuple[int, ...]:
        """How many results each worker process has sent, in worker order."""
        return tuple(w.handled for w in self._workers)

    @property
    def processes(self) -> tuple[Any, ...]:
        """The worker processes (``multiprocessing.Process``), in worker order."""
        return tuple(w.process for w in self._workers)

    async def close(self) -> None:
        """Close the pipes, let the processes end, terminate one that does not."""
        self._closing = True
        for worker in self._workers:
            with contextlib.suppress(OSError):
                worker.targets.close()
        loop = asyncio.get_running_loop()
        for worker in self._workers:
            process = worker.process
            await loop.run_in_executor(None, process.join, STOP_TIMEOUT_S)
            if process.is_alive():
                process.terminate()
                await loop.run_in_executor(None, process.join, STOP_TIMEOUT_S)
            with contextlib.suppress(OSError):
                worker.results.close()
        for future, _ in self._waiting.values():
            if not future.done():
                future.cancel()
        self._waiting.clear()
        global _forked_observers
        if self._forked:
            self._forked = False
            _forked_observers -= 1
            if _forked_observers == 0:
                await loop.run_in_executor(None, _stop_fork_server)
