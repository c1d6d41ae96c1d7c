"""Make, for real and in parallel, every retrieval the Windows client would make for a chain.

The missing issuer over AIA, and OCSP and CRL (and delta CRL) for each certificate
below the root (the certificate trust lists are :mod:`rdptrust.engine.ctl`'s). Each answer is judged
as it arrives (a CRL or OCSP answer is verified against the certificate and its issuer)
and its body released; what is kept is a :class:`~rdptrust.model.retrieval.Fetched` per
URL. Bodies are bounded per URL (:mod:`rdptrust.pki.limits`) and together (one
:class:`~rdptrust.net.http.BodyBudget` per chain), so memory follows the retrievals in
flight, not their number. AIA goes as Windows makes it: HTTP only, URL after URL, until
one works. OCSP goes as GET first, POST when the GET fails. What a limit leaves out is
an :class:`~rdptrust.model.retrieval.Omission`. Which retrievals Windows would count,
and for how long, is :mod:`rdptrust.pki.judge`'s business.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field, replace

import httpx
from cryptography import x509

from rdptrust.engine.cpu import run_cpu
from rdptrust.engine.destinations import DestinationPolicy
from rdptrust.engine.schemes import SchemeFetcher
from rdptrust.model.retrieval import (
    MAX_RETRIEVAL_CONNECTIONS,
    Fetched,
    FetchOutcome,
    HttpResult,
    Omission,
    Purpose,
    RevocationStatus,
)
from rdptrust.net.http import (
    DEFAULT_BUDGET_BYTES,
    USER_AGENT,
    BodyBudget,
    ProxyRoute,
    fetch,
    retrieval_client,
)
from rdptrust.pki import limits as lim
from rdptrust.pki.budget import WorkBudget
from rdptrust.pki.facts import certificate_facts, parse_issuers
from rdptrust.pki.judge import revocation_plan, subject_text
from rdptrust.pki.limits import WINDOWS_LIMITS, RetrievalLimits
from rdptrust.pki.revocation import (
    check_crl,
    check_ocsp,
    delta_crl_urls,
    ocsp_get_url,
    ocsp_request,
)
from rdptrust.pki.trust import ChainPath, TrustAnchors, build_path

__all__ = ["USER_AGENT", "RetrievalPlan", "RetrievalRun", "make_retrievals"]

#: Least time given to revocation retrievals that only an AIA-completed path reveals.
_MIN_SECOND_ROUND_S = 0.25
#: Retrievals of one chain in flight at once. More wait here, before their clock starts,
#: rather than in the HTTP client's pool, whose queue costs time quadratic in its length.
MAX_IN_FLIGHT = MAX_RETRIEVAL_CONNECTIONS
#: A failed OCSP GET is retried as POST (Wine's cryptnet; WINDOWS.md §4) when the server
#: answered but not usefully; a server that cannot be reached is not asked again (assumed).
_POST_AFTER = (FetchOutcome.HTTP_ERROR, FetchOutcome.INVALID)


@dataclass(frozen=True)
class RetrievalPlan:
    """How to fetch for one chain: ``fetch_timeout_s`` per URL, ``now`` to judge answers
    against (None: the current time).

    ``proxy`` is a static HTTP proxy every retrieval goes through (None: direct);
    ``limits`` the retrieval limits; ``budget_bytes`` the body bytes held at once.
    """

    fetch_timeout_s: float
    now: dt.datetime | None
    proxy: str | None = None
    limits: RetrievalLimits = WINDOWS_LIMITS
    budget_bytes: int = DEFAULT_BUDGET_BYTES
    destinations: DestinationPolicy | None = None
    """Where retrievals may connect; None: anywhere (see :mod:`rdptrust.engine.destinations`)."""
    deadline: float | None = None
    """``time.monotonic()`` by which CPU-bound checks stop (None: no deadline)."""
    domain: str | None = None
    """The clients' AD domain: ``ldap:///`` URLs are read from its DCs (None: modelled)."""
    dns_server: str | None = None
    """The DNS server asked for the domain's DCs (None: the system resolver)."""
    route: ProxyRoute | None = None
    """The proxy of each URL, as a PAC script picks it (None: ``proxy`` or direct)."""
    user_agent: str = USER_AGENT
    """The modelled client's CryptoAPI User-Agent (``Microsoft-CryptoAPI/6.1`` on Windows 7)."""


@dataclass(frozen=True)
class RetrievalRun:
    """The retrievals made, the path as completed by any issuer fetched over AIA, and
    what the limits left out (``omitted``)."""

    fetched: tuple[Fetched, ...]
    path: ChainPath
    omitted: tuple[Omission, ...] = field(default=())


def _released(fetched: Fetched) -> Fetched:
    """The same retrieval without its body (kept only until it is judged)."""
    if fetched.result.body is None:
        return fetched
    return replace(fetched, result=replace(fetched.result, body=None))


def _round_timeout(timeout: float, deadline: float | None) -> float:
    """A fetch's time-out after AIA: the whole *timeout*, unless the assessment's
    *deadline* leaves less (never under :data:`_MIN_SECOND_ROUND_S`)."""
    if deadline is None:
        return timeout
    return min(timeout, max(deadline - time.monotonic(), _MIN_SECOND_ROUND_S))


def _shortened(fetched: Fetched, seconds: float, full: float) -> Fetched:
    """Say so when a time-out came from a budget the assessment's deadline shortened."""
    if fetched.result.outcome != FetchOutcome.TIMEOUT or seconds >= full:
        return fetched
    return replace(
        fetched,
        detail=(
            f"no answer in {seconds:.1f} s, what the assessment's deadline left of the"
            f" {full:g} s time-out after the issuer certificates came over AIA"
        ),
    )


@dataclass(frozen=True)
class _Subject:
    """One certificate whose revocation is checked, and its place in the path."""

    cert: x509.Certificate
    issuer: x509.Certificate
    index: int
    text: str


def _judged(
    purpose: Purpose,
    url: str,
    result: HttpResult,
    who: _Subject,
    now: dt.datetime | None,
    *,
    delta: bool = False,
    note: str | None = None,
    deadline: float | None = None,
) -> Fetched:
    def made(r: HttpResult, status: RevocationStatus | None, detail: str | None) -> Fetched:
        if note is not None:
            detail = f"{note}: {detail}" if detail else note
        return Fetched(purpose, url, r, who.index, status, detail, who.text, delta)

    if result.outcome != FetchOutcome.OK or result.body is None:
        return made(result, None, result.error)
    if purpose == Purpose.OCSP:
        check = check_ocsp(result.body, who.cert, who.issuer, now=now, budget=WorkBudget(deadline))
    else:
        check = check_crl(result.body, who.cert, who.issuer, now=now, delta=delta)
    if check.status == RevocationStatus.INVALID:
        invalid = HttpResult(
            result.url, FetchOutcome.INVALID, result.status, result.elapsed_ms, None, check.detail
        )
        return made(invalid, check.status, check.detail)
    return _released(made(result, check.status, check.detail))


class _Fetcher:
    """The client, body budget and limits one chain's retrievals share."""

    def __init__(self, client: httpx.AsyncClient, plan: RetrievalPlan) -> None:
        self.client = client
        self.limits = plan.limits
        self.budget = BodyBudget(plan.budget_bytes)
        self.now = plan.now
        self.deadline = plan.deadline
        self.omitted: list[Omission] = []
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        admit = plan.destinations.refusal if plan.destinations is not None else None
        self.schemes = SchemeFetcher(domain=plan.domain, nameserver=plan.dns_server, admit=admit)

    async def get(self, purpose: Purpose, url: str, timeout: float, **kw: object) -> HttpResult:
        async with self._slots:
            if self.schemes.handles(url):  # ldap and file (rdptrust.engine.schemes)
                limit = lim.body_limit(purpose, self.limits)
                return await self.schemes.fetch(purpose, url, timeout, limit)
            return await fetch(
                url,
                timeout=timeout,
                client=self.client,
                budget=self.budget,
                max_body=lim.body_limit(purpose, self.limits),
                **kw,  # type: ignore[arg-type]
            )

    async def ocsp(self, who: _Subject, url: str, timeout: float) -> list[Fetched]:
        try:
            request = ocsp_request(who.cert, who.issuer)
        except (ValueError, TypeError) as exc:
            result = HttpResult(url, FetchOutcome.INVALID, None, 0.0, None, str(exc))
            return [Fetched(Purpose.OCSP, url, result, who.index, None, str(exc), who.text)]
        got = await self.get(Purpose.OCSP, ocsp_get_url(url, request), timeout)
        # CPU-bound checks in a worker thread (rdptrust.engine.cpu), stopped at the deadline
        first = await run_cpu(
            _judged,
            Purpose.OCSP,
            url,
            replace(got, url=url),
            who,
            self.now,
            note="GET",
            deadline=self.deadline,
        )
        if first.result.outcome not in _POST_AFTER:
            return [first]
        posted = await self.get(
            Purpose.OCSP,
            url,
            timeout,
            method="POST",
            content=request,
            content_type="application/ocsp-request",
        )
        second = await run_cpu(
            _judged,
            Purpose.OCSP,
            url,
            posted,
            who,
            self.now,
            note="POST after GET",
            deadline=self.deadline,
        )
        return [first, second]

    async def crl(self, who: _Subject, url: str, timeout: float, delta: bool) -> list[Fetched]:
        result = await self.get(Purpose.CRL, url, timeout)
        note = "delta CRL (Freshest CRL)" if delta else None
        judged = await run_cpu(
            _judged, Purpose.CRL, url, result, who, self.now, delta=delta, note=note
        )
        return [judged]

    async def revocation(self, who: _Subject, timeout: float) -> list[Fetched]:
        facts = certificate_facts(who.cert)
        ocsp, ocsp_out = lim.revocation_urls(Purpose.OCSP, facts.ocsp_urls, who.text, self.limits)
        crl, crl_out = lim.revocation_urls(Purpose.CRL, facts.crl_urls, who.text, self.limits)
        delta, delta_out = lim.revocation_urls(
            Purpose.CRL, delta_crl_urls(who.cert), who.text, self.limits
        )
        self.omitted.extend((*ocsp_out, *crl_out, *delta_out))
        jobs = [
            *(self.ocsp(who, u, timeout) for u in ocsp),
            *(self.crl(who, u, timeout, False) for u in crl),
            *(self.crl(who, u, timeout, True) for u in delta),
        ]
        return [f for batch in await asyncio.gather(*jobs) for f in batch]

    def subjects(self, path: ChainPath) -> list[_Subject]:
        plan = revocation_plan(path)
        count, over = lim.revocation_certificates(len(plan), self.limits)
        if over is not None:
            self.omitted.append(over)
        return [_Subject(c, i, n, subject_text(c)) for n, c, i in plan[:count]]

    async def aia(
        self, path: ChainPath, timeout: float, *, made_before: int = 0
    ) -> tuple[list[Fetched], list[x509.Certificate]]:
        """Issuer over AIA as Windows fetches it: HTTP URLs in order until one works.
        *made_before* AIA retrievals of this chain were made already (for the issuers
        below): together they stay within ``MaxAIAUrlRetrievalCountPerChain``."""
        last = subject_text(path.certificates[-1]) if path.certificates else None
        urls, omitted = lim.aia_urls(path.missing_issuer_urls, last, self.limits)
        self.omitted.extend(omitted)
        made: list[Fetched] = []
        for n, url in enumerate(urls):
            if not lim.aia_attempts_left(made_before + n, self.limits):
                over = lim.aia_over_chain_limit(urls[n:], self.limits)
                if over is not None:
                    self.omitted.append(over)
                break
            r = await self.get(Purpose.AIA, url, timeout)
            found = parse_issuers(r.body or b"") if r.outcome == FetchOutcome.OK else []
            if r.outcome == FetchOutcome.OK and not found:
                r = HttpResult(
                    url, FetchOutcome.INVALID, r.status, r.elapsed_ms, None, "not a certificate"
                )
            made.append(_released(Fetched(Purpose.AIA, url, r, detail=r.error, certificate=last)))
            if found:
                return made, found
        return made, []


async def make_retrievals(
    served: list[x509.Certificate],
    path: ChainPath,
    anchors: TrustAnchors,
    plan: RetrievalPlan,
    *,
    pinned: bool,
) -> RetrievalRun:
    """Fetch what the client would fetch for *path* (see the module docstring).

    With *pinned* (Method 1 deployed) AIA is not fetched for the pinned leaf; its
    revocation is, as for a Root store anchor.
    """
    fetched: list[Fetched] = []
    timeout = plan.fetch_timeout_s
    admit = plan.destinations.refusal if plan.destinations is not None else None
    async with retrieval_client(
        timeout,
        proxy=plan.proxy,
        max_connections=MAX_IN_FLIGHT,
        admit=admit,
        route=plan.route,
        user_agent=plan.user_agent,
    ) as client:
        run = _Fetcher(client, plan)

        issuers: list[x509.Certificate] = []

        async def aia() -> list[Fetched]:
            made, found = await run.aia(path, timeout)
            issuers.extend(found)
            return made

        jobs: list[Awaitable[list[Fetched]]] = []
        if not pinned and path.missing_issuer_urls:
            jobs.append(aia())
        checked: set[bytes] = set()
        # a pinned chain is judged as a Root store anchor: revocation is checked too
        for who in run.subjects(path):
            checked.add(who.cert.tbs_certificate_bytes)
            jobs.append(run.revocation(who, timeout))
        for batch in await asyncio.gather(*jobs):
            fetched.extend(batch)

        if issuers:
            path = await run_cpu(
                build_path, served, anchors, issuers, budget=WorkBudget(plan.deadline)
            )
            # An issuer found over AIA may lack its own issuer: Windows goes on up the
            # chain, within MaxAIAUrlRetrievalCountPerChain (3) AIA retrievals in all.
            # (A path that building cut short at a limit is judged as it is: no more AIA.)
            made = sum(1 for f in fetched if f.purpose == Purpose.AIA)
            while (
                path.missing_issuer_urls
                and path.limited is None
                and lim.aia_attempts_left(made, run.limits)
            ):
                round_fetched, found = await run.aia(
                    path, _round_timeout(timeout, plan.deadline), made_before=made
                )
                fetched.extend(round_fetched)
                made += len(round_fetched)
                known = {c.tbs_certificate_bytes for c in issuers}
                new = [c for c in found if c.tbs_certificate_bytes not in known]
                if not new:
                    break
                issuers.extend(new)
                path = await run_cpu(
                    build_path, served, anchors, issuers, budget=WorkBudget(plan.deadline)
                )
            if path.missing_issuer_urls and not lim.aia_attempts_left(made, run.limits):
                over = lim.aia_over_chain_limit(path.missing_issuer_urls, run.limits)
                if over is not None:
                    run.omitted.append(over)
            # Each URL of the completed path gets its own time-out, as on Windows: a slow
            # AIA answer must not make a CRL that answers look dead. The assessment's
            # deadline (rdptrust.engine.options: AIA URL after URL, then this round)
            # bounds it.
            short = _round_timeout(timeout, plan.deadline)
            more = [
                run.revocation(who, short)
                for who in run.subjects(path)
                if who.cert.tbs_certificate_bytes not in checked
            ]
            for batch in await asyncio.gather(*more):
                fetched.extend(_shortened(f, short, timeout) for f in batch)
    return RetrievalRun(tuple(fetched), path, tuple(dict.fromkeys(run.omitted)))
