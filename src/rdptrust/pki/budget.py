"""How much CPU-bound work one host may still cost: a deadline and counted steps.

Path building, signature checks and the parsing of CRL and OCSP answers are driven by
what a host serves, so a hostile host decides how much work they are. Each such step
is given a :class:`WorkBudget`, checks it between bounded pieces of work (cooperative
checkpoints) and stops, with what it has so far, once the deadline has passed or a
count is spent; :attr:`WorkBudget.stopped` then says why. The engine runs these steps
in a worker thread, so the event loop (and the exporter's health endpoint) stays free
while they run, and a time-out stops them rather than waiting for them.

The counts are rdptrust's, not Windows': CryptoAPI documents no limit on signature
checks or candidate paths (``WINDOWS.md`` section 3 lists its byte and AIA URL limits),
so each limit here is an assumption, set far above what a real chain needs (2 to 4
certificates, one candidate issuer each).
"""

from __future__ import annotations

import math
import threading
import time

#: Signature verifications one path build may make (a real chain needs fewer than 10).
MAX_SIGNATURE_CHECKS = 256
#: Partial paths one path build may explore.
MAX_EXPLORED_PATHS = 2000


class WorkBudget:
    """A deadline on ``time.monotonic()`` (None: none) and the signature checks left.

    Safe to share between threads: the counts are updated under a lock.
    """

    def __init__(
        self,
        deadline: float | None = None,
        *,
        signatures: int = MAX_SIGNATURE_CHECKS,
    ) -> None:
        self.deadline = deadline
        self._signatures = signatures
        self._lock = threading.Lock()
        self.stopped: str | None = None
        """Why the work stopped early; None while it may go on."""

    @classmethod
    def within(cls, seconds: float, *, signatures: int = MAX_SIGNATURE_CHECKS) -> WorkBudget:
        """A budget ending *seconds* from now."""
        return cls(
            time.monotonic() + seconds if math.isfinite(seconds) else None, signatures=signatures
        )

    def left_s(self) -> float:
        """Seconds left before the deadline (infinite without one, 0 once passed)."""
        if self.deadline is None:
            return math.inf
        return max(0.0, self.deadline - time.monotonic())

    def ok(self) -> bool:
        """A checkpoint: True while work may go on; records why once it may not."""
        if self.stopped is not None:
            return False
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.stop("the host's time budget ran out")
        return self.stopped is None

    def signature(self) -> bool:
        """Take one signature check; False (and stopped) when none is left."""
        if not self.ok():
            return False
        with self._lock:
            spent = self._signatures <= 0
            if not spent:
                self._signatures -= 1
        if spent:
            self.stop("the signature checks allowed for one host were spent")
            return False
        return True

    def stop(self, reason: str) -> None:
        """Stop the work for *reason* (the first reason is kept)."""
        with self._lock:
            if self.stopped is None:
                self.stopped = reason
