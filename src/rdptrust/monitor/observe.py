"""One observation of one target: the probe, the chain's judgement and, optionally, the diagnosis.

:func:`observe` never raises for anything the host or the network does: a host that
cannot be reached gives an observation whose ``probe.error`` says why. An unreadable
pinned-host store or trust source is reported in ``store_error`` or
``diagnose_error`` rather than raised, so that one broken file does not stop a scrape.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from cryptography import x509

from rdptrust.errors import PkiError, StoreError
from rdptrust.model.certificate import CertificateFacts
from rdptrust.model.pin import PinCheck, PinStatus
from rdptrust.model.probe import ProbeResult
from rdptrust.model.problems import Problem, Severity, verdict
from rdptrust.model.retrieval import RevocationStatus
from rdptrust.model.target import Target
from rdptrust.net.probe import probe_host
from rdptrust.pki.diagnose import DiagnoseOptions, Diagnosis, diagnose
from rdptrust.pki.facts import certificate_facts, load_certificate
from rdptrust.pki.pinning import KnownHosts, check_pin
from rdptrust.pki.problems import judge_chain
from rdptrust.pki.trust import TrustAnchors, build_path
from rdptrust.pki.windows import DEFAULT_ROOT_LIST_URL, WindowsSettings


@dataclass(frozen=True)
class ObserveOptions:
    """How to observe a target.

    ``timeout_s`` is the budget of each connection of the probe. ``anchors`` are the
    trusted certificates (an empty set when None). ``known_hosts`` is rdptrust's
    pinned-host store to compare with; None reads the default store
    (:func:`rdptrust.pki.pinning.default_path`).

    The rest matters only with ``diagnose``: ``system_trust`` and ``ca_files`` are the
    trust sources the diagnosis reads (it loads them itself); ``url_timeout_s``,
    ``revocation_timeout_s`` and ``root_update`` are the Windows settings modelled;
    ``fetch_timeout_s`` is how long each URL fetch may take here (None: the Windows
    per-URL time-out); a fetch that gets no answer within it counts as a full Windows
    time-out. ``root_list_url`` None keeps the Windows Update URL.
    """

    timeout_s: float = 10.0
    enumerate: bool = True
    anchors: TrustAnchors | None = None
    known_hosts: Path | None = None
    warn_days: int = 30
    diagnose: bool = False
    system_trust: bool = True
    ca_files: tuple[Path, ...] = ()
    url_timeout_s: float = 15.0
    fetch_timeout_s: float | None = None
    revocation_timeout_s: float = 20.0
    root_update: bool = True
    root_list_url: str | None = None


@dataclass(frozen=True)
class Retrieval:
    """One URL the Windows client would fetch, as the diagnosis fetched it.

    ``elapsed_s`` is None when the diagnosis did not time it.
    """

    purpose: str
    url: str
    outcome: str
    elapsed_s: float | None


@dataclass(frozen=True)
class Observation:
    """What one observation of one target found.

    ``chain`` holds the facts of the certification path (leaf first; with a diagnosis,
    of the chain as served); it is empty when the host sent no certificate.
    ``chain_trusted`` is None when there was no certificate to judge; True when the
    path ends in a trust anchor or the leaf matches its pin. ``pin`` is None when there
    was no certificate or the pinned-host store could not be read (``store_error``
    then says why). ``predicted_stall_s``, ``revoked`` and ``retrievals`` come from the
    diagnosis: None (or empty) when it did not run or failed (``diagnose_error`` then
    says why); ``revoked`` is also None when no CRL or OCSP answer said good or revoked.
    """

    target: Target
    probe: ProbeResult
    chain: tuple[CertificateFacts, ...]
    chain_trusted: bool | None
    pin: PinCheck | None
    problems: tuple[Problem, ...]
    verdict: Severity
    duration_s: float
    diagnosed: bool = False
    predicted_stall_s: float | None = None
    revoked: bool | None = None
    retrievals: tuple[Retrieval, ...] = field(default=())
    diagnose_error: str | None = None
    store_error: str | None = None

    @property
    def leaf(self) -> CertificateFacts | None:
        return self.chain[0] if self.chain else None

    @property
    def reachable(self) -> bool:
        """True when the host answered the negotiation (whatever it answered)."""
        return self.probe.error is None

    @property
    def days_left(self) -> int | None:
        """Whole days until the first certificate of the path ends; None without one."""
        return min((c.days_left for c in self.chain), default=None)

    @property
    def not_after(self) -> float | None:
        """When the first certificate of the path ends, as a Unix time; None without one."""
        return min((c.not_after.timestamp() for c in self.chain), default=None)


_NO_STORE = PinCheck(PinStatus.NOT_PINNED, None, False, "the pinned-host store is unreadable")


async def observe(target: Target, options: ObserveOptions) -> Observation:
    """Probe *target* (and diagnose it with ``options.diagnose``) and judge its chain."""
    start = time.monotonic()
    if options.diagnose:
        return await _diagnosed(target, options, start)
    probe = await _probe(target, options)
    return judge(target, probe, options, start=start)


async def _probe(target: Target, options: ObserveOptions) -> ProbeResult:
    return await probe_host(
        target,
        timeout=options.timeout_s,
        enumerate_protocols=options.enumerate,
        enumerate_tls_versions=options.enumerate,
        standard_security=False,
        ntlm=False,
    )


async def _diagnosed(target: Target, options: ObserveOptions, start: float) -> Observation:
    settings = WindowsSettings(
        url_timeout_s=options.url_timeout_s,
        revocation_timeout_s=options.revocation_timeout_s,
        root_update=options.root_update,
    )
    diagnose_options = DiagnoseOptions(
        probe_timeout=options.timeout_s,
        url_timeout=options.fetch_timeout_s or options.url_timeout_s,
        windows=settings,
        root_list_url=options.root_list_url or DEFAULT_ROOT_LIST_URL,
        system_trust=options.system_trust,
        ca_files=options.ca_files,
        known_hosts=options.known_hosts,
        warn_days=options.warn_days,
    )
    probes: list[ProbeResult] = []

    async def prober(t: Target) -> ProbeResult:
        probes.append(await _probe(t, options))
        return probes[-1]

    try:
        diagnosis = await diagnose(target, diagnose_options, prober=prober)
    except (StoreError, PkiError) as exc:
        # A trust source or the pinned-host store is unusable: say so, keep the probe.
        probe = probes[-1] if probes else await _probe(target, options)
        judged = judge(target, probe, options, start=start)
        return replace(judged, diagnosed=False, diagnose_error=str(exc))
    return from_diagnosis(diagnosis, time.monotonic() - start)


def from_diagnosis(diagnosis: Diagnosis, duration_s: float) -> Observation:
    """The observation a diagnosis makes (its facts, problems, stall and retrievals)."""
    probe = diagnosis.probe
    answers = [r.revocation for r in diagnosis.retrievals if r.revocation is not None]
    revoked: bool | None = None
    if RevocationStatus.REVOKED in answers:
        revoked = True
    elif RevocationStatus.GOOD in answers:
        revoked = False
    return Observation(
        target=diagnosis.target,
        probe=probe,
        chain=diagnosis.facts,
        chain_trusted=diagnosis.trusted if diagnosis.facts else None,
        pin=diagnosis.pin,
        problems=diagnosis.problems,
        verdict=verdict(diagnosis.problems),
        duration_s=duration_s,
        diagnosed=True,
        predicted_stall_s=diagnosis.predicted_stall_s if probe.ok else None,
        revoked=revoked,
        retrievals=tuple(
            Retrieval(
                purpose=str(r.purpose),
                url=r.url,
                outcome=str(r.outcome),
                elapsed_s=r.elapsed_ms / 1000.0,
            )
            for r in diagnosis.retrievals
        ),
    )


def judge(
    target: Target, probe: ProbeResult, options: ObserveOptions, *, start: float | None = None
) -> Observation:
    """Judge the chain *probe* saw; *start* is when the observation began (monotonic)."""
    began = start if start is not None else time.monotonic()
    store_error: str | None = None
    served: list[x509.Certificate] = []
    unreadable: Problem | None = None
    for index, der in enumerate(probe.chain):
        try:
            served.append(load_certificate(der))
        except PkiError as exc:
            if index == 0:
                unreadable = Problem(
                    "malformed-certificate",
                    Severity.CRITICAL,
                    f"the certificate {target} sent cannot be read ({exc})",
                )
                break
    if unreadable is not None or not probe.ok:
        problems: tuple[Problem, ...] = (unreadable,) if unreadable is not None else ()
        return Observation(
            target=target,
            probe=probe,
            chain=(),
            chain_trusted=False if unreadable is not None else None,
            pin=None,
            problems=problems,
            verdict=verdict(problems),
            duration_s=time.monotonic() - began,
        )
    anchors = options.anchors if options.anchors is not None else TrustAnchors((), ())
    path = build_path(served, anchors)
    pin: PinCheck | None = None
    if served:
        try:
            pin = check_pin(KnownHosts.load(options.known_hosts), target, served[0])
        except (StoreError, PkiError) as exc:
            store_error = str(exc)
    try:
        problems = judge_chain(
            target,
            served,
            path,
            pin if pin is not None else _NO_STORE,
            warn_days=options.warn_days,
        )
        chain = tuple(certificate_facts(cert) for cert in (path.certificates or served[:1]))
    except PkiError as exc:
        problems = (
            Problem(
                "malformed-certificate",
                Severity.CRITICAL,
                f"the certificate chain {target} sent cannot be read ({exc})",
            ),
        )
        return Observation(
            target=target,
            probe=probe,
            chain=(),
            chain_trusted=False,
            pin=pin,
            problems=problems,
            verdict=verdict(problems),
            duration_s=time.monotonic() - began,
            store_error=store_error,
        )
    trusted: bool | None = None
    if served:
        trusted = path.trusted or (pin is not None and pin.status is PinStatus.MATCH)
    return Observation(
        target=target,
        probe=probe,
        chain=chain,
        chain_trusted=trusted,
        pin=pin,
        problems=problems,
        verdict=verdict(problems),
        duration_s=time.monotonic() - began,
        store_error=store_error,
    )
