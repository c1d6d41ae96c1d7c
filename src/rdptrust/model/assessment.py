"""The one result of judging one host: :class:`Assessment`.

``rdptrust diagnose``, ``check``, ``scan``, the exporter and the demo all get an
assessment from :func:`rdptrust.engine.assessment` and render or store it; nothing else
judges a host.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from dataclasses import dataclass

from rdptrust.model.certificate import CertificateFacts
from rdptrust.model.pin import PinCheck
from rdptrust.model.probe import ProbeResult
from rdptrust.model.problems import Problem, Severity
from rdptrust.model.retrieval import ConnectAttempt, FetchOutcome, Purpose, RevocationStatus
from rdptrust.model.target import Target
from rdptrust.model.windows import NO_PREDICTION, Cause, Prediction, WindowsSettings


class Verdict(enum.StrEnum):
    """The verdict on a host, with the monitoring convention's exit codes."""

    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    UNKNOWN = "unknown"

    @property
    def exit_code(self) -> int:
        """0 ok, 1 warning, 2 critical, 3 unknown."""
        return _EXIT[self]

    @classmethod
    def of(cls, problems: Iterable[Problem]) -> Verdict:
        """The worst severity among *problems*; OK when there are none."""
        worst = Severity.OK
        for problem in problems:
            if problem.severity.rank > worst.rank:
                worst = problem.severity
        return cls(worst.value)


_EXIT = {Verdict.OK: 0, Verdict.WARNING: 1, Verdict.CRITICAL: 2, Verdict.UNKNOWN: 3}


@dataclass(frozen=True)
class Retrieval:
    """One URL the client would fetch, fetched for real.

    ``certificate`` is the subject of the certificate it concerns (for AIA: whose issuer
    is fetched); None for the root list. ``revocation`` is what a CRL or OCSP answer
    said (None otherwise). ``counted`` says whether Windows would make this retrieval
    for this chain; ``wait_s`` is its part of the stall (0 when not counted) and
    ``modelled`` whether that figure is Windows' time-out rather than what was observed.
    ``status`` is None when no HTTP answer came; ``detail`` says in words what went
    wrong or what the answer said (None when nothing needs saying).
    """

    purpose: Purpose
    url: str
    outcome: FetchOutcome
    elapsed_ms: float
    status: int | None
    detail: str | None
    certificate: str | None
    revocation: RevocationStatus | None
    counted: bool
    wait_s: float
    modelled: bool
    connects: tuple[ConnectAttempt, ...] = ()
    """Its TCP connects, address after address (:mod:`rdptrust.net.connector`)."""


@dataclass(frozen=True)
class FixCommand:
    """Where to run it (rdptrust, windows client, windows host, group policy, network)
    and what."""

    where: str
    command: str


@dataclass(frozen=True)
class Fix:
    """One way out: what it removes (problem codes or retrieval purposes) and how."""

    id: str
    title: str
    removes: tuple[str, ...]
    commands: tuple[FixCommand, ...]
    note: str = ""


@dataclass(frozen=True)
class Assessment:
    """Everything rdptrust concluded about one host, at one moment.

    ``chain`` holds the facts of the certificates the host sent (leaf first) and
    ``path`` those of the certification path built from them and the trust sources
    (it may add a local root or an issuer fetched over AIA); both are empty when no
    certificate could be read. ``trusted`` is None when there was no certificate to
    judge; true when the path ends in a trust anchor or the leaf matches its pin.
    ``anchor`` is the subject of the trust anchor (None when not anchored). ``pin`` is
    None when there was no certificate or the pinned-host store could not be read
    (``store_error`` then says why).

    ``problems`` are the chain's problems (and, with a diagnosis, the predicted stall
    and revocation); ``findings`` the host's security findings from the probe. The
    ``verdict`` is the worst of both, UNKNOWN when the host could not be probed or the
    pinned-host store could not be read.

    ``diagnosed`` is true when the retrievals the Windows client would make were made
    (``retrievals``); ``predicted_stall_s`` is then the predicted wait, else None.
    ``settings`` is the Windows client modelled and ``fetch_timeout_s`` how long each
    retrieval was given here (one that did not answer within it counts as Windows'
    full time-out). ``now`` is the moment the certificates were judged against.
    ``prediction`` holds the first and later connections' waits as ranges over the
    revocation regimes, the rules they rest on, the assumptions and what is not
    measured (``NO_PREDICTION`` without a diagnosis); ``predicted_stall_s`` is its
    first connection's high end.
    """

    target: Target
    probe: ProbeResult
    chain: tuple[CertificateFacts, ...]
    path: tuple[CertificateFacts, ...]
    trusted: bool | None
    anchor: str | None
    pin: PinCheck | None
    problems: tuple[Problem, ...]
    findings: tuple[Problem, ...]
    verdict: Verdict
    diagnosed: bool
    retrievals: tuple[Retrieval, ...]
    predicted_stall_s: float | None
    causes: tuple[Cause, ...]
    revocation_capped: bool
    settings: WindowsSettings
    fetch_timeout_s: float
    now: dt.datetime
    elapsed_ms: float
    store_error: str | None = None
    prediction: Prediction = NO_PREDICTION

    @property
    def leaf(self) -> CertificateFacts | None:
        return self.chain[0] if self.chain else None

    @property
    def path_subjects(self) -> tuple[str, ...]:
        """The subjects of the certification path, leaf first."""
        return tuple(c.subject for c in self.path)

    @property
    def reachable(self) -> bool:
        """True when the host answered the negotiation (whatever it answered)."""
        return self.probe.error is None

    @property
    def days_left(self) -> int | None:
        """Whole days until the first certificate of the path ends; None without one."""
        return min((c.days_left for c in self.path or self.chain), default=None)

    @property
    def not_after(self) -> dt.datetime | None:
        """When the first certificate of the path ends; None without one."""
        return min((c.not_after for c in self.path or self.chain), default=None)

    @property
    def revoked(self) -> bool | None:
        """True when a CRL or OCSP answer said revoked, False when one said good and none
        revoked, None when none answered (or no diagnosis ran)."""
        answers = {r.revocation for r in self.retrievals if r.revocation is not None}
        if RevocationStatus.REVOKED in answers:
            return True
        if RevocationStatus.GOOD in answers:
            return False
        return None
