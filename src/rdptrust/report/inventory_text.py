"""The inventory's terminal views: a host's history, and the hosts the sites see differently.

rich tables of the records :mod:`rdptrust.report.inventory` writes as documents.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console
from rich.table import Table
from rich.text import Text

from rdptrust.model.records import HostHistory
from rdptrust.model.target import Target
from rdptrust.report.sites import SiteComparison


def render_site_differences(comparisons: Iterable[SiteComparison], console: Console) -> int:
    """Print each host the sites see differently; returns how many."""
    count = 0
    for comparison in comparisons:
        if not comparison.differs:
            continue
        if count == 0:
            console.print(Text("Seen differently from different sites:", style="bold"))
        count += 1
        console.print(Text(f"  {comparison.target}: {comparison.text()}"))
    return count


def render_history(history: HostHistory, console: Console) -> None:
    """Print a host's certificates over time and its events."""
    console.print(
        Text.assemble(
            ("History of ", "bold"),
            str(Target(history.host, history.port)),
            f" (first seen {history.first_seen:%Y-%m-%d %H:%M} UTC, "
            f"{len(history.observations)} observations)",
        )
    )
    table = Table(title="Certificates", title_justify="left")
    # whole fingerprints (what an admin compares): a narrow terminal folds, never cuts
    table.add_column("SHA-256", overflow="fold")
    for column in ("Subject", "Self-signed", "Expires", "First seen", "Last seen"):
        table.add_column(column)
    for span in history.certificates:
        cert = span.certificate
        table.add_row(
            Text(cert.sha256),
            Text(cert.subject),
            Text("yes" if cert.self_signed else "no"),
            Text(f"{cert.not_after:%Y-%m-%d}" if cert.not_after else "-"),
            Text(f"{span.first_seen:%Y-%m-%d %H:%M}"),
            Text(f"{span.last_seen:%Y-%m-%d %H:%M}"),
        )
    console.print(table)
    events = Table(title="Events", title_justify="left")
    for column in ("When", "Scan", "Site", "Event", "Detail"):
        events.add_column(column)
    for event in history.events:
        kind = event.kind + (f" ({event.change})" if event.change else "")
        events.add_row(
            Text(f"{event.at:%Y-%m-%d %H:%M}"),
            Text(str(event.scan_id)),
            Text(event.site or "-"),
            Text(kind, style="yellow" if event.kind == "certificate-changed" else ""),
            Text(event.detail),
        )
    console.print(events)
