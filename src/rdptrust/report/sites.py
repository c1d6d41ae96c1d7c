"""One host as each site sees it: the stall depends on the network the clients sit on.

A scan records the site it ran from (``scan --site``); the same host scanned from two
sites has two latest observations. :func:`compare_sites` groups them per host, so a
report can say "stalls 15.0 s from branch-2, no stall from hq".
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TextIO

from rdptrust.model.records import HostSummary, ObservationRecord
from rdptrust.model.text import safe_text
from rdptrust.pki.judge import STALL_WARNING_S


def site_view(record: ObservationRecord) -> str:
    """What one observation says of the stall, in a few words: a predicted wait under
    the warning threshold (:data:`~rdptrust.pki.judge.STALL_WARNING_S`) is no stall."""
    if not record.ok:
        return f"not reachable ({record.error_kind or 'error'})"
    if record.predicted_stall_s is None:
        return "not diagnosed" if record.verdict is None else f"{record.verdict}, not diagnosed"
    if record.predicted_stall_s >= STALL_WARNING_S:
        return f"stalls {record.predicted_stall_s:.1f} s"
    return "no stall"


@dataclass(frozen=True)
class SiteComparison:
    """One host's latest observation from each of two or more sites."""

    target: str
    #: (site, view) for each site, in site order; an observation from before sites
    #: existed is shown as site "-"
    views: tuple[tuple[str, str], ...]

    @property
    def differs(self) -> bool:
        """Whether the sites see the host differently (a stall from one, not another)."""
        return len({view for _, view in self.views}) > 1

    def text(self) -> str:
        """``stalls 15.0 s from branch-2, no stall from hq``."""
        return ", ".join(f"{view} from {site}" for site, view in self.views)


def compare_sites(records: Iterable[ObservationRecord]) -> Iterator[SiteComparison]:
    """The hosts of *records* seen from more than one site, in the order given.

    *records* are each host's latest observation per site, ordered by host, port and
    site (as ``observations(latest_per_host=True)`` yields them): a host's are adjacent,
    so this streams.
    """
    current: list[ObservationRecord] = []

    def flush() -> Iterator[SiteComparison]:
        if len({r.site for r in current}) > 1:
            yield SiteComparison(
                str(current[0].target), tuple((r.site or "-", site_view(r)) for r in current)
            )

    for record in records:
        if current and (record.host, record.port) != (current[0].host, current[0].port):
            yield from flush()
            current = []
        current.append(record)
    yield from flush()


#: Hosts the sites see differently kept to print after a table, at most.
MAX_DIFFERENCES = 500


@dataclass
class SiteDifferences:
    """Collects, from hosts as a table streams them, those the sites see differently."""

    found: list[SiteComparison] = field(default_factory=list)
    #: how many differed in all (more than :data:`MAX_DIFFERENCES` are counted, not kept)
    count: int = 0

    def watch(self, hosts: Iterable[HostSummary]) -> Iterator[HostSummary]:
        """*hosts*, unchanged, one at a time; their differences are in :attr:`found`
        once the iteration has ended (hosts ordered by host, port and site)."""
        group: list[HostSummary] = []
        for host in hosts:
            if group and (host.host, host.port) != (group[0].host, group[0].port):
                self._add(group)
                group = []
            group.append(host)
            yield host
        self._add(group)

    def _add(self, group: list[HostSummary]) -> None:
        for comparison in compare_sites(h.latest for h in group):
            if comparison.differs:
                self.count += 1
                if len(self.found) < MAX_DIFFERENCES:
                    self.found.append(comparison)


def write_site_differences(comparisons: Iterable[SiteComparison], out: TextIO) -> int:
    """Write each host the sites see differently as plain lines; returns how many."""
    count = 0
    for comparison in comparisons:
        if not comparison.differs:
            continue
        if count == 0:
            out.write("Seen differently from different sites:\n")
        count += 1
        out.write(safe_text(f"  {comparison.target}: {comparison.text()}") + "\n")
    return count
