"""CPU-bound steps off the event loop: a bounded pool of worker threads.

Path building, signature checks and the parsing of CRL and OCSP answers are run here
(:func:`run_cpu`), so a host that makes them expensive delays only its own assessment:
the event loop goes on serving other hosts, scrapes and ``/-/healthy``. The steps check
a :class:`~rdptrust.pki.budget.WorkBudget` whose deadline is the host's, so a thread
whose awaiting caller has timed out stops soon after, and at most :data:`CPU_WORKERS`
run at once.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

#: Worker threads for CPU-bound steps (one per core, at least 2, at most 8).
CPU_WORKERS = max(2, min(8, os.cpu_count() or 2))

_P = ParamSpec("_P")
_T = TypeVar("_T")
_executor: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(CPU_WORKERS, thread_name_prefix="rdptrust-cpu")
    return _executor


async def run_cpu(fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """Run ``fn(*args, **kwargs)`` in a worker thread and await its result."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool(), functools.partial(fn, *args, **kwargs))
