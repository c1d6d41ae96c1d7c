"""ip_literal reads exactly what ipaddress.ip_address reads, and nothing else."""

from __future__ import annotations

import ipaddress

import pytest

from rdptrust.model.pin import host_key
from rdptrust.model.target import Target, canonical_host, ip_literal

CASES = [
    "127.0.0.1",
    "0.0.0.0",
    "255.255.255.255",
    "256.1.1.1",
    "01.2.3.4",  # a leading zero: refused by ipaddress (ambiguous octal)
    "1.2.3.04",
    "1.2.3",
    "1.2.3.4.5",
    "1.2.3.",
    "1..3.4",
    "1.2.3.0004",
    " 1.2.3.4",
    "1.2.3.4 ",
    "\u0661.\u0662.\u0663.\u0664",  # Arabic-Indic digits: isdigit() is true, not an address
    "::1",
    "::",
    "fe80::1",
    "fe80::1%eth0",
    "fe80::1%",
    "2001:db8::1:0:0:1",
    "2001:DB8::1",
    "::ffff:10.0.0.1",
    "1:2:3:4:5:6:7:8:9",
    "[::1]",
    "abc",
    "beef",
    "dead:beef",
    "rdp01.example",
    "",
    ".",
    "1e3",
]


def _reference(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@pytest.mark.parametrize("text", CASES)
def test_ip_literal_agrees_with_ipaddress(text: str) -> None:
    assert ip_literal(text) == _reference(text)
    # and twice (remembered): the same answer
    assert ip_literal(text) == _reference(text)


def test_every_dotted_quad_shape_agrees() -> None:
    # every part from the edge cases of the fast path, in each of the four positions
    parts = ["0", "1", "9", "10", "99", "100", "255", "256", "00", "01", "010", "0255", "1000"]
    for part in parts:
        for position in range(4):
            quad = ["1", "2", "3", "4"]
            quad[position] = part
            text = ".".join(quad)
            assert ip_literal(text) == _reference(text), text


def test_its_callers_normalise_as_before() -> None:
    assert Target("10.0.0.1").is_ip
    assert not Target("rdp01").is_ip
    assert canonical_host("2001:DB8:0::1") == "2001:db8::1"
    assert canonical_host("RDP01.Example.") == "rdp01.example"
    assert host_key("[2001:DB8::1]") == "2001:db8::1"
    assert host_key("010.0.0.1") == "010.0.0.1"  # not an address: kept as a name
