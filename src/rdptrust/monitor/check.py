"""The monitoring-plugin verdict (Nagios, Icinga, Naemon, Sensu) on one observation.

Rules, worst state wins (CRITICAL > UNKNOWN > WARNING > OK):

- the host cannot be probed (refused, time-out, not RDP): UNKNOWN;
- expired or not yet valid, revoked, the pinned certificate changed, no certificate,
  and every other problem the chain judgement calls critical (EKU unsuitable for RDP,
  a CA-issued certificate for another name, MD5, a key under 1024 bits): CRITICAL;
- a certificate of the path ends within ``crit_days``: CRITICAL; within ``warn_days``:
  WARNING;
- self-signed and not pinned or trusted, an untrusted root, an incomplete chain, and
  the other problems judged a warning (SHA-1, a key under 2048 bits, a self-signed
  certificate for another name): WARNING;
- the predicted stall (diagnosis only) above ``max_stall_s``: WARNING; above twice
  that: CRITICAL (the diagnosis' own stall thresholds are replaced by these); no CRL or
  OCSP answer for a trusted chain: WARNING;
- every security finding of the probe counts as well, at its severity (Standard RDP
  Security allowed, 40/56-bit RC4: CRITICAL; NLA not required, FIPS offered but not
  required, TLS 1.0/1.1: WARNING), as it does toward ``diagnose``'s verdict; what the
  probe looked for decides which can be found (``rdptrust check`` makes one connection
  and enumerates no protocols, TLS versions or encryption methods, so it finds those
  that connection shows: a host that sends no negotiation data allows Standard RDP
  Security and does not require NLA);
- the pinned-host store cannot be read, or the diagnosis failed: UNKNOWN.

Each problem and finding is named in the summary by its label in the problem catalog
(:mod:`rdptrust.model.catalog`).

Performance data follows the plugin guidelines (``'label'=value[UOM];warn;crit;min;max``):
``days_left`` (days, ``d``) with the ranges ``WARN:`` and ``CRIT:`` (alert below),
``stall`` (seconds, diagnosis only), ``tls_handshake`` and ``time`` (seconds).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from rdptrust.model import catalog
from rdptrust.model.assessment import Assessment
from rdptrust.model.pin import PinStatus
from rdptrust.model.problems import Problem, Severity
from rdptrust.model.text import redact_credentials, safe_text


class PluginState(enum.IntEnum):
    """The plugin states and their exit codes."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {
    PluginState.OK: 0,
    PluginState.WARNING: 1,
    PluginState.UNKNOWN: 2,
    PluginState.CRITICAL: 3,
}


@dataclass(frozen=True)
class Thresholds:
    """Plugin thresholds; ``max_stall_s`` None does not judge the predicted stall."""

    warn_days: int = 30
    crit_days: int = 7
    max_stall_s: float | None = 5.0


@dataclass(frozen=True)
class PerfDatum:
    """One performance value; None fields are left empty."""

    label: str
    value: float
    uom: str = ""
    warn: str = ""
    crit: str = ""
    minimum: float | None = None
    maximum: float | None = None

    def __str__(self) -> str:
        label = self.label if self.label.isidentifier() else "'" + self.label + "'"
        fields = [
            f"{label}={_number(self.value)}{self.uom}",
            self.warn,
            self.crit,
            "" if self.minimum is None else _number(self.minimum),
            "" if self.maximum is None else _number(self.maximum),
        ]
        while fields and not fields[-1]:
            fields.pop()
        return ";".join(fields)


@dataclass(frozen=True)
class CheckResult:
    """The plugin's state, its one-line summary, the reasons behind it and perfdata."""

    state: PluginState
    summary: str
    reasons: tuple[tuple[PluginState, str], ...]
    perfdata: tuple[PerfDatum, ...]

    @property
    def exit_code(self) -> int:
        return int(self.state)

    def line(self) -> str:
        """``RDPTRUST STATE - summary | perfdata``."""
        text = f"RDPTRUST {self.state.name} - {_clean(self.summary)}"
        if self.perfdata:
            text += " | " + " ".join(str(d) for d in self.perfdata)
        return text


def evaluate(observation: Assessment, thresholds: Thresholds) -> CheckResult:
    """Apply the plugin rules (module docstring) to *observation*."""
    target = observation.target
    perfdata: list[PerfDatum] = []
    reasons: list[tuple[PluginState, str]] = []
    probe = observation.probe
    if not observation.reachable:
        message = probe.error.message if probe.error is not None else "no answer"
        message = message.removeprefix(f"{target}: ")
        reasons.append((PluginState.UNKNOWN, f"cannot probe: {message}"))
    for problem in (*observation.problems, *observation.findings):
        if problem.code in (catalog.EXPIRING_SOON.code, catalog.PREDICTED_STALL.code):
            continue  # judged below against this check's thresholds
        reasons.append((_state(problem), _short(problem)))
    days_left = observation.days_left
    if days_left is not None and days_left >= 0:
        certificates = observation.path or observation.chain
        end = min(certificates, key=lambda c: c.not_after)
        which = "certificate" if end is certificates[0] else f"issuer {end.subject}"
        when = f"{which} expires {end.not_after:%Y-%m-%d} (in {days_left} days)"
        if days_left < thresholds.crit_days:
            reasons.append((PluginState.CRITICAL, when))
        elif days_left < thresholds.warn_days:
            reasons.append((PluginState.WARNING, when))
    if observation.revoked:
        reasons.append((PluginState.CRITICAL, catalog.REVOKED.label))
    stall = observation.predicted_stall_s
    if stall is not None and thresholds.max_stall_s is not None:
        said = f"predicted stall {stall:.1f} s"
        if stall > 2 * thresholds.max_stall_s:
            reasons.append((PluginState.CRITICAL, said))
        elif stall > thresholds.max_stall_s:
            reasons.append((PluginState.WARNING, said))
    if observation.store_error is not None:
        reasons.append((PluginState.UNKNOWN, observation.store_error))

    if days_left is not None:
        perfdata.append(
            PerfDatum(
                "days_left",
                days_left,
                "d",
                f"{thresholds.warn_days}:",
                f"{thresholds.crit_days}:",
            )
        )
    if stall is not None:
        limit = thresholds.max_stall_s
        perfdata.append(
            PerfDatum(
                "stall",
                round(stall, 3),
                "s",
                "" if limit is None else _number(limit),
                "" if limit is None else _number(2 * limit),
                0,
            )
        )
    if probe.timings.tls_ms is not None:
        perfdata.append(
            PerfDatum("tls_handshake", round(probe.timings.tls_ms / 1000.0, 6), "s", minimum=0)
        )
    perfdata.append(PerfDatum("time", round(observation.elapsed_ms / 1000.0, 6), "s", minimum=0))

    state = max((s for s, _ in reasons), key=lambda s: s.rank, default=PluginState.OK)
    ordered = sorted(reasons, key=lambda r: -r[0].rank)
    if ordered:
        summary = f"{target}: " + "; ".join(_dedupe(text for _, text in ordered))
    else:
        summary = f"{target}: " + _healthy(observation)
    return CheckResult(state, summary, tuple(ordered), tuple(perfdata))


def _healthy(observation: Assessment) -> str:
    leaf = observation.leaf
    if leaf is None:
        return "answered"
    pinned = observation.pin is not None and observation.pin.status is PinStatus.MATCH
    trust = "pinned" if pinned else "trusted"
    text = (
        f"{leaf.subject} from {leaf.issuer}, {trust}, valid until {leaf.not_after:%Y-%m-%d}"
        f" ({observation.days_left} days)"
    )
    if observation.predicted_stall_s is not None:
        text += f", predicted stall {observation.predicted_stall_s:.1f} s"
    return text


def _state(problem: Problem) -> PluginState:
    if problem.severity is Severity.CRITICAL:
        return PluginState.CRITICAL
    if problem.severity is Severity.WARNING:
        return PluginState.WARNING
    return PluginState.OK


def _short(problem: Problem) -> str:
    return catalog.label(problem.code)


def _dedupe(items: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def _number(value: float) -> str:
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.6g}"


def _clean(text: str) -> str:
    """Keep the summary on one line, out of the perfdata part, and free of controls."""
    return safe_text(redact_credentials(" ".join(text.replace("|", "/").split())))
