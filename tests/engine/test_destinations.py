"""The destination policy: a pure value, checked without sockets."""

from __future__ import annotations

import ipaddress

import pytest

from rdptrust.engine.destinations import DestinationPolicy, parse_networks

URL = "http://crl.example/x.crl"


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.9.9.9",
        "::1",
        "169.254.169.254",
        "fe80::1",
        "0.0.0.0",
        "224.0.0.1",
        "::ffff:127.0.0.1",
        "255.255.255.255",
    ],
)
def test_the_default_refuses_loopback_link_local_and_special(address: str) -> None:
    assert DestinationPolicy().refusal(URL, address, 80) is not None


@pytest.mark.parametrize("address", ["10.1.2.3", "192.168.1.1", "93.184.216.34", "2001:db8::1"])
def test_the_default_allows_other_addresses(address: str) -> None:
    assert DestinationPolicy().refusal(URL, address, 80) is None


def test_allow_is_a_list_of_the_only_networks_and_deny_wins() -> None:
    policy = DestinationPolicy(
        allow=parse_networks(["127.0.0.0/8", "10.0.0.0/8"]), deny=parse_networks(["10.9.0.0/16"])
    )
    assert policy.refusal(URL, "127.0.0.1", 80) is None
    assert policy.refusal(URL, "10.1.1.1", 80) is None
    assert "fetch_deny" in (policy.refusal(URL, "10.9.1.1", 80) or "")
    assert "fetch_allow" in (policy.refusal(URL, "192.168.1.1", 80) or "")


def test_own_endpoints_are_refused_always_and_own_addresses_by_default() -> None:
    me = ipaddress.ip_address("127.0.0.1")
    host = ipaddress.ip_address("10.0.0.5")
    policy = DestinationPolicy(
        allow=parse_networks(["0.0.0.0/0"]),
        own_addresses=frozenset({me, host}),
        own_endpoints=frozenset({(me, 9389)}),
        trusted_urls=frozenset({URL}),
    )
    assert "own listening" in (policy.refusal(URL, "127.0.0.1", 9389) or "")
    assert policy.refusal(URL, "127.0.0.1", 9390) is None  # trusted URL, other port
    assert DestinationPolicy(own_addresses=frozenset({host})).refusal(URL, "10.0.0.5", 80)


def test_a_trusted_url_skips_the_network_rules_but_its_redirect_does_not() -> None:
    policy = DestinationPolicy(trusted_urls=frozenset({"http://127.0.0.1:8/root.cab"}))
    assert policy.refusal("http://127.0.0.1:8/root.cab", "127.0.0.1", 8) is None
    assert policy.refusal("http://127.0.0.1:8/elsewhere", "127.0.0.1", 8) is not None


def test_bad_networks_are_named() -> None:
    with pytest.raises(ValueError, match="not-a-net"):
        parse_networks(["not-a-net"])
