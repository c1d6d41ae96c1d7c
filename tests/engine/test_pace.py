"""The scan's pace: fewer hosts in flight while the event loop cannot serve them on time."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest

from fixtures.inventory import served
from rdptrust.engine import pace, queue
from rdptrust.engine.fleet import assess_many
from rdptrust.engine.options import AssessOptions
from rdptrust.engine.pace import FLOOR, HOLD_S, START, LoopLag, Window, lag_limit
from rdptrust.engine.queue import WorkSummary, work_queue
from rdptrust.engine.scan import run_scan
from rdptrust.engine.scan_options import ScanOptions
from rdptrust.engine.workers import ProcessObserver, _Worker
from rdptrust.lab.certs import windows_self_signed
from rdptrust.model.outcome import ProbeFailure
from rdptrust.model.probe import ProbeResult
from rdptrust.model.records import HostResult
from rdptrust.model.target import Target
from rdptrust.store.inventory import Inventory


def test_the_lag_limit_is_a_twentieth_of_the_timeout_within_bounds() -> None:
    assert lag_limit(2.0) == pytest.approx(0.1)
    assert lag_limit(5.0) == pytest.approx(0.25)
    assert lag_limit(600.0) == pytest.approx(0.25)
    assert lag_limit(0.1) == pytest.approx(0.05)


def test_the_window_halves_on_lag_holds_then_grows_back() -> None:
    # Given a window for --concurrency 1000 and 5 s connections (limit 0.25 s of lag)
    window = Window(1000, 5.0)
    assert window.limit == START
    assert window.paced is None
    now = 100.0

    def full() -> None:
        window.in_flight = window.limit

    # When the loop keeps up with a full window, it doubles up to the ceiling, once per hold
    full()
    window.observe(0.01, now)
    assert window.limit == 2 * START
    full()
    window.observe(0.01, now + HOLD_S / 2)  # too soon after the last change
    assert window.limit == 2 * START
    window.in_flight = 100  # not full: no reason to grow
    window.observe(0.01, now + HOLD_S)
    assert window.limit == 2 * START
    full()
    window.observe(0.01, now + HOLD_S)
    assert window.limit == 1000
    assert window.paced is None  # never slowed down
    # When the loop runs late, it halves, and not again before the hold
    window.observe(0.3, now + 2 * HOLD_S)
    assert window.limit == 500
    assert window.paced == 500
    window.observe(0.3, now + 2.5 * HOLD_S)
    assert window.limit == 500
    # nor while the hosts in flight are still above the new limit
    window.observe(0.3, now + 3 * HOLD_S)
    assert window.limit == 500
    window.in_flight = 500
    # A lag between half the limit and the limit leaves it alone
    window.observe(0.2, now + 3 * HOLD_S)
    assert window.limit == 500
    # Then it grows by a quarter at a time, no longer doubling
    window.observe(0.05, now + 4 * HOLD_S)
    assert window.limit == 625
    assert window.paced == 625
    # And it never falls below the floor
    for step in range(5, 30):
        window.in_flight = window.limit
        window.observe(5.0, now + step * HOLD_S)
    assert window.limit == FLOOR


def test_a_small_concurrency_is_the_start_and_the_floor() -> None:
    window = Window(3, 5.0)
    assert window.limit == 3
    window.observe(1.0, 100.0)
    assert window.limit == 3  # not below what was asked for when that is under the floor
    assert window.paced is None


async def test_admission_keeps_the_limit_in_order_and_survives_cancellation() -> None:
    window = Window(2, 5.0)
    await window.admit()
    await window.admit()
    assert window.in_flight == 2
    order: list[str] = []

    async def wait(name: str) -> None:
        await window.admit()
        order.append(name)

    first = asyncio.create_task(wait("first"))
    cancelled = asyncio.create_task(wait("cancelled"))
    last = asyncio.create_task(wait("last"))
    await asyncio.sleep(0)
    assert order == []
    # a waiter cancelled before its turn takes no place
    cancelled.cancel()
    await asyncio.sleep(0)
    window.release()
    window.release()
    await asyncio.gather(first, last)
    assert order == ["first", "last"]
    assert window.in_flight == 2
    # a waiter admitted and cancelled before it ran gives its place back
    late = asyncio.create_task(window.admit())
    await asyncio.sleep(0)
    window.release()  # admits it...
    late.cancel()  # ...and it is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await late
    assert window.in_flight == 1


async def test_the_lag_is_the_loop_s_sustained_lateness_not_one_stall() -> None:
    seen: list[float] = []
    lag = LoopLag(seen.append)
    lag.start()
    try:
        # Given a loop that stalls once for 0.3 s among timely turns
        await asyncio.sleep(0.25)
        time.sleep(0.3)  # noqa: ASYNC251 - one stall (a commit, a collection)
        await asyncio.sleep(0.25)
        # Then that stall alone is not the loop's lag
        assert max(seen) < 0.1, seen
        # When every turn of the loop takes 0.2 s
        for _ in range(8):
            await asyncio.sleep(0)
            time.sleep(0.2)  # noqa: ASYNC251 - a loop with more work than it can do
        # Then the lag says so
        assert lag.lag >= 0.1, seen
    finally:
        lag.stop()


async def _busy(timeout_s: float, steps: int, cpu_s: float) -> bool:
    """Work as a connection does on a loaded machine: *steps* turns of the loop, each
    costing *cpu_s* of the loop's time, against a time-out that counts from the start,
    whatever the time went to. False when the time-out passed first."""
    began = time.monotonic()
    for _ in range(steps):
        await asyncio.sleep(0)
        time.sleep(cpu_s)  # noqa: ASYNC251 - the loop's own work (TLS, parsing, judging)
        if time.monotonic() - began > timeout_s:
            return False
    return True


def _busy_observer(timeout_s: float, steps: int, cpu_s: float) -> object:
    """A scan observer that works as :func:`_busy` does."""
    credentials = windows_self_signed("WIN-PACE")

    async def observe(target: Target) -> HostResult:
        if not await _busy(timeout_s, steps, cpu_s):
            return HostResult(None, ProbeFailure("timeout", f"{target}: timed out"))
        return HostResult(served(target, credentials))

    return observe


async def _scan(db: str, count: int, timeout_s: float) -> tuple[int, int | None]:
    options = ScanOptions(concurrency=count, timeout=timeout_s)
    targets = [Target("127.0.0.1", 20000 + i) for i in range(count)]
    with Inventory.open(db) as inventory:
        scan = inventory.create_scan([], {}, targets)
        summary = await run_scan(
            inventory,
            scan,
            options,
            observer=_busy_observer(timeout_s, steps=6, cpu_s=0.0001),  # type: ignore[arg-type]
        )
    assert summary.recorded == count
    return summary.errors, summary.paced


async def test_more_hosts_than_the_loop_can_serve_do_not_time_out(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 1,500 hosts at once, each needing about 1 ms of the loop over six turns, and
    # a 1 s time-out: with all of them in flight, a turn of the loop takes about 0.25 s
    db = f"{tmp_path}/paced.sqlite3"
    # When the scan runs, it paces itself: nobody times out, and the summary says so
    errors, paced = await _scan(db, 1500, 1.0)
    assert errors == 0
    assert paced is not None
    assert paced < 1500
    # Whereas with every host started at once and no pacing, they time out
    monkeypatch.setattr(pace, "START", 10**6)
    monkeypatch.setattr(Window, "observe", lambda self, lag, now=None: None)
    errors, paced = await _scan(f"{tmp_path}/unpaced.sqlite3", 1500, 1.0)
    assert errors > 750
    assert paced is None


async def _quick_scan(db: str, remote_lag: float) -> int | None:
    async def observe(target: Target) -> HostResult:
        await asyncio.sleep(0.05)
        return HostResult(None, ProbeFailure("connect", f"{target}: connection refused"))

    options = ScanOptions(concurrency=1000, timeout=5.0)
    targets = [Target("127.0.0.1", 20000 + i) for i in range(1000)]
    with Inventory.open(db) as inventory:
        scan = inventory.create_scan([], {}, targets)
        summary = await run_scan(
            inventory, scan, options, observer=observe, remote_lag=lambda: remote_lag
        )
    assert summary.recorded == 1000
    return summary.paced


async def test_the_worker_processes_lag_paces_the_scan(tmp_path: object) -> None:
    # Given worker processes whose loops say they run 10 s late, the scan slows down
    paced = await _quick_scan(f"{tmp_path}/late.sqlite3", 10.0)
    assert paced is not None
    assert paced <= START // 2
    # and with workers on time it does not
    assert await _quick_scan(f"{tmp_path}/on-time.sqlite3", 0.0) is None


async def test_a_worker_process_result_carries_its_loop_lag() -> None:
    # Given an observer of worker processes (not started) with one target in flight
    observer = ProcessObserver(ScanOptions(), 1)
    worker = _Worker(0, process=None, targets=None, results=None)  # type: ignore[arg-type]
    observer._workers.append(worker)
    observer._loop = asyncio.get_running_loop()
    future: asyncio.Future[HostResult] = asyncio.get_running_loop().create_future()
    observer._waiting[7] = (future, worker)
    worker.in_flight = 1
    # When its "ready" message and then its result arrive
    observer._arrived(worker, ("ready", 4242, None))
    result = HostResult(None, ProbeFailure("connect", "refused"))
    observer._arrived(worker, (7, result, None, 0.42))
    # Then the result is handed over and the process's lag is known
    assert future.result() is result
    assert worker.pid == 4242
    assert worker.in_flight == 0
    assert observer.lag() == pytest.approx(0.42)


async def _work_queued(
    db: str, count: int, options: ScanOptions, *, batch: int, observer: object
) -> WorkSummary:
    """A queued scan of *count* hosts, worked by one queue worker until it is done."""
    targets = [Target("127.0.0.1", 20000 + i) for i in range(count)]
    with Inventory.open(db) as inventory:
        inventory.create_scan([], {}, targets, site="hq", queued=True)
        return await work_queue(
            inventory,
            site="hq",
            worker="m:1",
            options_for=lambda _scan: options,
            batch=batch,
            exit_when_idle=True,
            observer_for=lambda _options: observer,  # type: ignore[arg-type,return-value]
        )


async def test_a_queue_worker_paces_its_batches_and_says_so(tmp_path: object) -> None:
    # Given a queued scan of 1,500 hosts that need more of the loop than it has at once
    timeout_s = 1.0
    # When one worker takes it in one batch
    summary = await _work_queued(
        f"{tmp_path}/queue.sqlite3",
        1500,
        ScanOptions(concurrency=1500, timeout=timeout_s),
        batch=1500,
        observer=_busy_observer(timeout_s, steps=6, cpu_s=0.0001),
    )
    # Then no host timed out, and the summary says the batch was paced
    assert (summary.recorded, summary.errors) == (1500, 0)
    assert summary.paced is not None
    assert summary.paced < 1500


async def test_a_queue_worker_keeps_one_pace_across_its_batches(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[Window] = []

    def window(ceiling: int, timeout_s: float) -> Window:
        made.append(Window(ceiling, timeout_s))
        if len(made) == 1:
            # the pace the first batch left: 5 at once, held there
            made[0].limit, made[0]._changed = 5, float("inf")
        return made[-1]

    monkeypatch.setattr(queue, "Window", window)
    limits: list[int] = []

    async def observe(target: Target) -> HostResult:
        limits.append(made[-1].limit)
        await asyncio.sleep(0)
        return HostResult(None, ProbeFailure("connect", f"{target}: connection refused"))

    # When a worker scans a queued scan of 30 hosts in three batches
    summary = await _work_queued(
        f"{tmp_path}/queue.sqlite3",
        30,
        ScanOptions(concurrency=20, timeout=5.0),
        batch=10,
        observer=observe,
    )
    # Then the three batches ran under one window, each at the pace the last one left
    assert (summary.batches, summary.recorded) == (3, 30)
    assert len(made) == 1
    assert set(limits) == {5}
    assert made[0].in_flight == 0


def _busy_prober(steps: int, cpu_s: float) -> object:
    """A prober for the library's fleet call that works as :func:`_busy` does."""
    credentials = windows_self_signed("WIN-PACE")

    async def probe(target: Target, options: AssessOptions) -> ProbeResult:
        if not await _busy(options.probe_timeout_s, steps, cpu_s):
            return replace(
                served(target, None), error=ProbeFailure("timeout", f"{target}: timed out")
            )
        return served(target, credentials)

    return probe


async def _timed_out_in_library_scan(count: int) -> int:
    targets = [Target("127.0.0.1", 20000 + i) for i in range(count)]
    options = AssessOptions(probe_timeout_s=1.0)
    timed_out = 0
    async for item in assess_many(
        targets,
        options,
        concurrency=count,
        prober=_busy_prober(steps=6, cpu_s=0.0001),  # type: ignore[arg-type]
    ):
        timed_out += item.probe.error is not None and item.probe.error.kind == "timeout"
    return timed_out


async def test_the_library_fleet_call_paces_itself_too(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given 1,500 hosts at once through rdptrust.scan(), as in the scan test above
    assert await _timed_out_in_library_scan(1500) == 0
    # Whereas unpaced, they time out
    monkeypatch.setattr(pace, "START", 10**6)
    monkeypatch.setattr(Window, "observe", lambda self, lag, now=None: None)
    assert await _timed_out_in_library_scan(1500) > 750
