"""Retrievals over ``ldap`` and ``file`` URLs, as one chain's retrievals make them.

What each scheme does is :mod:`rdptrust.pki.schemes`' (WINDOWS.md §4): an
``ldap://host/`` URL is read (:func:`rdptrust.net.ldap.ldap_read`: TCP connect and an
anonymous search, never a bind); an ``ldap:///`` URL with no host is read from the
domain's DCs, found through ``_ldap._tcp.dc._msdcs.DOMAIN`` (:mod:`rdptrust.net.srv`)
and tried in order within the one URL time-out, when the domain is given; without it,
and for every ``file`` URL, nothing is fetched and the result is ``skipped`` with the
reason, which the model counts as an assumed wait.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from rdptrust.model.retrieval import FetchOutcome, HttpResult, Purpose
from rdptrust.net.ldap import Admit, ldap_read
from rdptrust.net.srv import SrvTarget, srv_targets
from rdptrust.pki.schemes import (
    dc_srv_name,
    file_url_note,
    ldap_locate_note,
    parse_ldap_url,
    scheme,
)

#: Outcomes after which the next DC is tried: the client's locator moves on.
_NEXT_DC = (FetchOutcome.REFUSED, FetchOutcome.TIMEOUT, FetchOutcome.DNS_ERROR)
#: The fewest seconds one more DC is given.
_MIN_DC_S = 0.05


class SchemeFetcher:
    """Makes one chain's ``ldap`` and ``file`` retrievals (the domain's DCs looked up
    once). *domain* is the clients' AD domain (None: ``ldap:///`` is not measured),
    *nameserver* the DNS server to ask (None: the system resolver)."""

    def __init__(
        self, *, domain: str | None, nameserver: str | None, admit: Admit | None = None
    ) -> None:
        self.domain = domain
        self.nameserver = nameserver
        self.admit = admit
        self._dcs: tuple[tuple[SrvTarget, ...], str | None] | None = None
        self._lock = asyncio.Lock()

    @staticmethod
    def handles(url: str) -> bool:
        return scheme(url) in ("ldap", "file")

    async def fetch(self, purpose: Purpose, url: str, timeout: float, max_bytes: int) -> HttpResult:
        """The retrieval of *url* for *purpose* (see the module docstring)."""
        if scheme(url) == "file":
            return HttpResult(url, FetchOutcome.SKIPPED, None, 0.0, None, file_url_note(url))
        try:
            parsed = parse_ldap_url(url, purpose)
        except ValueError as exc:
            return HttpResult(url, FetchOutcome.INVALID, None, 0.0, None, str(exc))
        if parsed.host is not None:
            return await ldap_read(
                url,
                parsed.host,
                parsed.port,
                parsed.dn,
                parsed.attributes,
                timeout=timeout,
                max_bytes=max_bytes,
                equality=parsed.equality,
                admit=self.admit,
            )
        if self.domain is None:
            return HttpResult(url, FetchOutcome.SKIPPED, None, 0.0, None, ldap_locate_note())
        started = time.monotonic()
        dcs, why = await self._domain_controllers(timeout)
        if not dcs:
            elapsed = round((time.monotonic() - started) * 1000.0, 3)
            return HttpResult(url, FetchOutcome.DNS_ERROR, None, elapsed, None, why)
        result: HttpResult | None = None
        tried: list[str] = []
        for dc in dcs:
            left = timeout - (time.monotonic() - started)
            if left < _MIN_DC_S:
                break
            result = await ldap_read(
                url,
                dc.host,
                dc.port,
                parsed.dn,
                parsed.attributes,
                timeout=left,
                max_bytes=max_bytes,
                equality=parsed.equality,
                admit=self.admit,
            )
            tried.append(f"{dc.host}:{dc.port} {result.outcome.value}")
            if result.outcome not in _NEXT_DC:
                break
        elapsed = round((time.monotonic() - started) * 1000.0, 3)
        if result is None:
            return HttpResult(url, FetchOutcome.TIMEOUT, None, elapsed, None, "no answer in time")
        where = f"DCs of {self.domain} from {dc_srv_name(self.domain)}: {', '.join(tried)}"
        error = f"{result.error} ({where})" if result.error else None
        return replace(result, elapsed_ms=elapsed, error=error)

    async def _domain_controllers(self, timeout: float) -> tuple[tuple[SrvTarget, ...], str | None]:
        async with self._lock:
            if self._dcs is None:
                assert self.domain is not None
                try:
                    self._dcs = await srv_targets(
                        dc_srv_name(self.domain), timeout=timeout, nameserver=self.nameserver
                    )
                except ValueError as exc:
                    self._dcs = ((), str(exc))
            return self._dcs
