"""The hosts of the inventory as ``rdptrust hosts`` prints them: plain lines or a table.

Both print each host as it is read, so a fleet of any size takes the memory of one batch:
the column widths are fixed from the first :data:`WIDTH_SAMPLE` hosts (and any widths the
caller knows, such as the inventory's longest names) instead of from the whole fleet. Into
a pipe or a file, :func:`write_hosts_text` writes plain aligned lines, no colour, nothing
wrapped; on a terminal, :func:`render_hosts` draws what a rich ``Table`` of the same
columns would, row by row. The JSON form is :func:`rdptrust.report.inventory.write_hosts_json`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import TextIO

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.segment import Segment, Segments
from rich.style import Style
from rich.text import Text

from rdptrust.model.records import HostSummary, ObservationRecord
from rdptrust.model.target import Target
from rdptrust.model.text import has_unsafe, safe_text

#: The columns of the hosts table, in order.
HOST_COLUMNS = (
    "Host",
    "Site",
    "State",
    "Name (CN)",
    "Self-signed",
    "Expires",
    "Verdict",
    "Last seen (UTC)",
)
#: Hosts read before the table's column widths are fixed: the widths are theirs (and the
#: headers'), and the hosts after them are printed as they are read.
WIDTH_SAMPLE = 256
_STATE_COLUMN = 2
#: Columns are narrowed to this many cells before the host's is (rich's no_wrap).
_NARROWEST = 10
#: What ``hosts`` prints for an inventory with no host (``empty``: another line).
NO_HOSTS = "The inventory holds no hosts yet; run 'rdptrust scan' first."


def _state(record: ObservationRecord) -> tuple[str, str]:
    if not record.ok:
        return f"{record.error_kind}", "red"
    if record.certificate is None:
        return "no TLS", "yellow"
    return "ok", "green"


def host_cells(host: HostSummary) -> tuple[list[str], str]:
    """The cells of one host's row (:data:`HOST_COLUMNS`) and the style of its state.

    Each cell is one line with every control and bidi character visibly escaped
    (:func:`~rdptrust.model.text.safe_text`): a certificate's subject is the host's to
    choose.
    """
    latest = host.latest
    cert = latest.certificate
    state, style = _state(latest)
    cells = [
        str(Target(host.host, host.port)),
        latest.site or "-",
        state,
        (cert.common_name or cert.subject) if cert else "-",
        "-" if cert is None else "yes" if cert.self_signed else "no",
        f"{cert.not_after:%Y-%m-%d}" if cert and cert.not_after else "-",
        latest.verdict or "-",
        f"{latest.observed_at:%Y-%m-%d %H:%M}",
    ]
    return [safe_text(c) if has_unsafe(c) else c for c in cells], style


def _sample(
    hosts: Iterable[HostSummary],
) -> tuple[list[tuple[list[str], str]], Iterator[HostSummary]]:
    rest = iter(hosts)
    return [host_cells(h) for h in itertools.islice(rest, WIDTH_SAMPLE)], rest


def _cell_width(text: str) -> int:
    # a cell is escaped already (host_cells): ASCII text is one column a character
    return len(text) if text.isascii() else cell_len(text)


def _widths(rows: Iterable[tuple[list[str], str]], at_least: Sequence[int]) -> list[int]:
    widths = [max([_cell_width(c), *at_least[n : n + 1]]) for n, c in enumerate(HOST_COLUMNS)]
    for cells, _ in rows:
        widths = [max(w, _cell_width(c)) for w, c in zip(widths, cells, strict=True)]
    return widths


def write_hosts_text(
    hosts: Iterable[HostSummary],
    out: TextIO,
    *,
    at_least: Sequence[int] = (),
    empty: str = NO_HOSTS,
) -> int:
    """Write *hosts* as plain text, one line per host after a header line; returns how many.

    Columns are two spaces apart, as wide as the headers, the first :data:`WIDTH_SAMPLE`
    hosts and *at_least* (a width per column) need; a longer value later is written whole
    (its line's later columns shift right), so every value can be copied or cut from the
    output. No colour, no box, nothing wrapped.
    """
    sample, rest = _sample(hosts)
    if not sample:
        out.write(empty + "\n")
        return 0
    widths = _widths(sample, at_least)

    def line(cells: Sequence[str]) -> str:
        padded = [c + " " * (w - _cell_width(c)) for c, w in zip(cells, widths, strict=True)]
        return "  ".join(padded).rstrip() + "\n"

    out.write(line(HOST_COLUMNS))
    out.writelines(line(cells) for cells, _ in sample)
    count = len(sample)
    batch: list[str] = []
    for host in rest:
        batch.append(line(host_cells(host)[0]))
        if len(batch) >= WIDTH_SAMPLE:
            out.writelines(batch)
            count += len(batch)
            batch.clear()
    out.writelines(batch)
    return count + len(batch)


def _fit(widths: list[int], room: int) -> list[int]:
    """*widths* narrowed until a boxed table of them fits *room* columns: the widest
    column other than the host's first, down to :data:`_NARROWEST`, then any column."""
    fitted = list(widths)
    excess = sum(fitted) + 3 * len(fitted) + 1 - room
    while excess > 0:
        others = [n for n in range(1, len(fitted)) if fitted[n] > _NARROWEST]
        narrowed = max(others or range(len(fitted)), key=fitted.__getitem__)
        if fitted[narrowed] <= 4:
            break
        fitted[narrowed] -= 1
        excess -= 1
    return fitted


class _BoxedRows:
    """Rows of the hosts table as rich segments, in rich's ``HEAVY_HEAD`` box."""

    def __init__(self, widths: list[int], console: Console) -> None:
        self.widths = widths
        self.console = console
        self.box = box.HEAVY_HEAD
        padded = [w + 2 for w in widths]
        self.top = self.box.get_top(padded)
        self.head_rule = self.box.get_row(padded, "head")
        self.bottom = self.box.get_bottom(padded)
        self._styles = {"": None, "header": console.get_style("table.header")}

    def _style(self, name: str) -> Style | None:
        style = self._styles.get(name)
        if style is None and name:
            style = self._styles[name] = self.console.get_style(name)
        return style

    def _lines(self, cell: str, width: int) -> list[str]:
        if _cell_width(cell) <= width:
            return [cell + " " * (width - _cell_width(cell))]
        folded = Text(cell).wrap(self.console, width, overflow="fold")
        return [line.plain + " " * (width - line.cell_len) for line in folded]

    def row(
        self, cells: Sequence[str], styles: Sequence[str], edges: tuple[str, str, str]
    ) -> Iterator[Segment]:
        """The segments of one row (several lines when a cell is longer than its column)."""
        left, vertical, right = edges
        columns = [self._lines(c, w) for c, w in zip(cells, self.widths, strict=True)]
        height = max(len(c) for c in columns)
        for i in range(height):
            text = left + " "
            for n, (lines, width) in enumerate(zip(columns, self.widths, strict=True)):
                blank = i >= len(lines)
                part = " " * width if blank else lines[i]
                style = None if blank else self._style(styles[n])
                if style is None:
                    text += part
                else:
                    yield Segment(text)
                    yield Segment(part, style)
                    text = ""
                text += " " + (vertical if n < len(columns) - 1 else right)
                if n < len(columns) - 1:
                    text += " "
            yield Segment(text + "\n")


def render_hosts(
    hosts: Iterable[HostSummary],
    console: Console,
    *,
    at_least: Sequence[int] = (),
    empty: str = NO_HOSTS,
) -> int:
    """Print a table of hosts on a terminal, each host as it is read; returns how many.

    The table looks like a rich :class:`~rich.table.Table` of the same columns, but is
    never held whole: its column widths are those the first :data:`WIDTH_SAMPLE` hosts
    and *at_least* (a width per column) need, narrowed to the terminal's width, and a
    longer cell later folds onto more lines. Certificate text stays literal (escaped,
    :func:`host_cells`).
    """
    sample, rest = _sample(hosts)
    if not sample:
        console.print(Text(empty))
        return 0
    boxed = _BoxedRows(_fit(_widths(sample, at_least), console.width), console)
    console.print(Text("Hosts in the inventory", style="table.title"), crop=False)
    b = boxed.box
    head: list[Segment] = [Segment(boxed.top + "\n")]
    head += boxed.row(
        HOST_COLUMNS, ["header"] * len(HOST_COLUMNS), (b.head_left, b.head_vertical, b.head_right)
    )
    head += [Segment(boxed.head_rule + "\n")]
    body = (b.mid_left, b.mid_vertical, b.mid_right)
    plain = [""] * len(HOST_COLUMNS)

    def segments(cells: list[str], state_style: str) -> Iterator[Segment]:
        styles = list(plain)
        styles[_STATE_COLUMN] = state_style
        return boxed.row(cells, styles, body)

    batch = head
    count = 0
    for cells, state_style in itertools.chain(sample, (host_cells(h) for h in rest)):
        batch.extend(segments(cells, state_style))
        count += 1
        if count % WIDTH_SAMPLE == 0:
            console.print(Segments(batch), crop=False, end="")
            batch = []
    batch += [Segment(boxed.bottom + "\n")]
    console.print(Segments(batch), crop=False, end="")
    return count
