"""The inventory's text views: a host's history, and the hosts the sites see differently.

rich tables of the records :mod:`rdptrust.report.inventory` writes as documents, on a
terminal; plain aligned lines for a pipe or a file.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TextIO

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from rdptrust.model.records import HostHistory
from rdptrust.model.target import Target
from rdptrust.model.text import safe_text
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


def _history_heading(history: HostHistory) -> tuple[str, str]:
    return (
        "History of ",
        f"{safe_text(str(Target(history.host, history.port)))} (first seen "
        f"{history.first_seen:%Y-%m-%d %H:%M} UTC, {len(history.observations)} observations)",
    )


CERTIFICATE_COLUMNS = ("SHA-256", "Subject", "Self-signed", "Expires", "First seen", "Last seen")
EVENT_COLUMNS = ("When", "Scan", "Site", "Event", "Detail")


def _certificate_rows(history: HostHistory) -> list[list[str]]:
    """One row of cells per certificate; every cell escaped (a subject is the host's)."""
    rows = []
    for span in history.certificates:
        cert = span.certificate
        rows.append(
            [
                cert.sha256,
                safe_text(cert.subject),
                "yes" if cert.self_signed else "no",
                f"{cert.not_after:%Y-%m-%d}" if cert.not_after else "-",
                f"{span.first_seen:%Y-%m-%d %H:%M}",
                f"{span.last_seen:%Y-%m-%d %H:%M}",
            ]
        )
    return rows


def _event_rows(history: HostHistory) -> list[tuple[list[str], bool]]:
    """One row of cells per event, and whether it is a certificate change."""
    return [
        (
            [
                f"{event.at:%Y-%m-%d %H:%M}",
                str(event.scan_id),
                safe_text(event.site or "-"),
                event.kind + (f" ({event.change})" if event.change else ""),
                safe_text(event.detail),
            ],
            event.kind == "certificate-changed",
        )
        for event in history.events
    ]


def render_history(history: HostHistory, console: Console) -> None:
    """Print a host's certificates over time and its events, as tables (a terminal)."""
    lead, rest = _history_heading(history)
    console.print(Text.assemble((lead, "bold"), rest))
    table = Table(title="Certificates", title_justify="left")
    for column in CERTIFICATE_COLUMNS:
        # whole fingerprints (what an admin compares): a narrow terminal folds, never cuts
        table.add_column(column, overflow="fold" if column == "SHA-256" else "ellipsis")
    for cells in _certificate_rows(history):
        table.add_row(*(Text(c) for c in cells))
    console.print(table)
    events = Table(title="Events", title_justify="left")
    for column in EVENT_COLUMNS:
        events.add_column(column)
    for cells, changed in _event_rows(history):
        styles = ["", "", "", "yellow" if changed else "", ""]
        events.add_row(*(Text(c, style=st) for c, st in zip(cells, styles, strict=True)))
    console.print(events)


def write_history_text(history: HostHistory, out: TextIO) -> None:
    """Write a host's history as plain text (a pipe or a file): a heading line, then each
    section's title and aligned columns two spaces apart; no colour, no box, nothing
    wrapped or cut, so a fingerprint or a subject can be copied or cut from the output."""
    lead, rest = _history_heading(history)
    out.write(lead + rest + "\n")
    certificates = _certificate_rows(history)
    events = [cells for cells, _ in _event_rows(history)]
    for title, columns, rows in (
        ("Certificates", CERTIFICATE_COLUMNS, certificates),
        ("Events", EVENT_COLUMNS, events),
    ):
        if rows:
            out.write(f"\n{title}\n")
            out.writelines(_aligned(columns, rows))
        else:
            out.write(f"\n{title}: none\n")


def _aligned(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [cell_len(c) for c in header]
    for row in rows:
        widths = [max(w, cell_len(c)) for w, c in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = [c + " " * (w - cell_len(c)) for c, w in zip(cells, widths, strict=True)]
        return "  ".join(padded).rstrip() + "\n"

    return [line(header), *(line(row) for row in rows)]
