"""Target expansion: hosts, ports, CIDR networks, duplicates, and target files."""

from __future__ import annotations

from pathlib import Path

import pytest

from rdptrust.errors import UsageError
from rdptrust.model.target import (
    MAX_IPV4_PREFIX,
    MAX_IPV6_PREFIX,
    Target,
    count_targets,
    expand_targets,
    read_target_file,
)


def test_hosts_and_ports_in_order() -> None:
    got = list(expand_targets(["rdp01", "rdp02:3390", "[fd00::5]:4000", "10.0.0.1"]))
    assert got == [
        Target("rdp01", 3389),
        Target("rdp02", 3390),
        Target("fd00::5", 4000),
        Target("10.0.0.1", 3389),
    ]


def test_default_port_is_used_when_none_given() -> None:
    assert list(expand_targets(["a", "b:1"], default_port=4489)) == [
        Target("a", 4489),
        Target("b", 1),
    ]


def test_ipv4_network_yields_its_hosts() -> None:
    got = list(expand_targets(["192.0.2.0/29"]))
    # The network and broadcast addresses are not hosts.
    assert [t.host for t in got] == [f"192.0.2.{i}" for i in range(1, 7)]
    assert {t.port for t in got} == {3389}


def test_ipv4_network_with_port_and_host_bits_set() -> None:
    got = list(expand_targets(["192.0.2.77/30:3390"]))
    assert [t.host for t in got] == ["192.0.2.77", "192.0.2.78"]
    assert all(t.port == 3390 for t in got)


def test_single_address_networks_keep_the_address() -> None:
    assert list(expand_targets(["192.0.2.9/32", "[2001:db8::9/128]:5"])) == [
        Target("192.0.2.9", 3389),
        Target("2001:db8::9", 5),
    ]


@pytest.mark.parametrize("spec", ["0.0.0.0", "0.0.0.0:3389", "::", "[::]:3390", "[0::0]"])
def test_the_unspecified_address_is_no_target(spec: str) -> None:
    # A connection to 0.0.0.0 or :: reaches this machine, whatever was meant.
    with pytest.raises(UsageError, match="unspecified address"):
        list(expand_targets([spec]))


@pytest.mark.parametrize(
    ("spec", "hosts"),
    [("0.0.0.0/31", ["0.0.0.1"]), ("0.0.0.0/32", []), ("[::1/127]", ["::1"]), ("::/128", [])],
)
def test_networks_leave_out_the_unspecified_address(spec: str, hosts: list[str]) -> None:
    assert [t.host for t in expand_targets([spec])] == hosts
    assert count_targets([spec]) == len(hosts)


def test_ipv6_network_yields_its_hosts() -> None:
    got = list(expand_targets(["2001:db8::/125"]))
    # IPv6 hosts() leaves out only the Subnet-Router anycast address (the first).
    assert [t.host for t in got] == [f"2001:db8::{i}" for i in range(1, 8)]
    got_port = list(expand_targets(["[2001:db8::/126]:3390"]))
    assert [str(t) for t in got_port] == [
        "[2001:db8::1]:3390",
        "[2001:db8::2]:3390",
        "[2001:db8::3]:3390",
    ]


def test_duplicates_are_dropped_across_forms() -> None:
    specs = [
        "RDP01",
        "rdp01:3389",
        "rdp01.",
        "rdp01:3390",
        "192.0.2.2",
        "192.0.2.0/30",
        "192.0.2.0/29",
        "192.0.2.3",
        "[2001:db8:0::1]",
        "2001:db8::1",
        "2001:db8::/126",
    ]
    got = [str(t) for t in expand_targets(specs)]
    assert got == [
        "rdp01:3389",
        "rdp01:3390",
        "192.0.2.2:3389",
        "192.0.2.1:3389",
        "192.0.2.4:3389",
        "192.0.2.5:3389",
        "192.0.2.6:3389",
        "[2001:db8::1]:3389",
        "[2001:db8::2]:3389",
        "[2001:db8::3]:3389",
    ]
    assert len(got) == len(set(got))


def test_same_address_on_another_port_is_kept() -> None:
    got = list(expand_targets(["192.0.2.0/30", "192.0.2.1:3390"]))
    assert Target("192.0.2.1", 3390) in got
    assert len(got) == 3


def test_expansion_is_lazy() -> None:
    # A /12 has a million hosts; taking three must not build them all.
    iterator = expand_targets([f"10.0.0.0/{MAX_IPV4_PREFIX}"])
    assert [next(iterator).host for _ in range(3)] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]


@pytest.mark.parametrize(
    "spec",
    [f"10.0.0.0/{MAX_IPV4_PREFIX - 1}", "0.0.0.0/0", f"[fd00::/{MAX_IPV6_PREFIX - 1}]:3389"],
)
def test_too_large_networks_are_refused(spec: str) -> None:
    with pytest.raises(UsageError, match="too large"):
        list(expand_targets([spec]))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("10.0.0.0/33", "not a network"),
        ("10.0.0.0/24:99999", "port"),
        ("[fd00::/120", "missing"),
        ("host:port", "not a number"),
        ("bad host", "not a host name"),
    ],
)
def test_bad_specs_are_refused(spec: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        list(expand_targets([spec]))


def test_target_file(tmp_path: Path) -> None:
    path = tmp_path / "targets.txt"
    path.write_text(
        "# fleet\n\nrdp01\n  rdp02:3390   # second site\n192.0.2.0/30\nrdp01\n", encoding="utf-8"
    )
    lines = list(read_target_file(path))
    assert lines == ["rdp01", "rdp02:3390", "192.0.2.0/30", "rdp01"]
    assert [line.where for line in lines] == [f"{path}:{n}" for n in (3, 4, 5, 6)]
    assert [str(t) for t in expand_targets(lines)] == [
        "rdp01:3389",
        "rdp02:3390",
        "192.0.2.1:3389",
        "192.0.2.2:3389",
    ]


def test_bad_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "targets.txt"
    path.write_text("rdp01\n# ok\n\n10.0.0.0/4\n", encoding="utf-8")
    with pytest.raises(UsageError) as caught:
        list(expand_targets(read_target_file(path)))
    assert str(caught.value).startswith(f"{path}:4: ")
    assert "too large" in str(caught.value)


def test_two_targets_on_one_line_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "targets.txt"
    path.write_text("rdp01\nrdp02 rdp03\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r":2: .*one target per line"):
        list(read_target_file(path))


def test_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read target file"):
        list(read_target_file(tmp_path / "absent.txt"))
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"rdp01\n\xff\xfe\x00\n")
    with pytest.raises(UsageError, match="not UTF-8"):
        list(read_target_file(binary))
