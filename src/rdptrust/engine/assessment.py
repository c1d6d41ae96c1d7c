"""Assess one host: probe it, make the client's retrievals, judge it. One place for all.

:func:`assess` never raises for anything the host or the network does: a host that
cannot be reached gives an assessment whose ``probe.error`` says why (verdict
UNKNOWN). A limit of this machine (open files, buffers) raises
:class:`~rdptrust.errors.LocalResourceError` instead: it is no fact about the host. A
pinned-host store that cannot be read is reported in ``store_error`` (verdict UNKNOWN)
rather than raised, so one broken file does not stop a fleet scan or a scrape; a trust
source named in the options that cannot be read raises :class:`~rdptrust.errors.PkiError`
(load it first to handle that once).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from rdptrust.engine.cpu import run_cpu
from rdptrust.engine.options import AssessOptions
from rdptrust.errors import LocalResourceError, PkiError, StoreError
from rdptrust.model.assessment import Assessment
from rdptrust.model.pin import PinCheck, PinStatus
from rdptrust.model.probe import ProbeResult
from rdptrust.model.retrieval import Fetched, FetchOutcome, Omission
from rdptrust.model.target import Target
from rdptrust.net.probe import probe_host
from rdptrust.pki.budget import WorkBudget
from rdptrust.pki.facts import load_certificate
from rdptrust.pki.judge import assessment
from rdptrust.pki.pinning import KnownHosts, check_pin
from rdptrust.pki.trust import ChainPath, TrustAnchors, build_path, load_trust_anchors
from rdptrust.pki.windows import ctl_directory, ctl_syncs

#: A served chain of at most this many certificates, with no client CA store to search,
#: is built and judged on the event loop: its work is bounded (at most 4! candidate
#: paths and 16 signature checks, about a millisecond), less than handing it to a worker
#: thread costs. Anything larger goes to :func:`~rdptrust.engine.cpu.run_cpu`.
LIGHT_CHAIN = 4

#: How a probe is made; the default probes the network (tests and the exporter inject).
Prober = Callable[[Target, AssessOptions], Awaitable[ProbeResult]]


async def default_prober(target: Target, options: AssessOptions) -> ProbeResult:
    """Probe *target* as *options* say."""
    return await probe_host(
        target,
        timeout=options.probe_timeout_s,
        enumerate_protocols=options.enumerate,
        enumerate_tls_versions=options.enumerate,
        standard_security=options.standard_security,
        ntlm=options.ntlm,
    )


def trust_anchors(options: AssessOptions) -> TrustAnchors:
    """The anchors *options* name (loaded unless given); raises PkiError when unreadable."""
    if options.anchors is not None:
        return options.anchors
    return load_trust_anchors(
        system=options.system_trust, ca_files=options.ca_files, ca_dirs=options.ca_dirs
    )


def intermediates(options: AssessOptions) -> tuple[x509.Certificate, ...]:
    """The client's intermediate CA store of *options*, read (an unreadable one: PkiError)."""
    return _read_intermediates(options.intermediates) if options.intermediates else ()


@functools.lru_cache(maxsize=4)
def _read_intermediates(ders: tuple[bytes, ...]) -> tuple[x509.Certificate, ...]:
    # a scan passes the same store for every host: it is read once
    return tuple(load_certificate(der) for der in ders)


def known_hosts(options: AssessOptions) -> KnownHosts:
    """The pinned-host store *options* name; raises StoreError or PkiError when unreadable."""
    if isinstance(options.known_hosts, KnownHosts):
        return options.known_hosts
    path = options.known_hosts if isinstance(options.known_hosts, Path) else None
    return KnownHosts.load(path)


async def assess(
    target: Target,
    options: AssessOptions | None = None,
    *,
    prober: Prober | None = None,
) -> Assessment:
    """Assess *target*; see the module docstring."""
    options = options or AssessOptions()
    start = time.monotonic()
    probe = await (prober or default_prober)(target, options)
    return await assess_probe(target, probe, options, start=start)


def judged_now(probe: ProbeResult, options: AssessOptions) -> bool:
    """Whether :func:`judge_probe` can assess *probe* on this thread: no retrievals to
    make (``options.diagnose`` off) and a chain light enough to judge on the event loop
    (:data:`LIGHT_CHAIN` certificates at most, no client intermediate store)."""
    return not options.diagnose and not options.intermediates and len(probe.chain) <= LIGHT_CHAIN


def judge_probe(
    target: Target,
    probe: ProbeResult,
    options: AssessOptions,
    *,
    start: float | None = None,
) -> Assessment:
    """Assess *target* from a probe already made, on this thread, without retrievals:
    what :func:`assess_probe` gives when :func:`judged_now` says so (for any other probe
    it judges as if ``options.diagnose`` were off, the path built here, however large).
    *start* is when the assessment began (monotonic)."""
    seen = _seen(target, probe, options, time.monotonic() if start is None else start)
    if isinstance(seen, Assessment):
        return seen
    path = build_path(
        seen.served, seen.anchors, intermediates(options), budget=WorkBudget(seen.deadline)
    )
    return seen.judged(served=seen.served, path=path, pin=seen.pin, store_error=seen.store_error)


async def assess_probe(
    target: Target,
    probe: ProbeResult,
    options: AssessOptions,
    *,
    start: float | None = None,
) -> Assessment:
    """Assess *target* from a probe already made (the retrievals still run with
    ``options.diagnose``). *start* is when the assessment began (monotonic)."""
    began = time.monotonic() if start is None else start
    if judged_now(probe, options):
        return judge_probe(target, probe, options, start=began)
    seen = _seen(target, probe, options, began)
    if isinstance(seen, Assessment):
        return seen
    judged, served, anchors = seen.judged, seen.served, seen.anchors
    pin, store_error, deadline = seen.pin, seen.store_error, seen.deadline
    light = len(served) <= LIGHT_CHAIN and not options.intermediates
    if light:
        path = build_path(served, anchors, (), budget=WorkBudget(deadline))
    else:
        path = await run_cpu(
            build_path, served, anchors, intermediates(options), budget=WorkBudget(deadline)
        )
    fetched: tuple[Fetched, ...] | None = None
    omitted: tuple[Omission, ...] = ()
    if options.diagnose:
        # imported here: the HTTP stack costs a scan without retrievals ~0.1 s to load
        from rdptrust.engine.autoproxy import proxy_path
        from rdptrust.engine.ctl import sync_lists
        from rdptrust.engine.retrievals import RetrievalPlan, make_retrievals
        from rdptrust.net.http import USER_AGENT_PREFIX

        pinned = pin is not None and pin.status == PinStatus.MATCH
        lists = ctl_syncs(anchored=path.anchor is not None, pinned=pinned, settings=options.windows)
        directory = ctl_directory(options.root_list_url, options.windows.root_dir_url)
        # WPAD / PAC first: WinHTTP finds the proxy before the first retrieval
        proxied = await proxy_path(options)
        synced, run = await asyncio.gather(
            sync_lists(
                lists,
                directory,
                timeout=options.fetch_timeout_s,
                proxy=options.proxy,
                route=proxied.route,
                user_agent=USER_AGENT_PREFIX + options.windows.client.os_version,
            ),
            make_retrievals(
                served,
                path,
                anchors,
                RetrievalPlan(
                    fetch_timeout_s=options.fetch_timeout_s,
                    now=options.now,
                    proxy=options.proxy,
                    destinations=options.destinations,
                    deadline=deadline,
                    domain=options.windows.domain,
                    dns_server=options.windows.dns_server,
                    route=proxied.route,
                    user_agent=USER_AGENT_PREFIX + options.windows.client.os_version,
                ),
                pinned=pinned,
            ),
        )
        fetched, path = (*proxied.made, *synced, *run.fetched), run.path
        omitted = run.omitted
        local = next((f for f in fetched if f.result.outcome == FetchOutcome.LOCAL_ERROR), None)
        if local is not None:
            # A retrieval this machine could not make says nothing about the host.
            raise LocalResourceError(f"{target}: {local.result.url}: {local.result.error}")
    if light and len(path.certificates) <= LIGHT_CHAIN:
        return judged(
            served=served,
            path=path,
            pin=pin,
            fetched=fetched,
            store_error=store_error,
            omitted=omitted,
        )
    return await run_cpu(
        judged,
        served=served,
        path=path,
        pin=pin,
        fetched=fetched,
        store_error=store_error,
        omitted=omitted,
    )


@dataclass(frozen=True)
class _Judgement:
    """The judgement of *target* with what was seen (its elapsed time counted from *began*)."""

    target: Target
    probe: ProbeResult
    options: AssessOptions
    began: float

    def __call__(
        self,
        *,
        served: list[x509.Certificate] | None = None,
        path: ChainPath | None = None,
        pin: PinCheck | None = None,
        fetched: tuple[Fetched, ...] | None = None,
        store_error: str | None = None,
        unreadable: str | None = None,
        omitted: tuple[Omission, ...] = (),
    ) -> Assessment:
        options = self.options
        return assessment(
            self.target,
            self.probe,
            served=served,
            path=path,
            pin=pin,
            fetched=fetched,
            settings=options.windows,
            fetch_timeout_s=options.fetch_timeout_s,
            now=options.now,
            warn_days=options.warn_days,
            elapsed_ms=round((time.monotonic() - self.began) * 1000.0, 3),
            store_error=store_error,
            unreadable=unreadable,
            disallowed=options.disallowed,
            omitted=omitted,
            direct_path=options.proxy is None and options.pac is None and not options.wpad,
        )


@dataclass(frozen=True)
class _Seen:
    """What every judgement of a served chain starts from."""

    judged: _Judgement
    served: list[x509.Certificate]
    anchors: TrustAnchors
    pin: PinCheck | None
    store_error: str | None
    #: CPU-bound steps stop at the host's deadline (see rdptrust.engine.cpu).
    deadline: float


def _seen(
    target: Target, probe: ProbeResult, options: AssessOptions, began: float
) -> _Seen | Assessment:
    """The served chain read, with the trust anchors and the pin check, or the assessment
    of a probe that leaves no chain to judge."""
    anchors = trust_anchors(options)
    deadline = began + options.deadline_s()
    judged = _Judgement(target, probe, options, began)
    read = _read_served(probe)
    if not isinstance(read, list):
        return _early(judged, read, options)
    pin, store_error = _pin(options, target, read[0])
    return _Seen(judged, read, anchors, pin, store_error, deadline)


#: What reading the served chain gave when there is no chain to judge: the probe failed
#: (None), the leaf cannot be read (why), or no certificate was served (an empty tuple).
_Unjudged = str | tuple[()] | None


def _read_served(probe: ProbeResult) -> list[x509.Certificate] | _Unjudged:
    """The served certificates, read (a later one that cannot be read is left out)."""
    if probe.error is not None:
        return None
    served: list[x509.Certificate] = []
    for index, der in enumerate(probe.chain):
        try:
            served.append(load_certificate(der))
        except PkiError as exc:
            if index == 0:
                return str(exc)
    return served or ()


def _early(judged: _Judgement, read: _Unjudged, options: AssessOptions) -> Assessment:
    """The assessment of a probe with no chain to judge (see :data:`_Unjudged`)."""
    if read is None:
        return judged()
    if isinstance(read, str):
        return judged(unreadable=read)
    return judged(fetched=() if options.diagnose else None)


def _pin(
    options: AssessOptions, target: Target, leaf: x509.Certificate
) -> tuple[PinCheck | None, str | None]:
    """The pin check of *leaf*, or why the pinned-host store could not be read."""
    try:
        return check_pin(known_hosts(options), target, leaf), None
    except (StoreError, PkiError) as exc:
        return None, str(exc)
