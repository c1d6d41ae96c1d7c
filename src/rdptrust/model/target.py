"""Targets: a host name or address and a TCP port."""

from __future__ import annotations

import codecs
import functools
import io
import ipaddress
import os
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from rdptrust.errors import UsageError

DEFAULT_RDP_PORT = 3389

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_IP_CHARACTERS = frozenset("0123456789abcdefABCDEF.:")


@functools.lru_cache(maxsize=4096)
def ip_literal(text: str) -> IPAddress | None:
    """*text* as an IP address, exactly as :func:`ipaddress.ip_address` reads it, or None.

    A host string is looked at several times per host (target, pin key, resolver, name
    match): it is parsed once (remembered per string), a name is turned away without the
    parser and its exception, and a dotted quad is read directly.
    """
    if "%" not in text:  # a scoped IPv6 address (fe80::1%eth0) goes to the parser
        if not text or not _IP_CHARACTERS.issuperset(text):
            return None
        parts = text.split(".")
        if len(parts) == 4 and all(p.isdigit() for p in parts):
            # the strict form ipaddress accepts: no leading zeros, each part 0-255
            if any((len(p) > 1 and p[0] == "0") or len(p) > 3 or int(p) > 255 for p in parts):
                return None
            a, b, c, d = (int(p) for p in parts)
            return ipaddress.IPv4Address((a << 24) | (b << 16) | (c << 8) | d)
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


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
        return ip_literal(self.host) is not None

    def __str__(self) -> str:
        if ":" in self.host:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"


def parse_target(text: str, default_port: int = DEFAULT_RDP_PORT) -> Target:
    """Parse ``host``, ``host:port``, ``[v6]``, ``[v6]:port`` or a bare IPv6 address."""
    text = text.strip()
    if not text:
        raise UsageError("empty target; give HOST or HOST:PORT")
    host, port_text = text, None  # port_text: what follows the port's ':', if one is there
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
    if port_text == "":
        raise UsageError(f"{text!r}: no port after ':'; give HOST or HOST:PORT")
    if port_text is not None:
        if not port_text.isdigit():
            raise UsageError(f"{text!r}: port {port_text!r} is not a number")
        port = int(port_text)
    if any(c.isspace() for c in host) or "/" in host:
        raise UsageError(f"{text!r} is not a host name or address")
    check_host_name(host)
    literal = ip_literal(host)
    if literal is not None and literal.is_unspecified:
        raise UsageError(
            f"{text!r} is the unspecified address, not a host (a connection to it reaches "
            "this machine); give 127.0.0.1 or ::1 to scan this machine"
        )
    return Target(host, port)


#: Longest DNS name and label (RFC 1035 2.3.4), counted in the ASCII (IDNA) form.
MAX_NAME_LENGTH = 253
MAX_LABEL_LENGTH = 63
#: What a label may hold: letters, digits, hyphen (not first or last, RFC 1123 2.1),
#: and the underscore that Windows networks allow in NetBIOS-derived names; other
#: letters are checked through IDNA.
_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?")


def check_host_name(host: str) -> None:
    """Raise :class:`UsageError` unless *host* is an IP address or a usable DNS name.

    A name is at most 253 characters, one trailing dot allowed, each label 1 to 63
    characters of letters, digits, ``-`` or ``_``; a label in another script must have
    an IDNA form (``xn--…``) within those limits. The resolver would otherwise fail
    late and obscurely (Python's ``idna`` codec raises ``UnicodeError``).
    """
    if ip_literal(host) is not None:
        return
    name = host[:-1] if host.endswith(".") else host
    shown = repr(host if len(host) <= 80 else host[:77] + "...")
    if not name:
        raise UsageError(f"{shown} is not a host name")
    ascii_labels = []
    for label in name.split("."):
        if not label:
            raise UsageError(f"{shown} is not a host name: it has an empty label ('..')")
        if _LABEL.fullmatch(label):
            ascii_labels.append(label)
            continue
        try:
            encoded = label.encode("idna").decode("ascii")
        except UnicodeError:
            encoded = ""
        if not encoded or not _LABEL.fullmatch(encoded):
            if encoded.startswith("-") or encoded.endswith("-"):
                raise UsageError(
                    f"{shown} is not a host name: label {label[:20]!r} begins or ends with"
                    " '-', which a DNS name cannot"
                )
            raise UsageError(
                f"{shown} is not a host name: {label[:20]!r} holds characters a DNS name"
                " cannot (letters, digits, '-' and '_' only)"
            )
        ascii_labels.append(encoded)
    for label in ascii_labels:
        if len(label) > MAX_LABEL_LENGTH:
            raise UsageError(
                f"{shown} is not a host name: label {label[:20]!r}... is {len(label)}"
                f" characters, more than DNS allows ({MAX_LABEL_LENGTH})"
            )
    total = len(".".join(ascii_labels))
    if total > MAX_NAME_LENGTH:
        raise UsageError(
            f"{shown} is not a host name: {total} characters, more than DNS allows"
            f" ({MAX_NAME_LENGTH})"
        )


#: Largest IPv4 network :func:`expand_targets` expands: a /12 (1,048,576 addresses).
MAX_IPV4_PREFIX = 12
#: Largest IPv6 network :func:`expand_targets` expands: a /108 (1,048,576 addresses).
MAX_IPV6_PREFIX = 108

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TargetLine(str):
    """One target specification read from a file; ``where`` says ``FILE:LINE``."""

    where: str

    def __new__(cls, text: str, where: str) -> TargetLine:
        line = super().__new__(cls, text)
        line.where = where
        return line


def canonical_host(host: str) -> str:
    """The form a host is compared and stored in: addresses compressed, names lowercase."""
    address = ip_literal(host)
    if address is not None:
        return address.compressed
    return host.lower().rstrip(".") or host


def parse_network(text: str, default_port: int = DEFAULT_RDP_PORT) -> tuple[_Network, int]:
    """Parse ``NET/PREFIX``, ``NET/PREFIX:PORT`` or ``[V6NET/PREFIX]:PORT``.

    The network must not be larger than a /:data:`MAX_IPV4_PREFIX` (IPv4) or a
    /:data:`MAX_IPV6_PREFIX` (IPv6); host bits may be set (``10.0.0.7/24`` means
    ``10.0.0.0/24``).
    """
    text = text.strip()
    net_text, port_text = text, ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise UsageError(f"{text!r}: missing ']' after the IPv6 network")
        net_text, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise UsageError(f"{text!r}: expected ':PORT' after ']'")
            port_text = rest[1:]
    elif text.count(":") == 1:
        net_text, port_text = text.split(":")
    port = default_port
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise UsageError(f"{text!r}: port {port_text!r} is not a number from 1 to 65535")
        port = int(port_text)
    try:
        network = ipaddress.ip_network(net_text, strict=False)
    except ValueError:
        raise UsageError(
            f"{text!r} is not a network; write it as 10.0.0.0/24, 10.0.0.0/24:3390 "
            "or [fd00::/120]:3390"
        ) from None
    limit = MAX_IPV4_PREFIX if network.version == 4 else MAX_IPV6_PREFIX
    if network.prefixlen < limit:
        raise UsageError(
            f"{text!r} is too large ({network.num_addresses:,} addresses); split it into "
            f"networks of /{limit} or smaller"
        )
    return network, port


def expand_targets(specs: Iterable[str], default_port: int = DEFAULT_RDP_PORT) -> Iterator[Target]:
    """Yield each target of *specs* once, lazily, in the order given.

    A spec is a host, ``host:port``, ``[v6]:port``, or a network (``10.0.0.0/24``,
    ``10.0.0.0/24:3390``, ``[fd00::/120]:3390``) that stands for its host addresses.
    Duplicates (same host, ignoring case, and port) are dropped. Memory grows with the
    number of specs, not with the number of addresses a network holds: an address is
    recognised as a repeat by the networks already expanded. A spec read from a file
    (:class:`TargetLine`) names its file and line in any :class:`UsageError`.

    Time is linear in the number of targets: an address is looked up once per distinct
    prefix length among the networks before it (at most 33 for IPv4, 129 for IPv6), not
    once per network.
    """
    seen: set[tuple[str, int]] = set()
    expanded = _ExpandedNetworks()

    for spec in specs:
        try:
            if "/" in spec:
                network, port = parse_network(spec, default_port)
                if expanded.covers(network, port):
                    continue
                # hosts() leaves out the network and broadcast addresses (IPv4) and the
                # Subnet-Router anycast address (IPv6); a /31, /32, /127 or /128 keeps all.
                # The unspecified address (0.0.0.0 of a /31, :: of a /127) is no host.
                for address in network.hosts():
                    host = address.compressed
                    if (host, port) in seen or expanded.holds(address, port):
                        continue
                    if address.is_unspecified:
                        continue
                    yield Target(host, port)
                expanded.add(network, port)
                continue
            target = parse_target(spec, default_port)
        except UsageError as exc:
            raise _where(spec, exc) from None
        host = canonical_host(target.host)
        key = (host, target.port)
        if key in seen:
            continue
        literal = ip_literal(host)
        if literal is not None and expanded.holds(literal, target.port):
            continue
        seen.add(key)
        yield Target(host, target.port)


def _where(spec: str, exc: UsageError) -> UsageError:
    where = getattr(spec, "where", None)
    return exc if where is None else UsageError(f"{where}: {exc}")


class _ExpandedNetworks:
    """The networks expanded so far, by port, address family and prefix length."""

    def __init__(self) -> None:
        #: (port, version) -> {prefix length: network addresses as integers >> host bits}
        self._by_length: dict[tuple[int, int], dict[int, set[int]]] = {}

    def add(self, network: _Network, port: int) -> None:
        lengths = self._by_length.setdefault((port, network.version), {})
        bits = network.max_prefixlen - network.prefixlen
        lengths.setdefault(network.prefixlen, set()).add(int(network.network_address) >> bits)

    def holds(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int) -> bool:
        lengths = self._by_length.get((port, address.version))
        if not lengths:
            return False
        value, width = int(address), address.max_prefixlen
        return any((value >> (width - length)) in nets for length, nets in lengths.items())

    def covers(self, network: _Network, port: int) -> bool:
        """Whether an expanded network already holds all of *network*."""
        lengths = self._by_length.get((port, network.version))
        if not lengths:
            return False
        value, width = int(network.network_address), network.max_prefixlen
        return any(
            length <= network.prefixlen and (value >> (width - length)) in nets
            for length, nets in lengths.items()
        )


#: Most targets one scan may hold, over all its lines together, before duplicates are
#: dropped: one /12. ``rdptrust scan --max-targets`` raises it.
DEFAULT_MAX_TARGETS = 1 << 20


def count_targets(specs: Iterable[str], default_port: int = DEFAULT_RDP_PORT) -> int:
    """How many targets *specs* stand for at most (duplicates counted), without expanding.

    Every spec is parsed, so a bad one raises :class:`UsageError` (naming its file and
    line) before anything is written. Linear in the number of specs.
    """
    total = 0
    for spec in specs:
        try:
            if "/" in spec:
                network, _ = parse_network(spec, default_port)
                total += _host_count(network)
            else:
                parse_target(spec, default_port)
                total += 1
        except UsageError as exc:
            raise _where(spec, exc) from None
    return total


def _host_count(network: _Network) -> int:
    """``len(list(network.hosts()))``, computed."""
    size = network.num_addresses
    whole = network.prefixlen >= network.max_prefixlen - 1  # a /31, /32, /127 or /128
    if not whole:
        return size - 2 if network.version == 4 else size - 1
    return size - 1 if network.network_address.is_unspecified else size


def check_target_total(total: int, limit: int) -> None:
    """Raise :class:`UsageError` when *total* targets exceed *limit* (one scan's cap)."""
    if total > limit:
        raise UsageError(
            f"the targets given stand for {total:,} addresses, more than one scan takes"
            f" ({limit:,}); split the scan, or raise the cap with --max-targets {total}"
        )


_NOT_TEXT = "not UTF-8 text (nor UTF-16 with a byte order mark)"
_UNDECODED = re.compile("[\udc80-\udcff]")

#: Largest target file :func:`read_target_file` reads, and its longest line.
MAX_TARGET_FILE_BYTES = 64 << 20
MAX_TARGET_LINE = 1024


def read_target_file(path: str | os.PathLike[str]) -> Iterator[TargetLine]:
    """Yield the target specs of a file: one per line, ``#`` starts a comment.

    Blank lines and comments are skipped. The file is read lazily; ``-`` reads
    standard input. It is UTF-8, or UTF-16 or UTF-8 with a byte order mark (what
    Windows PowerShell 5.1's ``>`` and Notepad write). Problems raise
    :class:`UsageError` naming the file and line.
    """
    name = os.fspath(path)
    binary: BinaryIO | None = None
    try:
        binary = sys.stdin.buffer if name == "-" else open(name, "rb")
        # surrogateescape keeps an undecodable byte in its line, so the error names that line
        handle = io.TextIOWrapper(
            binary, encoding=_encoding(binary), errors="surrogateescape", newline=None
        )
    except OSError as exc:
        if binary is not None and name != "-":
            binary.close()
        raise UsageError(f"cannot read target file {name}: {exc.strerror or exc}") from None
    read = 0
    try:
        lineno = 0
        while True:
            try:
                raw = handle.readline(MAX_TARGET_LINE + 1)
            except UnicodeDecodeError:
                raise UsageError(f"{name}:{lineno + 1}: {_NOT_TEXT}") from None
            except OSError as exc:
                raise UsageError(f"cannot read target file {name}: {exc.strerror or exc}") from None
            if not raw:
                return
            lineno += 1
            if _UNDECODED.search(raw):
                raise UsageError(f"{name}:{lineno}: {_NOT_TEXT}")
            read += len(raw)
            if read > MAX_TARGET_FILE_BYTES:
                raise UsageError(f"{name}: larger than {MAX_TARGET_FILE_BYTES >> 20} MiB")
            if len(raw) > MAX_TARGET_LINE and not raw.endswith("\n"):
                raise UsageError(f"{name}:{lineno}: line longer than {MAX_TARGET_LINE} characters")
            text = raw.split("#", 1)[0].strip()
            if not text:
                continue
            if any(c.isspace() for c in text):
                raise UsageError(f"{name}:{lineno}: {text!r}: one target per line")
            yield TargetLine(text, f"{name}:{lineno}")
    finally:
        if name == "-":
            handle.detach()  # standard input stays open for whoever reads it next
        else:
            handle.close()


def _encoding(binary: BinaryIO) -> str:
    """The text encoding its byte order mark names; UTF-8 without one.

    The mark is looked at without being consumed: the ``utf-16`` and ``utf-8-sig``
    codecs read it themselves.
    """
    if isinstance(binary, io.BufferedReader):
        start = binary.peek(3)[:3]
    else:
        start = binary.read(3)
        binary.seek(0)
    if start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if start.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    return "utf-8"
