"""How many hosts a scan keeps in flight: as many as asked, unless this machine's CPU
cannot serve them all without making them wait.

A connection's time-out counts from its first step, whether the time goes to the network
or to waiting for this process's event loop. A loop with more connections than its CPU
can serve runs every callback late; past a point hosts "time out" while their answers sit
unread, and the inventory records them as unreachable. (1,000 loopback lab hosts at once
with ``--timeout 0.5``, on two cores that also run one other busy process: 120 to 314 such
time-outs in three scans without pacing, 0 to 34 with it.)

So a scan measures how late its event loop runs (:class:`LoopLag`: a timer every
:data:`TICK_S`, the median lateness of the last :data:`LAG_TICKS`, so that one stall, a
commit or a garbage collection, does not count) and keeps the hosts in flight where that
lateness stays small beside the connection time-out (:class:`Window`): halved when the loop
runs more than :func:`lag_limit` late, grown again while it runs under half of that
(doubling until the first halving, then by a quarter), never above ``--concurrency`` and
never below :data:`FLOOR`. A change waits :data:`HOLD_S` after the last one; a halving
also waits until the hosts in flight are down to the last one's limit, and growing waits
for a full window, so the limit follows what the loop did with it. A scan whose loop keeps
up never leaves ``--concurrency``: the window starts at :data:`START` hosts, above the
default of 200.

With ``--workers`` the processes that connect report their own loop's lag with each
result, and the scanning process paces on the worst of them and its own. A queue worker
(``rdptrust worker``) keeps one window for all its batches, so each starts at the pace the
last one found.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import statistics
import time
from collections.abc import Callable

#: Seconds between the timer's runs.
TICK_S = 0.05
#: Runs of the timer whose median lateness is the loop's lag.
LAG_TICKS = 4
#: Hosts in flight at the start (or --concurrency, when lower).
START = 256
#: Hosts in flight at the least.
FLOOR = 8
#: Seconds between two changes of the window.
HOLD_S = 0.25
#: The lag limit's share of the connection time-out, and its bounds in seconds.
LAG_SHARE = 1 / 20
LAG_BOUNDS = (0.05, 0.25)


def lag_limit(timeout_s: float) -> float:
    """Seconds of loop lag above which a scan with *timeout_s* connections slows down.

    A connection waits for the loop about five times (connect, X.224, the TLS flights,
    the close): a twentieth of its time-out at each keeps the waiting to a quarter of it.
    """
    low, high = LAG_BOUNDS
    return min(high, max(low, timeout_s * LAG_SHARE))


class LoopLag:
    """How late the running event loop runs a timer, in seconds (0 when on time): the
    median of its last :data:`LAG_TICKS` runs."""

    def __init__(self, on_tick: Callable[[float], None] | None = None) -> None:
        self.lag = 0.0
        self._recent: collections.deque[float] = collections.deque(maxlen=LAG_TICKS)
        self._on_tick = on_tick
        self._due = 0.0
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Start measuring on the running loop."""
        self._schedule()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _schedule(self) -> None:
        self._due = time.monotonic() + TICK_S
        self._handle = asyncio.get_running_loop().call_later(TICK_S, self._tick)

    def _tick(self) -> None:
        self._recent.append(max(0.0, time.monotonic() - self._due))
        self.lag = statistics.median(self._recent)
        if self._on_tick is not None:
            self._on_tick(self.lag)
        self._schedule()


class Window:
    """Hosts allowed in flight at once: at most *ceiling*, fewer while the loop lags.

    :meth:`admit` waits for a place (first come, first served) and :meth:`release` gives
    it back; :meth:`observe` moves the limit by the lag measured.
    """

    def __init__(self, ceiling: int, timeout_s: float) -> None:
        self.ceiling = max(1, ceiling)
        self.limit = min(self.ceiling, START)
        self.high = lag_limit(timeout_s)
        self.in_flight = 0
        #: the largest limit in force after the first halving (None: never halved)
        self.paced: int | None = None
        self._doubling = True
        self._changed = -HOLD_S
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def observe(self, lag: float, now: float | None = None) -> None:
        """Move the limit for a loop that runs *lag* seconds late (at monotonic *now*)."""
        now = time.monotonic() if now is None else now
        if now - self._changed < HOLD_S:
            return
        if lag > self.high:
            cut = max(min(FLOOR, self.ceiling), self.limit // 2)
            # not again before the last halving is in force
            if cut < self.limit and self.in_flight <= self.limit:
                self.limit, self._changed, self._doubling = cut, now, False
                self.paced = max(self.paced or 0, cut)
        elif lag < self.high / 2 and self.limit < self.ceiling and self._full():
            grown = self.limit * 2 if self._doubling else self.limit + max(1, self.limit // 4)
            self.limit, self._changed = min(self.ceiling, grown), now
            if self.paced is not None:
                self.paced = max(self.paced, self.limit)
            self._wake()

    def _full(self) -> bool:
        """Whether every place is taken (growing a window that is not full says nothing)."""
        return self.in_flight >= self.limit

    async def admit(self) -> None:
        """Wait for a place in flight, and take it."""
        if self.in_flight < self.limit and not self._waiters:
            self.in_flight += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # admitted just as it was cancelled: the place goes back
            else:
                with contextlib.suppress(ValueError):  # (a wake may have dropped it)
                    self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        """Give a place back."""
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)
