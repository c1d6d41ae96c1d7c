"""The proxy path of an assessment's retrievals: static, a PAC script, or WPAD (WINDOWS.md §6).

CryptoAPI retrieves through WinHTTP, which takes a static ``netsh winhttp`` proxy first,
then the configured settings (an auto-config script), then "Automatically detect
settings" (WPAD), then goes direct (WINDOWS.md §6, KB 2623724). The
discovery's own lookups and downloads are kept as retrievals of purpose ``wpad``: the
judge counts them as a wait of their own, before the chain's retrievals (rule
``wpad-discovery``). A discovery is measured once per process for the same settings
(a scan does not ask wpad again for every host) and charged to every assessment, as
each mstsc process pays it.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from rdptrust.engine.options import AssessOptions
from rdptrust.model.retrieval import Fetched, HttpResult, Purpose
from rdptrust.net.autoproxy import (
    PacScript,
    discover_wpad,
    download_pac,
    read_pac_file,
)
from rdptrust.net.http import ProxyRoute
from rdptrust.net.resolve import resolve


@dataclass(frozen=True)
class ProxyPath:
    """How the retrievals reach the network: ``route`` picks each URL's proxy (None: the
    static ``proxy`` or direct); ``made`` the discovery's own retrievals; ``source``
    says in words where the proxy came from."""

    route: ProxyRoute | None
    made: tuple[Fetched, ...]
    source: str


_MEASURED: dict[tuple[object, ...], ProxyPath] = {}


def _fetched(result: HttpResult) -> Fetched:
    return Fetched(Purpose.WPAD, result.url, result, detail=result.error)


async def proxy_path(options: AssessOptions) -> ProxyPath:
    """The proxy path *options* describe (see the module docstring): a configured script
    comes before WPAD discovery (a static proxy excludes both: AssessOptions)."""
    if not options.wpad and options.pac is None:
        if options.proxy is not None and options.proxy_bypass:
            route = bypass_route(options.proxy, options.proxy_bypass)
            return ProxyPath(route, (), f"{options.proxy} (bypass: {options.proxy_bypass})")
        return ProxyPath(None, (), options.proxy or "direct")
    key = (options.pac, options.wpad, options.wpad_domain, options.fetch_timeout_s)
    if options.lookup is None and key in _MEASURED:
        return _MEASURED[key]
    lookup = options.lookup or resolve
    made: list[Fetched] = []
    script: PacScript | None = None
    source = "direct (no proxy script found)"
    if options.pac is not None:
        if options.pac.lower().startswith(("http://", "https://")):
            script, download = await download_pac(
                options.pac, timeout=options.fetch_timeout_s, lookup=lookup
            )
            made.append(_fetched(download))
        else:
            script = read_pac_file(Path(options.pac))
    if script is None and options.wpad and options.wpad_domain:
        found = await discover_wpad(
            options.wpad_domain, timeout=options.fetch_timeout_s, lookup=lookup
        )
        made.extend(map(_fetched, found.made))
        script = found.script
    if script is not None:
        source = f"proxy script {script.source}"
    path = ProxyPath(script.route() if script is not None else None, tuple(made), source)
    if options.lookup is None:
        _MEASURED[key] = path
    return path


def bypassed(url: str, bypass: str) -> bool:
    """Whether WinHTTP's proxy bypass list *bypass* sends *url* direct.

    The list is netsh's (``netsh winhttp set proxy proxy-server=… bypass-list=…``):
    entries separated by ``;`` (or spaces), each a host name or address with ``*``
    wildcards, optionally with a scheme prefix or a port, matched without regard to
    case; ``<local>`` stands for every host name without a dot (intranet names).
    """
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return False
    if not host:
        return False
    for raw in bypass.replace(" ", ";").split(";"):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "<local>":
            if "." not in host and ":" not in host:
                return True
            continue
        if "://" in entry:
            scheme, _, entry = entry.partition("://")
            if scheme != (parts.scheme or "").lower():
                continue
        pattern, _, wanted_port = entry.rpartition(":") if _has_port(entry) else (entry, "", "")
        if wanted_port and str(port or _DEFAULT_PORTS.get(parts.scheme, 0)) != wanted_port:
            continue
        if fnmatch.fnmatchcase(host, pattern.strip("[]")):
            return True
    return False


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _has_port(entry: str) -> bool:
    head, sep, tail = entry.rpartition(":")
    return bool(sep) and tail.isdigit() and (head.count(":") == 0 or head.endswith("]"))


def bypass_route(proxy: str, bypass: str) -> ProxyRoute:
    """The route of a static proxy with a bypass list: *proxy*, or direct (None) for a
    URL the list names."""

    def route(url: str) -> str | None:
        return None if bypassed(url, bypass) else proxy

    return route
