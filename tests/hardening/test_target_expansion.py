"""Target expansion is linear, and one cap holds over all lines together.

Before: every address of a network was compared with every network expanded before it,
so 4,096 /24 lines (1,040,384 addresses) yielded 62,000 targets in 20 s and would have
needed over an hour, while one /12 (as many addresses) took 12 s; and the /12 limit was
per line, so sixteen /12 lines made 16.7 million targets and a 1.6 GB inventory before
the first host was probed.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any

import pytest

from fixtures.cli import run_rdptrust
from rdptrust.errors import UsageError
from rdptrust.model.target import (
    DEFAULT_MAX_TARGETS,
    _ExpandedNetworks,
    check_target_total,
    count_targets,
    expand_targets,
)


def _probes_per_address(specs: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """Targets *specs* expand to, and the sets of expanded networks looked into for them
    all: the work that made 4,096 /24 lines quadratic, counted rather than timed."""
    probes = 0
    real = _ExpandedNetworks.holds

    def counted(self: _ExpandedNetworks, address: Any, port: int) -> bool:
        nonlocal probes
        probes += len(self._by_length.get((port, address.version), {}))
        return real(self, address, port)

    monkeypatch.setattr(_ExpandedNetworks, "holds", counted)
    count = sum(1 for _ in expand_targets(specs))
    monkeypatch.undo()
    return count, probes


def test_many_small_networks_cost_what_one_large_one_does(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given 1,024 /24 lines and one /14: the same 2^18 addresses
    lines = [f"127.{i // 256}.{i % 256}.0/24" for i in range(1024)]
    # When both are expanded
    many, many_probes = _probes_per_address(lines, monkeypatch)
    one, one_probes = _probes_per_address(["127.0.0.0/14"], monkeypatch)
    # Then each address of the lines is looked up once per distinct prefix length (one
    # here), not once per line before it (1,024 x 1,023 / 2 x 254 lookups were made)
    assert many == 1024 * 254
    assert one == (1 << 18) - 2
    assert many_probes == many - 254  # the first line's addresses find nothing to look in
    assert one_probes == 0
    # And mixed prefix lengths cost one lookup per length
    mixed = ["127.0.0.0/24", "127.1.0.0/25", "127.2.0.0/26", "127.3.0.0/24"]
    count, probes = _probes_per_address(mixed, monkeypatch)
    assert count == 254 + 126 + 62 + 254
    assert probes == 126 * 1 + 62 * 2 + 254 * 3


def test_overlapping_networks_and_hosts_are_still_dropped_once() -> None:
    specs = ["127.0.0.0/30", "127.0.0.0/24", "127.0.0.5", "127.0.0.0/30", "127.0.0.0/31"]
    hosts = [t.host for t in expand_targets(specs)]
    assert hosts[:2] == ["127.0.0.1", "127.0.0.2"]
    # an address inside a network already expanded is a repeat (its network and
    # broadcast addresses included), as before
    assert len(hosts) == len(set(hosts)) == 253
    assert "127.0.0.3" not in hosts
    ports = list(expand_targets(["127.0.0.0/30", "127.0.0.0/30:3390"]))
    assert [(t.host, t.port) for t in ports] == [
        ("127.0.0.1", 3389),
        ("127.0.0.2", 3389),
        ("127.0.0.1", 3390),
        ("127.0.0.2", 3390),
    ]


def test_count_is_computed_without_expanding(monkeypatch: pytest.MonkeyPatch) -> None:
    def expanded(self: object) -> None:
        raise AssertionError("count_targets expanded a network")

    monkeypatch.setattr(ipaddress.IPv4Network, "hosts", expanded)
    monkeypatch.setattr(ipaddress.IPv6Network, "hosts", expanded)
    sixteen = [f"127.{16 * i}.0.0/12" for i in range(16)]
    total = count_targets(sixteen)
    assert total == 16 * ((1 << 20) - 2)
    assert count_targets(["[fd00::/108]:3390", "[fd00::/127]"]) == (1 << 20) - 1 + 2
    with pytest.raises(UsageError, match=r"--max-targets 16777184"):
        check_target_total(total, DEFAULT_MAX_TARGETS)
    check_target_total(count_targets(["127.0.0.0/12"]), DEFAULT_MAX_TARGETS)


async def test_sixteen_slash_12_lines_are_refused_before_the_inventory_exists(
    tmp_path: Path,
) -> None:
    # Given sixteen /12 lines in a target file (all of 127.0.0.0/8: loopback only)
    targets = tmp_path / "targets.txt"
    targets.write_text("".join(f"127.{16 * i}.0.0/12\n" for i in range(16)))
    db = tmp_path / "inventory.sqlite3"
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "HOME": str(tmp_path)}
    # When they are scanned
    code, out, err = await run_rdptrust(
        "scan", "-i", str(targets), "--db", str(db), env=env, timeout=60
    )
    # Then the scan is refused before anything is expanded (they are counted, as above),
    # saying the cap and how to raise it
    assert code == 64, (out, err)
    assert "1,048,576" in err
    assert "--max-targets" in err
    assert not db.exists()


async def test_a_bad_last_line_is_found_before_the_inventory_exists(tmp_path: Path) -> None:
    targets = tmp_path / "targets.txt"
    targets.write_text("127.0.0.1:1\n127.0.0.0/8\n")
    db = tmp_path / "inventory.sqlite3"
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "HOME": str(tmp_path)}
    code, _, err = await run_rdptrust(
        "scan", "-i", str(targets), "--db", str(db), env=env, timeout=60
    )
    assert code == 64
    assert f"{targets}:2:" in err
    assert not db.exists()
