"""The HTML inventory report: one self-contained file, safe to open whatever hosts sent.

The page holds everything inline (CSS, a small script for sorting and filtering the host
table, charts as SVG drawn here), loads nothing and works offline. Every value is
escaped by Jinja2's autoescaping, chart labels included, and a Content-Security-Policy
allows only the page's own style and script (by a per-report nonce), so a certificate
subject such as ``<script>…</script>`` shows as text and could not run even if it slipped
through.

Host data is read from the inventory twice (once for the summary and charts, once for
the table), row by row, and the page is written as it is rendered: memory does not grow
with the number of hosts beyond the output itself.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from rdptrust import __version__
from rdptrust.files import write_atomic_lines
from rdptrust.model.probe import ENUMERATION_REQUESTS
from rdptrust.model.records import EventRecord, ObservationRecord, ScanInfo
from rdptrust.report.sites import SiteComparison, compare_sites

#: Newest events shown in the changes section.
MAX_EVENTS = 500
#: Hosts seen from several sites listed in the report's comparison of sites, at most.
MAX_COMPARISONS = 500

_EXPIRY_MONTHS = 12
_STALL_BUCKETS: tuple[tuple[str, float], ...] = (
    ("0 s", 0.0),
    ("under 1 s", 1.0),
    ("1-5 s", 5.0),
    ("5-15 s", 15.0),
    ("15-20 s", 20.0),
)
_LATENCY_BUCKETS: tuple[tuple[str, float], ...] = (
    ("< 10 ms", 10.0),
    ("10-50 ms", 50.0),
    ("50-100 ms", 100.0),
    ("100-250 ms", 250.0),
    ("250-500 ms", 500.0),
    ("0.5-1 s", 1000.0),
)


@dataclass
class _Summary:
    now: dt.datetime
    hosts: int = 0
    reachable: int = 0
    unreachable: int = 0
    with_certificate: int = 0
    self_signed: int = 0
    ca_issued: int = 0
    no_tls: int = 0
    expired: int = 0
    expiring_30: int = 0
    diagnosed: int = 0
    enumerated: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    expiry: Counter[str] = field(default_factory=Counter)
    protocols: Counter[str] = field(default_factory=Counter)
    selected: Counter[str] = field(default_factory=Counter)
    stall: Counter[str] = field(default_factory=Counter)
    latency: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    def add(self, r: ObservationRecord) -> None:
        self.hosts += 1
        if not r.ok:
            self.unreachable += 1
            self.errors[r.error_kind or "error"] += 1
            return
        self.reachable += 1
        self.selected[r.selected_protocol or r.negotiation_failure or "none"] += 1
        if r.protocols:
            self.enumerated += 1
            for name, accepted in r.protocols.items():
                if accepted:
                    self.protocols[name] += 1
        if r.total_ms is not None:
            self.latency[_bucket(r.total_ms, _LATENCY_BUCKETS, "≥ 1 s")] += 1
        if r.verdict is not None:
            self.verdicts[r.verdict] += 1
        if r.retrievals is not None:
            self.diagnosed += 1
            if r.predicted_stall_s is not None:
                self.stall[_bucket(r.predicted_stall_s, _STALL_BUCKETS, "≥ 20 s", zero=True)] += 1
        cert = r.certificate
        if cert is None:
            self.no_tls += 1
            return
        self.with_certificate += 1
        if cert.self_signed:
            self.self_signed += 1
        else:
            self.ca_issued += 1
        if cert.not_after is not None:
            self.expiry[_expiry_label(cert.not_after, self.now)] += 1
            days = (cert.not_after - self.now).total_seconds() / 86400
            if days < 0:
                self.expired += 1
            elif days <= 30:
                self.expiring_30 += 1


def _bucket(
    value: float, buckets: Sequence[tuple[str, float]], last: str, *, zero: bool = False
) -> str:
    if zero and value <= 0:
        return buckets[0][0]
    for label, bound in buckets[1:] if zero else buckets:
        if value < bound:
            return label
    return last


def _month_labels(now: dt.datetime) -> list[str]:
    labels = ["expired"]
    year, month = now.year, now.month
    for _ in range(_EXPIRY_MONTHS):
        labels.append(f"{year:04d}-{month:02d}")
        month += 1
        if month > 12:
            year, month = year + 1, 1
    labels.append("later")
    return labels


def _expiry_label(not_after: dt.datetime, now: dt.datetime) -> str:
    if not_after < now:
        return "expired"
    label = f"{not_after.year:04d}-{not_after.month:02d}"
    months = (not_after.year - now.year) * 12 + not_after.month - now.month
    return label if months < _EXPIRY_MONTHS else "later"


# --- SVG charts ---------------------------------------------------------------------


def bar_chart(title: str, items: Sequence[tuple[str, int]], *, vertical: bool = False) -> Markup:
    """An SVG bar chart; labels and title are escaped. Empty charts say so."""
    if not items or not any(count for _, count in items):
        return Markup('<p class="empty">{}</p>').format(f"{title}: no data")
    peak = max(count for _, count in items) or 1
    parts: list[str] = []
    if vertical:
        bar_w, gap, height, base = 34, 8, 150, 170
        width = len(items) * (bar_w + gap) + 50
        parts.append(
            f'<svg class="chart" role="img" viewBox="0 0 {width} 215" width="{width}" '
            f'height="215" xmlns="http://www.w3.org/2000/svg">'
        )
        parts.append(str(Markup("<title>{}</title>").format(title)))
        for index, (label, count) in enumerate(items):
            h = round(height * count / peak)
            x = 40 + index * (bar_w + gap)
            parts.append(
                f'<rect class="bar" x="{x}" y="{base - h}" width="{bar_w}" height="{h}">'
                + str(Markup("<title>{}: {}</title>").format(label, count))
                + "</rect>"
            )
            parts.append(
                str(
                    Markup(
                        '<text class="count" x="{}" y="{}" text-anchor="middle">{}</text>'
                    ).format(x + bar_w // 2, base - h - 4, count)
                )
            )
            parts.append(
                str(
                    Markup(
                        '<text class="label" x="{}" y="{}" text-anchor="end" '
                        'transform="rotate(-45 {} {})">{}</text>'
                    ).format(x + bar_w // 2, base + 14, x + bar_w // 2, base + 14, label)
                )
            )
    else:
        row_h, label_w, bar_max = 24, 150, 320
        height = len(items) * row_h + 10
        width = label_w + bar_max + 60
        parts.append(
            f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" xmlns="http://www.w3.org/2000/svg">'
        )
        parts.append(str(Markup("<title>{}</title>").format(title)))
        for index, (label, count) in enumerate(items):
            y = 5 + index * row_h
            w = round(bar_max * count / peak)
            parts.append(
                str(
                    Markup('<text class="label" x="{}" y="{}" text-anchor="end">{}</text>').format(
                        label_w - 8, y + 16, label
                    )
                )
            )
            parts.append(
                f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{w}" height="{row_h - 6}">'
                + str(Markup("<title>{}: {}</title>").format(label, count))
                + "</rect>"
            )
            parts.append(
                f'<text class="count" x="{label_w + w + 6}" y="{y + 16}">{int(count)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def _charts(summary: _Summary) -> list[tuple[str, Markup, str]]:
    months = _month_labels(summary.now)
    if summary.enumerated:
        protocol_items = [(n, summary.protocols.get(n, 0)) for n in ENUMERATION_REQUESTS]
        protocol_note = f"hosts accepting each protocol ({summary.enumerated} enumerated)"
    else:
        protocol_items = sorted(summary.selected.items(), key=lambda kv: -kv[1])
        protocol_note = "protocol chosen for the main connection (scan with --enumerate for all)"
    stall_labels = [label for label, _ in _STALL_BUCKETS] + ["≥ 20 s"]
    stall_note = (
        f"{summary.diagnosed} hosts diagnosed"
        if summary.diagnosed
        else "no host was diagnosed: scan with --diagnose"
    )
    latency_labels = [label for label, _ in _LATENCY_BUCKETS] + ["≥ 1 s"]
    return [
        (
            "Certificate expiry",
            bar_chart(
                "Certificates by month of expiry",
                [(m, summary.expiry.get(m, 0)) for m in months],
                vertical=True,
            ),
            f"{summary.expired} expired, {summary.expiring_30} within 30 days",
        ),
        (
            "Self-signed vs CA-issued",
            bar_chart(
                "Certificate kinds",
                [
                    ("self-signed", summary.self_signed),
                    ("CA-issued", summary.ca_issued),
                    ("no TLS", summary.no_tls),
                    ("unreachable", summary.unreachable),
                ],
            ),
            "self-signed hosts make every client prompt and, with root update on, wait",
        ),
        ("Protocols accepted", bar_chart("Protocols", protocol_items), protocol_note),
        (
            "Predicted stall",
            bar_chart(
                "Predicted stall on Securing remote connection",
                [(label, summary.stall.get(label, 0)) for label in stall_labels],
            ),
            stall_note,
        ),
        (
            "Handshake latency",
            bar_chart(
                "Main connection time",
                [(label, summary.latency.get(label, 0)) for label in latency_labels],
            ),
            "connect, X.224 negotiation and TLS together",
        ),
    ]


# --- rows ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    target: str
    state: str
    state_class: str
    common_name: str
    subject: str
    issuer: str
    kind: str
    not_after: str
    days_left: int | None
    tls: str
    protocol: str
    verdict: str
    problems: str
    stall: float | None
    latency: float | None
    sha1: str
    sha256: str
    error: str
    site: str


def _row(r: ObservationRecord, now: dt.datetime) -> _Row:
    cert = r.certificate
    if not r.ok:
        state, state_class = (r.error_kind or "error"), "bad"
    elif cert is None:
        state, state_class = "no TLS", "warn"
    else:
        state, state_class = "ok", "good"
    days = (
        int((cert.not_after - now).total_seconds() // 86400)
        if cert is not None and cert.not_after is not None
        else None
    )
    return _Row(
        target=str(r.target),
        state=state,
        state_class=state_class,
        common_name=(cert.common_name or "") if cert else "",
        subject=cert.subject if cert else "",
        issuer=cert.issuer if cert else "",
        kind="" if cert is None else "self-signed" if cert.self_signed else "CA-issued",
        not_after=f"{cert.not_after:%Y-%m-%d}" if cert and cert.not_after else "",
        days_left=days,
        tls=r.tls_version or "",
        protocol=r.selected_protocol or r.negotiation_failure or "",
        verdict=r.verdict or "",
        problems=", ".join(p.code for p in r.problems),
        stall=r.predicted_stall_s,
        latency=round(r.total_ms, 1) if r.total_ms is not None and r.ok else None,
        sha1=(cert.sha1 or "") if cert else "",
        sha256=cert.sha256 if cert else "",
        error=r.error_message or "",
        site=r.site or "",
    )


def _rows(records: Iterable[ObservationRecord], now: dt.datetime) -> Iterator[_Row]:
    for record in records:
        yield _row(record, now)


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("rdptrust.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html_report(
    observations: Callable[[], Iterable[ObservationRecord]],
    events: Sequence[EventRecord],
    *,
    scan: ScanInfo | None,
    scan_id: int | None = None,
    now: dt.datetime | None = None,
) -> Iterator[str]:
    """Yield the report's HTML a piece at a time.

    *observations* gives the records to report each time it is called: it is called
    twice (once for the summary and charts, once for the table), so that they can be
    streamed rather than held. *events* are the newest first (at most
    :data:`MAX_EVENTS` are shown), *scan* is the scan named in the header. With
    *scan_id* the records are that scan's; without, each host's latest observation.
    """
    moment = now or dt.datetime.now(dt.UTC)
    summary = _Summary(moment)
    comparisons: list[SiteComparison] = []

    def summed() -> Iterator[ObservationRecord]:
        for record in observations():
            summary.add(record)
            yield record

    for comparison in compare_sites(summed()):
        if len(comparisons) < MAX_COMPARISONS:
            comparisons.append(comparison)
    nonce = secrets.token_urlsafe(18)
    template = _environment().get_template("report.html.j2")
    context: dict[str, Any] = {
        "nonce": nonce,
        "version": __version__,
        "generated": f"{moment:%Y-%m-%d %H:%M} UTC",
        "scope": f"scan {scan_id}" if scan_id is not None else "latest observation of each host",
        "scan": scan,
        "summary": summary,
        "charts": _charts(summary),
        "rows": _rows(observations(), moment),
        "events": list(events[:MAX_EVENTS]),
        "comparisons": comparisons,
        "max_comparisons": MAX_COMPARISONS,
        "max_events": MAX_EVENTS,
    }
    yield from template.generate(**context)


def write_html_report(
    path: Path,
    observations: Callable[[], Iterable[ObservationRecord]],
    events: Sequence[EventRecord],
    *,
    scan: ScanInfo | None,
    scan_id: int | None = None,
    now: dt.datetime | None = None,
) -> Path:
    """Write the report (:func:`render_html_report`) to *path* atomically; return the path."""
    return write_atomic_lines(
        path, render_html_report(observations, events, scan=scan, scan_id=scan_id, now=now)
    )
