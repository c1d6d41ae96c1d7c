"""CAPI2 events into chain builds, and the waits that made a stall (pure).

Events are grouped by ``CorrelationAuxInfo TaskId`` and ordered by ``SeqNumber``
(WINDOWS.md §8). A task holds one chain build or several one after another (a
WinVerifyTrust task, events 80/81, builds the signer's chain and the time stamper's):
each 10 ... 11 span is one :class:`ChainBuild`, and the retrievals (52/53 network,
50/51 cache) inside the span are its own. Elapsed times are stop minus start
``TimeCreated``.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from rdptrust.model.capi2 import (
    ACCUMULATIVE_FLAG,
    Capi2Event,
    Capi2Log,
    ChainBuild,
    EventId,
    RecordedRetrieval,
    RetrievalSource,
    result_name,
)
from rdptrust.model.retrieval import Purpose
from rdptrust.model.windows import RevocationRegime

#: A retrieval that took at least this long (or failed) is a wait of the stall.
NOTABLE_WAIT_MS = 500.0
_STARTS = {
    EventId.NETWORK_START: RetrievalSource.NETWORK,
    EventId.CACHE_START: RetrievalSource.CACHE,
}
_STOPS = {EventId.NETWORK: RetrievalSource.NETWORK, EventId.CACHE: RetrievalSource.CACHE}


def _ms(start: dt.datetime, stop: dt.datetime) -> float:
    return round((stop - start).total_seconds() * 1000.0, 3)


def regime_of(flags: Iterable[str]) -> RevocationRegime:
    """Accumulative when the chain flags name CERT_CHAIN_REVOCATION_ACCUMULATIVE_TIMEOUT,
    else per URL (CertGetCertificateChain; WINDOWS.md §3)."""
    return RevocationRegime.ACCUMULATIVE if ACCUMULATIVE_FLAG in flags else RevocationRegime.PER_URL


def _proxy_action(actions: Sequence[str]) -> str | None:
    return ", ".join(dict.fromkeys(actions)) or None


class _Open:
    """A chain build being read."""

    def __init__(self, start: Capi2Event) -> None:
        self.start = start
        self.retrievals: list[RecordedRetrieval] = []
        self.pending: dict[RetrievalSource, Capi2Event] = {}

    def retrieval(self, event: Capi2Event, source: RetrievalSource) -> None:
        begun = self.pending.pop(source, None)
        result = event.result or "0x00000000"
        self.retrievals.append(
            RecordedRetrieval(
                source=source,
                url=event.url or "",
                object=event.object_type,
                timeout_s=event.timeout_s,
                elapsed_ms=None if begun is None else _ms(begun.time, event.time),
                proxy_action=_proxy_action(event.actions),
                result=result,
                result_name=result_name(result),
                started=event.time if begun is None else begun.time,
            )
        )

    def close(self, task_id: str, stop: Capi2Event | None) -> ChainBuild:
        flags = stop.flags if stop is not None else ()
        return ChainBuild(
            task_id=task_id,
            process=(stop.process if stop else None) or self.start.process or "",
            subject=stop.subject if stop else None,
            sha1=stop.sha1 if stop else None,
            flags=flags,
            revocation_timeouts=regime_of(flags),
            started=self.start.time,
            elapsed_ms=None
            if stop is None or stop is self.start
            else _ms(self.start.time, stop.time),
            trust_errors=stop.trust_errors if stop else (),
            retrievals=tuple(self.retrievals),
        )


def chain_builds(events: Iterable[Capi2Event]) -> Capi2Log:
    """The chain builds in *events*: RDP (mstsc) ones first, then by start time."""
    tasks: dict[str, list[Capi2Event]] = defaultdict(list)
    count = 0
    for event in events:
        count += 1
        if event.task_id is not None:
            tasks[event.task_id].append(event)
    builds: list[ChainBuild] = []
    for task_id, mine in tasks.items():
        mine.sort(key=lambda e: (e.seq if e.seq is not None else -1, e.time))
        current: _Open | None = None
        for event in mine:
            if event.event_id == EventId.BUILD_CHAIN_START:
                if current is not None:
                    builds.append(current.close(task_id, None))
                current = _Open(event)
            elif event.event_id == EventId.BUILD_CHAIN and current is None:
                builds.append(_Open(event).close(task_id, event))  # its start not exported
            elif current is None:
                continue  # outside any chain build (policy checks, trust verification)
            elif event.event_id == EventId.BUILD_CHAIN:
                builds.append(current.close(task_id, event))
                current = None
            elif event.event_id in _STARTS:
                current.pending[_STARTS[EventId(event.event_id)]] = event
            elif event.event_id in _STOPS:
                current.retrieval(event, _STOPS[EventId(event.event_id)])
        if current is not None:
            builds.append(current.close(task_id, None))
    builds.sort(key=lambda b: (not b.rdp, b.started, b.task_id))
    processes = Counter(b.process for b in builds)
    return Capi2Log(tuple(builds), count, dict(sorted(processes.items())))


def select(
    log: Capi2Log, *, process: str | None = None, sha1: str | None = None
) -> tuple[ChainBuild, ...]:
    """The chain builds of *process* (case-insensitive) for the certificate *sha1*."""
    wanted = sha1.lower().replace(":", "").replace(" ", "") if sha1 else None
    return tuple(
        b
        for b in log.chain_builds
        if (process is None or b.process.lower() == process.lower())
        and (wanted is None or b.sha1 == wanted)
    )


def purpose_of(retrieval: RecordedRetrieval) -> Purpose | None:
    """What a recorded retrieval was for, from its object type and URL (None: unknown)."""
    parts = urlsplit(retrieval.url)
    path = parts.path.lower()
    kind = (retrieval.object or "").upper()
    if "CTL" in kind or path.endswith(("stl.cab", "seq.txt")) or "ctldl." in parts.netloc:
        # which list, from its file name (WINDOWS.md §2)
        name = path.rsplit("/", 1)[-1]
        if name.startswith("disallowedcert"):
            return Purpose.DISALLOWED_LIST
        if name.startswith("pinrules"):
            return Purpose.PIN_RULES
        return Purpose.ROOT_LIST
    if "OCSP" in kind or "ocsp" in parts.netloc.lower():
        return Purpose.OCSP
    if "CRL" in kind or path.endswith(".crl"):
        return Purpose.CRL
    if "CERT" in kind or "PKCS7" in kind or path.endswith((".crt", ".cer", ".p7c")):
        return Purpose.AIA
    return None


@dataclass(frozen=True)
class RecordedWait:
    """One wait of a recorded stall: the retrieval, its chain build and its purpose."""

    build: ChainBuild
    retrieval: RecordedRetrieval
    purpose: Purpose | None

    @property
    def seconds(self) -> float:
        return (self.retrieval.elapsed_ms or 0.0) / 1000.0


def stall_waits(builds: Iterable[ChainBuild]) -> tuple[RecordedWait, ...]:
    """The retrievals that failed or took at least :data:`NOTABLE_WAIT_MS`, largest first."""
    waits = [
        RecordedWait(build, r, purpose_of(r))
        for build in builds
        for r in build.retrievals
        if r.failed or (r.elapsed_ms or 0.0) >= NOTABLE_WAIT_MS
    ]
    waits.sort(key=lambda w: (-(w.retrieval.elapsed_ms or 0.0), w.retrieval.started))
    return tuple(waits)
