"""How a scan reads the leaf certificates it meets: each once, from the inventory when it
holds them, and what the findings need of them.

A scan meets the same certificate on many hosts (a fleet's CA-issued wildcard, a lab) and
the same fleet again on each run. :class:`LeafReader` parses a leaf only when neither it
nor the inventory has met it, and :meth:`LeafReader.prefetch` asks the inventory about a
whole batch of leaves in one query (on PostgreSQL a query is a round trip), so the scan
loop reads a batch's leaves right before it stores them, not one host at a time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Protocol

from rdptrust.errors import PkiError
from rdptrust.model.certificate import CertificateFacts
from rdptrust.model.records import CertificateEntry, CertificateRecord, HostResult, ProblemRecord
from rdptrust.pki.facts import certificate_facts, load_certificate
from rdptrust.pki.findings import LeafSummary, probe_findings

#: Certificates a :class:`LeafReader` remembers (a fleet of any size keeps memory flat).
LEAF_CACHE_SIZE = 4096


class CertificateLookup(Protocol):
    """Where a scan finds the leaf certificates it has already recorded."""

    def certificate(self, sha256: str) -> CertificateRecord | None: ...

    def certificates(self, sha256s: Collection[str]) -> dict[str, CertificateRecord]: ...


def sha256_hex(der: bytes) -> str:
    """How the inventory names a certificate: the SHA-256 of its DER, lowercase hex."""
    return hashlib.sha256(der).hexdigest()


@dataclass(frozen=True)
class _StoredLeaf:
    """What the findings need of a leaf read back from its entry."""

    subject: str
    self_signed: bool
    not_after: dt.datetime


_ENTRY_FIELDS = tuple(f.name for f in dataclasses.fields(CertificateEntry))


def _entry(source: CertificateFacts | CertificateRecord) -> CertificateEntry:
    """The inventory entry of a leaf, from its facts or from what the inventory holds."""
    entry = CertificateEntry(**{name: getattr(source, name) for name in _ENTRY_FIELDS})
    if not entry.public_key_sha256:  # facts say "" for a key that could not be read
        entry = dataclasses.replace(entry, public_key_sha256=None)
    return entry


def read_leaf(der: bytes) -> tuple[CertificateEntry, LeafSummary | None]:
    """A leaf's inventory entry and what its findings need, parsed from *der*.

    The summary is None when the certificate could not be decoded (no certificate
    finding then).
    """
    try:
        facts = certificate_facts(load_certificate(der))
    except PkiError as exc:
        return CertificateEntry.undecodable(str(exc)), None
    # the three fields the findings read, not the whole facts (kept per leaf)
    return _entry(facts), _StoredLeaf(facts.subject, facts.self_signed, facts.not_after)


#: Where a scan may find a leaf another process has read already (by SHA-256).
LeafSource = Callable[[str], "tuple[CertificateEntry, LeafSummary | None] | None"]


class LeafReader:
    """Reads each leaf certificate of a scan once: its entry, and what its findings need.

    A certificate met before by this reader is neither looked up nor parsed again; one
    the inventory holds from an earlier scan is taken from there, not parsed; one that
    *source* has read (a scan worker process, :mod:`rdptrust.engine.workers`) is taken
    from there. At most :data:`LEAF_CACHE_SIZE` certificates are remembered, oldest
    dropped first. :meth:`prefetch` looks up many leaves at once, so that reading each
    of them then asks the inventory nothing.
    """

    def __init__(
        self,
        inventory: CertificateLookup,
        size: int = LEAF_CACHE_SIZE,
        *,
        source: LeafSource | None = None,
    ) -> None:
        self._inventory = inventory
        self._size = size
        self._source = source
        self._known: dict[str, tuple[CertificateEntry, LeafSummary | None]] = {}
        # looked up by prefetch and not in the inventory: read without asking again
        self._absent: set[str] = set()
        # the last prefetch's leaves and their SHA-256, so that reading them hashes none again
        self._names: dict[bytes, str] = {}

    def prefetch(self, ders: Iterable[bytes]) -> None:
        """Look up, in one query, those of *ders* this reader has not met: the ones the
        inventory holds are remembered from there, the others are then parsed by
        :meth:`read` without another lookup (until the next prefetch)."""
        self._names = {der: sha256_hex(der) for der in ders}
        wanted = set(self._names.values()) - self._known.keys()
        self._absent.clear()
        if not wanted:
            return
        stored = self._inventory.certificates(wanted)
        for sha256, record in stored.items():
            self._remember(sha256, _stored(record))
        self._absent = wanted - stored.keys()

    def read(self, der: bytes) -> tuple[CertificateEntry, LeafSummary | None]:
        sha256 = self._names.get(der) or sha256_hex(der)
        found = self._known.get(sha256)
        if found is not None:
            return found
        stored = None if sha256 in self._absent else self._inventory.certificate(sha256)
        if stored is not None:
            found = _stored(stored)
        else:
            found = (self._source(sha256) if self._source is not None else None) or read_leaf(der)
        self._remember(sha256, found)
        return found

    def _remember(self, sha256: str, found: tuple[CertificateEntry, LeafSummary | None]) -> None:
        if len(self._known) >= self._size:
            del self._known[next(iter(self._known))]
        self._known[sha256] = found
        self._absent.discard(sha256)


def _stored(record: CertificateRecord) -> tuple[CertificateEntry, LeafSummary | None]:
    entry = _entry(record)
    summary = (
        _StoredLeaf(entry.subject, entry.self_signed, entry.not_after)
        if entry.not_after is not None
        else None
    )
    return entry, summary


def judge_host(
    leaves: LeafReader, result: HostResult
) -> tuple[CertificateEntry | None, tuple[ProblemRecord, ...]]:
    """What recording *result* needs computed: the leaf's entry and the probe's findings.

    The entry is None when there is no leaf. The findings are empty for a diagnosed
    host, whose diagnosis already holds them.
    """
    probe = result.probe
    if probe is None:
        return None, ()
    entry: CertificateEntry | None = None
    summary: LeafSummary | None = None
    if probe.leaf:
        entry, summary = leaves.read(probe.leaf)
    if result.diagnosis is not None:
        return entry, ()
    # without a diagnosis, the security findings the probe allows
    findings = probe_findings(probe, leaf=summary)
    return entry, tuple(ProblemRecord(f.code, f.severity.value, f.message) for f in findings)
