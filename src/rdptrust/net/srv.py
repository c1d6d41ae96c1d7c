"""Find a domain's domain controllers through DNS SRV, as the DC locator does.

``_ldap._tcp.dc._msdcs.DOMAIN`` (MS-ADTS 6.3.2.3) lists the LDAP servers of the
domain's DCs; they are returned in the order RFC 2782 asks for (lowest priority
first, higher weight first within one priority; the random weighting is left out, so
results are repeatable). *nameserver* points the query at one DNS server
(``ADDR`` or ``ADDR:PORT``, ``[v6]:PORT``) instead of the system resolver, so tests
and sites can ask a known server. Never raises for what DNS does: an empty list and
the reason.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

DNS_PORT = 53


@dataclass(frozen=True)
class SrvTarget:
    """One SRV answer: the host and port to connect to."""

    host: str
    port: int
    priority: int
    weight: int


def parse_nameserver(text: str) -> tuple[str, int]:
    """``ADDR``, ``ADDR:PORT`` or ``[V6]:PORT`` as (address, port); ValueError if bad."""
    value = text.strip()
    bad = f"bad DNS server {text!r}: use ADDR, ADDR:PORT or [V6]:PORT"
    host, port = value, DNS_PORT
    if value.startswith("["):
        inside, _, rest = value[1:].partition("]")
        host = inside
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                raise ValueError(bad)
            port = int(rest[1:])
    elif value.count(":") == 1:
        host, _, number = value.partition(":")
        if not number.isdigit():
            raise ValueError(bad)
        port = int(number)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"bad DNS server {text!r}: give an IP address") from None
    if not 0 < port < 65536:
        raise ValueError(f"bad DNS server port in {text!r}")
    return host, port


async def srv_targets(
    name: str, *, timeout: float, nameserver: str | None = None
) -> tuple[tuple[SrvTarget, ...], str | None]:
    """The servers SRV record *name* lists (for DCs: ``_ldap._tcp.dc._msdcs.DOMAIN``),
    in order, and None; or () and why not."""
    # dnspython is imported when a query is made: every command that takes a DNS
    # server option imports this module, few of their runs ask DNS (start-up time).
    import dns.asyncresolver
    import dns.exception
    import dns.rdatatype
    import dns.resolver

    resolver = dns.asyncresolver.Resolver(configure=nameserver is None)
    if nameserver is not None:
        address, port = parse_nameserver(nameserver)
        resolver.nameservers = [address]
        resolver.port = port
    resolver.lifetime = timeout
    resolver.timeout = timeout
    try:
        answer = await resolver.resolve(name, dns.rdatatype.SRV, search=False)
    except dns.resolver.NXDOMAIN:
        return (), f"{name} does not exist"
    except dns.resolver.NoAnswer:
        return (), f"{name} has no SRV record"
    except (dns.exception.Timeout, dns.resolver.LifetimeTimeout):
        return (), f"no DNS answer for {name} in time"
    except dns.exception.DNSException as exc:
        return (), f"DNS lookup of {name} failed ({exc})"
    found = [
        SrvTarget(str(r.target).rstrip("."), int(r.port), int(r.priority), int(r.weight))
        for r in answer
        if str(r.target) != "."
    ]
    found.sort(key=lambda t: (t.priority, -t.weight, t.host, t.port))
    if not found:
        return (), f"{name} names no server"
    return tuple(found), None
