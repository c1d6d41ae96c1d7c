"""Targets: a host name or address and a TCP port."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from rdptrust.errors import UsageError

DEFAULT_RDP_PORT = 3389


@dataclass(frozen=True, order=True)
class Target:
    """One RDP endpoint as the user named it (the host is not resolved here)."""

    host: str
    port: int = DEFAULT_RDP_PORT

    def __post_init__(self) -> None:
        if not self.host:
            raise UsageError("empty host name")
        if not 0 < self.port < 65536:
            raise UsageError(f"port {self.port} is out of range 1-65535")

    @property
    def is_ip(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True

    def __str__(self) -> str:
        if ":" in self.host:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"


def parse_target(text: str, default_port: int = DEFAULT_RDP_PORT) -> Target:
    """Parse ``host``, ``host:port``, ``[v6]``, ``[v6]:port`` or a bare IPv6 address."""
    text = text.strip()
    if not text:
        raise UsageError("empty target; give HOST or HOST:PORT")
    host, port_text = text, ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise UsageError(f"{text!r}: missing ']' after the IPv6 address")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise UsageError(f"{text!r}: expected ':PORT' after ']'")
            port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    elif text.count(":") > 1:
        try:
            ipaddress.IPv6Address(text)
        except ValueError:
            raise UsageError(f"{text!r} is not a valid IPv6 address; use [ADDR]:PORT") from None
    port = default_port
    if port_text:
        if not port_text.isdigit():
            raise UsageError(f"{text!r}: port {port_text!r} is not a number")
        port = int(port_text)
    if any(c.isspace() for c in host) or "/" in host:
        raise UsageError(f"{text!r} is not a host name or address")
    return Target(host, port)
