"""The proxy a retrieval takes, found as WinHTTP finds it: a PAC file, or WPAD (WINDOWS.md §6).

CryptoAPI retrieves through WinHTTP, which on Windows 10 uses
``WINHTTP_ACCESS_TYPE_AUTOMATIC_PROXY`` (KB 2623724): "Automatically detect settings"
(WPAD) and a proxy auto-config (PAC) script decide the proxy of each URL. Here:

- a PAC script (a file or a URL) is evaluated by the maintained ``pypac`` library, on
  the ``dukpy`` JavaScript engine, for each retrieval URL; the first usable entry of its
  answer (``PROXY host:port`` or ``DIRECT``) is taken, as WinHTTP takes it; ``SOCKS``
  entries are skipped (WinHTTP does not use them). A script's own DNS helpers
  (``dnsResolve``, ``isInNet``) ask the system resolver, as on Windows;
- WPAD discovery is made over DNS only (DHCP option 252 is out of reach here): the name
  ``wpad.<domain>`` for the domain and each parent (devolution, down to two labels),
  then ``GET http://wpad.<domain>/wpad.dat``. Each lookup and download is timed: the
  discovery is a wait of its own before the first retrieval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from rdptrust.errors import UsageError
from rdptrust.model.retrieval import FetchOutcome, HttpResult
from rdptrust.net.http import ProxyRoute, fetch, retrieval_client
from rdptrust.net.resolve import AsyncLookup, resolve

#: The largest PAC script read (rdptrust's bound; WinHTTP documents none).
MAX_PAC_BYTES = 1024 * 1024


class PacError(UsageError):
    """A PAC script that cannot be read or evaluated (a usage error: exit 64)."""


def first_proxy(value: str) -> str | None:
    """The proxy URL of a ``FindProxyForURL`` answer (``"PROXY a:3128; DIRECT"``): the
    first ``PROXY``/``HTTP`` entry as ``http://host:port``, None for ``DIRECT`` (or
    nothing usable)."""
    for entry in value.split(";"):
        words = entry.split()
        if not words:
            continue
        kind = words[0].upper()
        if kind == "DIRECT":
            return None
        if kind in ("PROXY", "HTTP") and len(words) > 1:
            return f"http://{words[1]}"
    return None


class PacScript:
    """A PAC script, evaluated per URL (:func:`first_proxy` of its answer)."""

    def __init__(self, text: str, source: str) -> None:
        from pypac.parser import MalformedPacError, PACFile, PyimportError

        self.source = source
        try:
            self._pac = PACFile(text)
        except (MalformedPacError, PyimportError) as exc:
            raise PacError(f"{source}: not a PAC script ({exc})") from exc
        except Exception as exc:  # the JS engine's own errors
            raise PacError(f"{source}: the PAC script fails ({exc})") from exc
        self._seen: dict[str, str | None] = {}

    def proxy_for(self, url: str) -> str | None:
        """The proxy of *url* (None: direct). A script error means direct, as in WinHTTP."""
        if url in self._seen:
            return self._seen[url]
        host = urlsplit(url).hostname or ""
        try:
            answer = str(self._pac.find_proxy_for_url(url, host))
        except Exception:  # the script's error: WinHTTP goes direct
            answer = "DIRECT"
        self._seen[url] = chosen = first_proxy(answer)
        return chosen

    def route(self) -> ProxyRoute:
        """This script as the retrieval client's proxy route."""
        return self.proxy_for


def read_pac_file(path: Path) -> PacScript:
    """The PAC script in the file *path*; PacError when it cannot be read or evaluated."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_PAC_BYTES + 1)
    except OSError as exc:
        raise PacError(f"{path}: cannot read the PAC file ({exc.strerror or exc})") from exc
    if len(data) > MAX_PAC_BYTES:
        raise PacError(f"{path}: larger than {MAX_PAC_BYTES} bytes: not a PAC file")
    return PacScript(data.decode("utf-8", errors="replace"), str(path))


def _script(result: HttpResult, source: str) -> tuple[PacScript | None, HttpResult]:
    """The script a download brought, or the download marked unusable."""
    if result.outcome != FetchOutcome.OK:
        return None, result
    try:
        return PacScript((result.body or b"").decode("utf-8", errors="replace"), source), result
    except PacError as exc:
        bad = HttpResult(
            result.url, FetchOutcome.INVALID, result.status, result.elapsed_ms, None, str(exc)
        )
        return None, bad


async def download_pac(
    url: str, *, timeout: float, lookup: AsyncLookup = resolve
) -> tuple[PacScript | None, HttpResult]:
    """The PAC script at *url* (None when it cannot be had: WinHTTP then goes direct) and
    its timed download."""
    async with retrieval_client(timeout, lookup=lookup, max_connections=2) as client:
        result = await fetch(url, timeout=timeout, client=client, max_body=MAX_PAC_BYTES)
    return _script(result, url)


def wpad_names(domain: str) -> tuple[str, ...]:
    """The WPAD names tried for *domain*, longest first: ``wpad.a.b.example``,
    ``wpad.b.example``, ``wpad.example`` ... down to two labels of *domain* (DNS
    devolution; a single-label domain gives ``wpad.<domain>`` alone)."""
    labels = [p for p in domain.strip(".").lower().split(".") if p]
    if not labels:
        return ()
    stop = max(len(labels) - 2, 0)
    return tuple("wpad." + ".".join(labels[i:]) for i in range(stop + 1))


@dataclass(frozen=True)
class WpadDiscovery:
    """What WPAD discovery found: the script (None: none found, so direct) and each
    download tried, in order (a name that does not resolve is a ``dns_error``)."""

    script: PacScript | None
    made: tuple[HttpResult, ...]


async def discover_wpad(
    domain: str, *, timeout: float, lookup: AsyncLookup = resolve
) -> WpadDiscovery:
    """WPAD over DNS for *domain* (see the module docstring), each name in turn until one
    serves a PAC script."""
    made: list[HttpResult] = []
    async with retrieval_client(timeout, lookup=lookup, max_connections=2) as client:
        for name in wpad_names(domain):
            url = f"http://{name}/wpad.dat"
            result = await fetch(url, timeout=timeout, client=client, max_body=MAX_PAC_BYTES)
            script, result = _script(result, url)
            made.append(result)
            if script is not None:
                return WpadDiscovery(script, tuple(made))
    return WpadDiscovery(None, tuple(made))


def discovery_seconds(made: Sequence[HttpResult]) -> float:
    """The seconds a discovery took here, all its steps one after another."""
    return sum(r.elapsed_ms for r in made) / 1000.0
