"""Assess many hosts at once, with a bound on how many are in flight.

The library's fleet call: results come back as each host finishes, so memory stays
flat and a slow host holds back nothing but its own slot. Fewer than *concurrency* are in
flight while the event loop cannot serve that many before their time-out, as in
``rdptrust scan`` (:mod:`rdptrust.engine.pace`), which adds the inventory (resume,
history) on top of the same assessment.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import replace

from rdptrust.engine.assessment import Prober, assess, known_hosts, trust_anchors
from rdptrust.engine.options import AssessOptions
from rdptrust.engine.pace import LoopLag, Window
from rdptrust.errors import PkiError, StoreError
from rdptrust.model.assessment import Assessment
from rdptrust.model.target import Target


async def assess_many(
    targets: Iterable[Target],
    options: AssessOptions | None = None,
    *,
    concurrency: int = 100,
    prober: Prober | None = None,
) -> AsyncIterator[Assessment]:
    """Assess every target, at most *concurrency* at a time; yields in finishing order.

    Trust anchors and the pinned-host store are read once for all the targets (a trust
    source that cannot be read raises :class:`~rdptrust.errors.PkiError` before any
    host is probed).
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    base = options or AssessOptions()
    shared = replace(base, anchors=trust_anchors(base))
    # an unreadable store is reported on every assessment (store_error), not raised
    with contextlib.suppress(StoreError, PkiError):
        shared = replace(shared, known_hosts=known_hosts(shared))
    pending = iter(targets)
    running: set[asyncio.Task[Assessment]] = set()
    # the window's places are the running tasks: it is told how many there are
    window = Window(concurrency, shared.probe_timeout_s)
    lag = LoopLag(window.observe)

    def start_more() -> None:
        while len(running) < window.limit:
            target = next(pending, None)
            if target is None:
                break
            running.add(asyncio.ensure_future(assess(target, shared, prober=prober)))
        window.in_flight = len(running)

    start_more()
    lag.start()
    try:
        while running:
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                running.discard(task)
            start_more()
            for task in done:
                yield task.result()
    finally:
        lag.stop()
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
