"""Problems and findings: a stable code, a severity and what to do; the verdict over them."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


class Severity(enum.StrEnum):
    """How bad a problem is; compares in the order ok < warning < critical."""

    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def exit_code(self) -> int:
        """The monitoring convention: 0 ok, 1 warning, 2 critical."""
        return _RANK[self]

    def __lt__(self, other: str) -> bool:
        return _RANK[self] < _RANK[Severity(other)]

    def __le__(self, other: str) -> bool:
        return _RANK[self] <= _RANK[Severity(other)]

    def __gt__(self, other: str) -> bool:
        return _RANK[self] > _RANK[Severity(other)]

    def __ge__(self, other: str) -> bool:
        return _RANK[self] >= _RANK[Severity(other)]


_RANK = {Severity.OK: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the chain: a stable code, how bad, and what to do."""

    code: str
    severity: Severity
    message: str


def verdict(problems: Iterable[Problem]) -> Severity:
    """The worst severity among *problems*; OK when there are none."""
    return max((p.severity for p in problems), key=lambda s: s.rank, default=Severity.OK)
