"""The proxy path of an assessment's retrievals: static, a PAC script, or WPAD (WINDOWS.md §6).

WinHTTP (which CryptoAPI retrieves through) tries "Automatically detect settings" (WPAD)
first, then a configured auto-config script, then goes direct (KB 2623724). The
discovery's own lookups and downloads are kept as retrievals of purpose ``wpad``: the
judge counts them as a wait of their own, before the chain's retrievals (rule
``wpad-discovery``). A discovery is measured once per process for the same settings
(a scan does not ask wpad again for every host) and charged to every assessment, as
each mstsc process pays it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
    """The proxy path *options* describe (see the module docstring)."""
    if not options.wpad and options.pac is None:
        return ProxyPath(None, (), options.proxy or "direct")
    key = (options.pac, options.wpad, options.wpad_domain, options.fetch_timeout_s)
    if options.lookup is None and key in _MEASURED:
        return _MEASURED[key]
    lookup = options.lookup or resolve
    made: list[Fetched] = []
    script: PacScript | None = None
    source = "direct (no proxy script found)"
    if options.wpad and options.wpad_domain:
        found = await discover_wpad(
            options.wpad_domain, timeout=options.fetch_timeout_s, lookup=lookup
        )
        made.extend(map(_fetched, found.made))
        script = found.script
    if script is None and options.pac is not None:
        if options.pac.lower().startswith(("http://", "https://")):
            script, download = await download_pac(
                options.pac, timeout=options.fetch_timeout_s, lookup=lookup
            )
            made.append(_fetched(download))
        else:
            script = read_pac_file(Path(options.pac))
    if script is not None:
        source = f"proxy script {script.source}"
    path = ProxyPath(script.route() if script is not None else None, tuple(made), source)
    if options.lookup is None:
        _MEASURED[key] = path
    return path
