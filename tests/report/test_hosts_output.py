"""``rdptrust hosts`` output: plain lines into a pipe, a streamed table on a terminal, JSON.

Every test reads the hosts as the command does (:meth:`InventoryReader.host_batches`) and
checks what is shown against what the record API returned when the hosts were recorded.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.cells import cell_len

from fixtures.documents import assert_valid
from fixtures.inventory import small_fleet
from rdptrust.cli.common import safe_console
from rdptrust.model.records import HostSummary, ObservationRecord
from rdptrust.model.target import Target
from rdptrust.report.hosts import HOST_COLUMNS, WIDTH_SAMPLE, render_hosts, write_hosts_text
from rdptrust.report.inventory import write_hosts_json
from rdptrust.report.inventory_text import write_history_text
from rdptrust.store.inventory import Inventory

#: An ANSI escape sequence (CSI or OSC) as a terminal reads it.
ANSI = re.compile(r"\x1b[\[\]]")
#: C0 controls but newline, DEL, C1 and bidi controls: none may come from a certificate.
UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
HOSTILE_NAME = "WIN-\x1b]0;pwned\x07\x1b[31mRED\rX\nY\u202eZ"


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[tuple[Inventory, dict[Target, ObservationRecord]]]:
    with Inventory.open(tmp_path / "inv.sqlite3") as inventory:
        latest = small_fleet(inventory)
        yield inventory, latest


def _hosts(inventory: Inventory) -> list[HostSummary]:
    return list(itertools.chain.from_iterable(inventory.host_batches(2)))


def expected_row(record: ObservationRecord) -> list[str]:
    """The cells of a host's row, from the record the record API returned."""
    cert = record.certificate
    state = record.error_kind if not record.ok else "ok" if cert else "no TLS"
    return [
        str(record.target),
        record.site or "-",
        str(state),
        (cert.common_name or cert.subject) if cert else "-",
        "-" if cert is None else "yes" if cert.self_signed else "no",
        cert.not_after.strftime("%Y-%m-%d") if cert and cert.not_after else "-",
        record.verdict or "-",
        record.observed_at.strftime("%Y-%m-%d %H:%M"),
    ]


def _sorted(latest: dict[Target, ObservationRecord]) -> list[ObservationRecord]:
    return [latest[t] for t in sorted(latest, key=lambda t: (t.host, t.port))]


def test_plain_text_is_a_header_and_one_line_per_host(
    fleet: tuple[Inventory, dict[Target, ObservationRecord]],
) -> None:
    inventory, latest = fleet
    # When the hosts are written as plain text
    out = io.StringIO()
    count = write_hosts_text(_hosts(inventory), out)
    text = out.getvalue()
    # Then there is no colour or box, a header line and one line per host
    assert not ANSI.search(text)
    assert not set(text) & set("┏┃│└━─")
    lines = text.splitlines()
    assert count == len(latest) == len(lines) - 1
    assert re.split(r"\s{2,}", lines[0]) == list(HOST_COLUMNS)
    # with the values the record API returned, in columns that line up
    rows = [re.split(r"\s{2,}", line) for line in lines[1:]]
    assert rows == [expected_row(r) for r in _sorted(latest)]
    starts = {
        line.index(r[3], line.index(r[2], len(r[0])) + len(r[2]))
        for line, r in zip(lines[1:], rows, strict=True)
    }
    assert len(starts) == 1
    assert all(line == line.rstrip() for line in lines)


def test_plain_text_keeps_a_long_value_after_the_sample_whole_on_its_line(
    fleet: tuple[Inventory, dict[Target, ObservationRecord]],
) -> None:
    # Given more hosts than the width sample, the last one with a far longer name
    inventory, _ = fleet
    first = _hosts(inventory)[0]
    many = [dataclasses.replace(first, host=f"10.1.{i // 250}.{i % 250}") for i in range(300)]
    long_name = "x" * 80 + ".example.com"
    many.append(dataclasses.replace(first, host=long_name))
    assert len(many) > WIDTH_SAMPLE
    # When they are written as plain text
    out = io.StringIO()
    assert write_hosts_text(many, out) == len(many)
    lines = out.getvalue().splitlines()
    # Then the long value is whole, on one line with the rest of its row
    assert len(lines) == len(many) + 1
    assert re.match(re.escape(long_name) + r":3389  -\s+ok  ", lines[-1])
    assert lines[-1].endswith(lines[1][-16:])


def test_an_empty_inventory_says_so(tmp_path: Path) -> None:
    with Inventory.open(tmp_path / "inv.sqlite3") as inventory:
        out = io.StringIO()
        assert write_hosts_text(_hosts(inventory), out) == 0
        console = safe_console(file=io.StringIO(), force_terminal=True, width=80)
        assert render_hosts(_hosts(inventory), console) == 0
    assert out.getvalue() == "The inventory holds no hosts yet; run 'rdptrust scan' first.\n"
    assert "holds no hosts yet" in console.file.getvalue()  # type: ignore[attr-defined]


def _terminal_table(hosts: list[HostSummary], width: int) -> list[str]:
    file = io.StringIO()
    console = safe_console(
        file=file, force_terminal=True, width=width, color_system="standard", highlight=False
    )
    assert render_hosts(hosts, console) == len(hosts)
    return file.getvalue().splitlines()


def _plain(line: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", line)


@pytest.mark.parametrize("width", [200, 100, 60])
def test_terminal_table_is_a_box_of_the_hosts_within_the_width(
    fleet: tuple[Inventory, dict[Target, ObservationRecord]], width: int
) -> None:
    inventory, latest = fleet
    # When the hosts are shown on a terminal *width* columns wide
    lines = _terminal_table(_hosts(inventory), width)
    plain = [_plain(line) for line in lines]
    # Then it is rich's boxed table: title, heavy head, a row per host, bottom edge
    assert plain[0] == "Hosts in the inventory"
    assert (plain[1][0], plain[1][-1], plain[-1][0], plain[-1][-1]) == ("┏", "┓", "└", "┘")
    assert all(cell_len(line) == cell_len(plain[1]) <= width for line in plain[1:])
    # each state in its colour
    assert any("\x1b[32mok" in line for line in lines)
    assert any("\x1b[31mconn" in line for line in lines)
    body = plain[plain.index(next(p for p in plain if p.startswith("┡"))) + 1 : -1]
    if width == 200:
        # nothing folds: one line per host, the record API's values in its cells
        rows = [[c.strip() for c in line.strip("│").split("│")] for line in body]
        assert rows == [expected_row(r) for r in _sorted(latest)]
    else:
        # a cell that does not fit folds onto more lines, never cut
        joined = "".join(line.split("│")[1].strip() for line in body)
        assert joined == "".join(str(r.target) for r in _sorted(latest))


def test_terminal_table_folds_a_longer_cell_after_the_sample(
    fleet: tuple[Inventory, dict[Target, ObservationRecord]],
) -> None:
    inventory, _ = fleet
    first = _hosts(inventory)[0]
    assert first.latest.certificate is not None
    many = [dataclasses.replace(first, host=f"10.1.{i // 250}.{i % 250}") for i in range(300)]
    cert = dataclasses.replace(first.latest.certificate, common_name="N" * 70)
    many.append(
        dataclasses.replace(first, latest=dataclasses.replace(first.latest, certificate=cert))
    )
    lines = [_plain(line) for line in _terminal_table(many, 120)]
    assert all(cell_len(line) == cell_len(lines[1]) for line in lines[1:])
    name_cells = [line.split("│")[4].strip() for line in lines if line.startswith("│")]
    assert "".join(c for c in name_cells if set(c) == {"N"}) == "N" * 70


def test_a_hostile_name_is_escaped_on_one_line_in_every_form(
    fleet: tuple[Inventory, dict[Target, ObservationRecord]],
) -> None:
    # Given a host whose certificate names itself with terminal controls and a newline
    inventory, _ = fleet
    hosts = _hosts(inventory)
    first = hosts[0]
    assert first.latest.certificate is not None
    cert = dataclasses.replace(first.latest.certificate, common_name=HOSTILE_NAME)
    hosts[0] = dataclasses.replace(
        first, latest=dataclasses.replace(first.latest, certificate=cert)
    )
    # When it is written as plain text, as a terminal table and as JSON
    plain = io.StringIO()
    write_hosts_text(hosts, plain)
    table = "\n".join(_terminal_table(hosts, 200))
    document = io.StringIO()
    write_hosts_json(hosts, document)
    # Then no control from the name reaches the output; each still shows it, escaped
    for text in (plain.getvalue(), _plain(table), document.getvalue()):
        assert not UNSAFE.search(text)
    assert not re.search(r"\x1b(?!\[[0-9;]*m)", table)
    escaped = "WIN-\\x1b]0;pwned\\x07\\x1b[31mRED\\x0dX\\x0aY\\u202eZ"
    assert escaped in plain.getvalue()
    assert escaped in _plain(table)
    assert len(plain.getvalue().splitlines()) == len(hosts) + 1
    # and the JSON keeps the name itself, as data
    parsed = json.loads(document.getvalue())
    assert parsed["hosts"][0]["latest"]["certificate"]["common_name"] == HOSTILE_NAME


def test_json_of_the_batches_is_valid_with_the_record_api_values(
    fleet: tuple[Inventory, dict[Target, ObservationRecord]],
) -> None:
    inventory, latest = fleet
    out = io.StringIO()
    assert write_hosts_json(_hosts(inventory), out) == len(latest)
    document = json.loads(out.getvalue())
    assert_valid(document)
    records = _sorted(latest)
    assert [h["target"] for h in document["hosts"]] == [str(r.target) for r in records]
    for host, recorded in zip(document["hosts"], records, strict=True):
        assert host["latest"]["verdict"] == recorded.verdict
        assert host["latest"]["problems"] == [
            {"code": p.code, "severity": p.severity, "message": p.message}
            for p in recorded.problems
        ]
        cert = recorded.certificate
        assert host["latest"]["certificate"] == (
            None if cert is None else host["latest"]["certificate"] | {"sha256": cert.sha256}
        )


def test_history_into_a_pipe_is_plain_aligned_lines_and_escaped(
    fleet: tuple[Inventory, dict[Target, ObservationRecord]],
) -> None:
    # Given a host seen with two certificates, the newer one's subject hostile
    inventory, _ = fleet
    history = inventory.history(Target("10.0.0.1", 3389))
    span = history.certificates[-1]
    hostile = dataclasses.replace(span.certificate, subject=f"CN={HOSTILE_NAME}")
    history = dataclasses.replace(
        history,
        certificates=(*history.certificates[:-1], dataclasses.replace(span, certificate=hostile)),
    )
    # When it is written for a pipe
    out = io.StringIO()
    write_history_text(history, out)
    text = out.getvalue()
    # Then no control or bidi character of the subject reaches the output, no box is drawn
    assert not UNSAFE.search(text.replace("\n", "")), text
    assert not ANSI.search(text)
    assert not set(text) & set("┏┓┃━│─┡┩╇└┘")
    # And each section is a header and one line per row, columns starting where the
    # header's do; each certificate's fingerprint is whole on its line
    lines = text.splitlines()
    header = lines.index("Certificates") + 1
    assert lines[header].split() == [
        "SHA-256",
        "Subject",
        "Self-signed",
        "Expires",
        "First",
        "seen",
        "Last",
        "seen",
    ]
    rows = lines[header + 1 : header + 1 + len(history.certificates)]
    for line, span in zip(rows, history.certificates, strict=True):
        assert line.startswith(span.certificate.sha256 + "  ")
        assert line.index("yes") == lines[header].index("Self-signed")
    assert "\\x1b" in rows[-1]
    events = lines.index("Events") + 1
    assert lines[events].startswith("When  ")
    assert len(lines) == events + 1 + len(history.events)
