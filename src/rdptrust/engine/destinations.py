"""Where retrievals may go: a pure value the retrieval code asks before each connection.

A certificate names the URLs a client fetches, so whoever controls a probed host's
certificate chooses where a diagnosing service sends requests (SSRF). The exporter
therefore gives every retrieval a :class:`DestinationPolicy`; the command line, run by
the person who chose the host, gives none (everything is fetched, as Windows would).

The retrieval code resolves a URL's host once, asks :meth:`DestinationPolicy.refusal`
about each address, and connects to an address it accepted (never resolving again,
so a name cannot change between the check and the connection). Redirects are asked
about in the same way. A refused retrieval is not made: it is reported as skipped.

The rules, in order, for an address and port:

1. an endpoint in ``own_endpoints`` (the exporter's own listening sockets) is refused,
   always;
2. an address in ``deny`` is refused;
3. with ``allow`` given, only an address in it is accepted (whatever rule 4 says);
4. without ``allow``: loopback, link-local, unspecified, multicast and broadcast
   addresses (:data:`DEFAULT_DENY`) and the exporter's own addresses
   (``own_addresses``) are refused; any other address is accepted.

URLs in ``trusted_urls`` (what the operator configured, such as ``root_list_url``) skip
rules 2 to 4; their redirects do not.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Refused unless ``allow`` names them: loopback, link-local (cloud metadata services
#: answer on 169.254.169.254), "this network", multicast, broadcast (RFC 6890).
DEFAULT_DENY: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(text)
    for text in (
        "127.0.0.0/8",
        "::1/128",
        "169.254.0.0/16",
        "fe80::/10",
        "0.0.0.0/8",
        "::/128",
        "224.0.0.0/4",
        "ff00::/8",
        "255.255.255.255/32",
    )
)


def parse_address(text: str) -> IPAddress | None:
    """The address in *text* (IPv4-mapped IPv6 as IPv4, zone dropped); None if not one."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0].strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_networks(texts: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Networks from CIDR texts (``10.0.0.0/8``, ``::1``); ValueError names a bad one."""
    networks: list[IPNetwork] = []
    for text in texts:
        try:
            networks.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{text!r} is not an IP network (CIDR, e.g. 10.0.0.0/8)") from None
    return tuple(networks)


@dataclass(frozen=True)
class DestinationPolicy:
    """Which addresses retrievals may connect to (see the module docstring)."""

    allow: tuple[IPNetwork, ...] = ()
    deny: tuple[IPNetwork, ...] = ()
    own_addresses: frozenset[IPAddress] = frozenset()
    own_endpoints: frozenset[tuple[IPAddress, int]] = frozenset()
    trusted_urls: frozenset[str] = frozenset()

    def trusted(self, url: str) -> bool:
        """True for a URL the operator configured (it skips the network rules)."""
        return url in self.trusted_urls

    def refusal(self, url: str, address: str, port: int) -> str | None:
        """Why connecting to *address*:*port* for *url* is refused; None when allowed."""
        ip = parse_address(address)
        if ip is None:
            return f"{address} is not an IP address"
        if (ip, port) in self.own_endpoints:
            return f"{_show(ip, port)} is this exporter's own listening address"
        if self.trusted(url):
            return None
        if _within(ip, self.deny):
            return f"{ip} is in a denied network (fetch_deny)"
        if self.allow:
            if _within(ip, self.allow):
                return None
            return f"{ip} is outside the allowed networks (fetch_allow)"
        if ip in self.own_addresses:
            return f"{ip} is an address of this exporter's host"
        if _within(ip, DEFAULT_DENY):
            return f"{ip} is a loopback, link-local or special address (not fetched by default)"
        return None


def _within(ip: IPAddress, networks: Iterable[IPNetwork]) -> bool:
    return any(ip.version == net.version and ip in net for net in networks)


def _show(ip: IPAddress, port: int) -> str:
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"
