"""How each purpose of the lab's PKI responder answers: ``ok``, ``delay:S``, ``blackhole``,
``refuse``, ``404``, ``garbage``, ``gzip-bomb``, ``get-only``, ``post-only``, ``huge`` or
``delta`` (the table is in :mod:`rdptrust.lab.pki`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from rdptrust.errors import UsageError

#: Longest ``delay:S`` accepted, in seconds.
MAX_DELAY_S = 3600.0

Purpose = Literal["root_list", "aia", "crl", "ocsp"]
PURPOSES: tuple[Purpose, ...] = ("root_list", "aia", "crl", "ocsp")
ModeKind = Literal[
    "ok",
    "delay",
    "blackhole",
    "refuse",
    "404",
    "garbage",
    "gzip-bomb",
    "get-only",
    "post-only",
    "huge",
    "delta",
]
_MODE_KINDS: tuple[str, ...] = (
    "ok",
    "delay",
    "blackhole",
    "refuse",
    "404",
    "garbage",
    "gzip-bomb",
    "get-only",
    "post-only",
    "huge",
    "delta",
)
_MODE_HELP = (
    "use ok, delay:S, blackhole, refuse, 404, garbage, gzip-bomb, get-only, post-only, "
    "huge or delta"
)


@dataclass(frozen=True)
class ResponderMode:
    """How one purpose answers; ``delay_s`` counts only for ``delay``."""

    kind: str = "ok"
    delay_s: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in _MODE_KINDS:
            raise UsageError(f"unknown responder mode {self.kind!r}; {_MODE_HELP}")
        if not (math.isfinite(self.delay_s) and 0 <= self.delay_s <= MAX_DELAY_S):
            raise UsageError(f"delay must be 0 to {MAX_DELAY_S:g} seconds, not {self.delay_s}")

    @classmethod
    def parse(cls, text: str) -> ResponderMode:
        """Parse a mode: ``delay:S`` or one of the other names."""
        value = text.strip().lower()
        if value.startswith("delay:"):
            try:
                seconds = float(value.partition(":")[2])
            except ValueError:
                raise UsageError(f"bad delay in {text!r}: give seconds, e.g. delay:2.5") from None
            return cls("delay", seconds)
        if value == "delay":
            raise UsageError("delay needs seconds, e.g. delay:2.5")
        if value not in _MODE_KINDS:
            raise UsageError(f"unknown responder mode {text!r}; {_MODE_HELP}")
        return cls(value)

    def __str__(self) -> str:
        return f"delay:{self.delay_s:g}" if self.kind == "delay" else self.kind


OK = ResponderMode("ok")


@dataclass(frozen=True)
class PkiModes:
    """The mode of each responder purpose."""

    root_list: ResponderMode = OK
    aia: ResponderMode = OK
    crl: ResponderMode = OK
    ocsp: ResponderMode = OK

    def for_purpose(self, purpose: Purpose) -> ResponderMode:
        mode: ResponderMode = getattr(self, purpose)
        return mode


#: Every purpose answering ``ok``.
ALL_OK = PkiModes()
