"""The failure half of every network step's typed outcome."""

from __future__ import annotations

from dataclasses import dataclass

from rdptrust.errors import RdptrustError


@dataclass(frozen=True)
class ProbeFailure:
    """Why a step failed: ``kind`` is the error's stable name (connect, timeout, tls, …)."""

    kind: str
    message: str

    @classmethod
    def from_exception(cls, exc: RdptrustError) -> ProbeFailure:
        return cls(exc.kind, str(exc))
