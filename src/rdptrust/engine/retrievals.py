"""Make, for real and in parallel, every retrieval the Windows client would make for a chain.

The root list (when the path's root is not trusted), the missing issuer over AIA, and
OCSP and CRL for each certificate below the root. Each answer is judged as it arrives
(a CRL or OCSP answer is verified against the certificate and its issuer) and its body
released; what is kept is a :class:`~rdptrust.model.retrieval.Fetched` per URL. Which of
them Windows would count, and for how long, is :mod:`rdptrust.pki.judge`'s business.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable
from dataclasses import dataclass, replace

import httpx
from cryptography import x509

from rdptrust.engine.cpu import run_cpu
from rdptrust.engine.destinations import DestinationPolicy
from rdptrust.model.retrieval import Fetched, FetchOutcome, HttpResult, Purpose, RevocationStatus
from rdptrust.net.http import destination_guard, fetch
from rdptrust.pki.budget import WorkBudget
from rdptrust.pki.facts import certificate_facts, parse_issuers
from rdptrust.pki.judge import revocation_plan, subject_text
from rdptrust.pki.revocation import check_crl, check_ocsp, ocsp_request
from rdptrust.pki.trust import ChainPath, TrustAnchors, build_path

#: Least time given to revocation retrievals that only an AIA-completed path reveals.
_MIN_SECOND_ROUND_S = 0.25
_CAB_SIGNATURE = b"MSCF"
#: What Windows' CryptoAPI sends as User-Agent (CAPI2 logs show Microsoft-CryptoAPI/<os>).
USER_AGENT = "Microsoft-CryptoAPI/10.0"
_SCHEMES = ("http://", "https://")


@dataclass(frozen=True)
class RetrievalPlan:
    """What to fetch for one chain: the root list or not, and from where."""

    root_list_url: str | None
    fetch_timeout_s: float
    now: dt.datetime | None
    destinations: DestinationPolicy | None = None
    """Where retrievals may connect; None: anywhere (see :mod:`rdptrust.engine.destinations`)."""
    deadline: float | None = None
    """``time.monotonic()`` by which CPU-bound checks stop (None: no deadline)."""


@dataclass(frozen=True)
class RetrievalRun:
    """The retrievals made and the path as completed by any issuer fetched over AIA."""

    fetched: tuple[Fetched, ...]
    path: ChainPath


def _released(fetched: Fetched) -> Fetched:
    """The same retrieval without its body (kept only until it is judged)."""
    if fetched.result.body is None:
        return fetched
    return replace(fetched, result=replace(fetched.result, body=None))


def _shortened(fetched: Fetched, seconds: float, full: float) -> Fetched:
    """Say so when a time-out came from the shortened budget of the second round."""
    if fetched.result.outcome != FetchOutcome.TIMEOUT or seconds >= full:
        return fetched
    return replace(
        fetched,
        detail=(
            f"no answer in {seconds:.1f} s, what was left of the {full:g} s time-out after "
            "the issuer certificate came over AIA"
        ),
    )


def _revocation_urls(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    facts = certificate_facts(cert)
    ocsp = [u for u in facts.ocsp_urls if u.lower().startswith(_SCHEMES)]
    crl = [u for u in facts.crl_urls if u.lower().startswith(_SCHEMES)]
    return ocsp, crl


def _judged(
    purpose: Purpose,
    url: str,
    result: HttpResult,
    cert: x509.Certificate,
    issuer: x509.Certificate,
    index: int,
    subject: str,
    now: dt.datetime | None,
    deadline: float | None = None,
) -> Fetched:
    if result.outcome != FetchOutcome.OK or result.body is None:
        return Fetched(purpose, url, result, index, None, result.error, subject)
    if purpose == Purpose.OCSP:
        check = check_ocsp(result.body, cert, issuer, now=now, budget=WorkBudget(deadline))
    else:
        check = check_crl(result.body, cert, issuer, now=now)
    if check.status == RevocationStatus.INVALID:
        invalid = HttpResult(
            url, FetchOutcome.INVALID, result.status, result.elapsed_ms, None, check.detail
        )
        return Fetched(purpose, url, invalid, index, check.status, check.detail, subject)
    return _released(Fetched(purpose, url, result, index, check.status, check.detail, subject))


async def _revocation(
    client: httpx.AsyncClient,
    cert: x509.Certificate,
    issuer: x509.Certificate,
    index: int,
    timeout: float,
    now: dt.datetime | None,
    deadline: float | None = None,
) -> list[Fetched]:
    ocsp_urls, crl_urls = _revocation_urls(cert)
    subject = subject_text(cert)

    async def one_ocsp(url: str) -> Fetched:
        try:
            request = ocsp_request(cert, issuer)
        except (ValueError, TypeError) as exc:
            result = HttpResult(url, FetchOutcome.INVALID, None, 0.0, None, str(exc))
            return Fetched(Purpose.OCSP, url, result, index, None, str(exc), subject)
        result = await fetch(
            url,
            timeout=timeout,
            method="POST",
            content=request,
            content_type="application/ocsp-request",
            client=client,
        )
        # CPU-bound check in a worker thread (rdptrust.engine.cpu)
        return await run_cpu(
            _judged, Purpose.OCSP, url, result, cert, issuer, index, subject, now, deadline
        )

    async def one_crl(url: str) -> Fetched:
        result = await fetch(url, timeout=timeout, client=client)
        return await run_cpu(
            _judged, Purpose.CRL, url, result, cert, issuer, index, subject, now, deadline
        )

    return list(
        await asyncio.gather(*(one_ocsp(u) for u in ocsp_urls), *(one_crl(u) for u in crl_urls))
    )


async def make_retrievals(
    served: list[x509.Certificate],
    path: ChainPath,
    anchors: TrustAnchors,
    plan: RetrievalPlan,
    *,
    pinned: bool,
) -> RetrievalRun:
    """Fetch what the client would fetch for *path* (see the module docstring).

    With *pinned* (Method 1 deployed) neither AIA nor revocation is fetched for the
    pinned leaf; ``plan.root_list_url`` None skips the root list.
    """
    fetched: list[Fetched] = []
    timeout = plan.fetch_timeout_s
    now = plan.now
    async with httpx.AsyncClient(
        trust_env=False,
        follow_redirects=True,
        max_redirects=3,
        timeout=httpx.Timeout(timeout),
        limits=httpx.Limits(max_connections=64),
        headers={"User-Agent": USER_AGENT},
        # destination policy hook: checked before each request and each redirect
        event_hooks=(
            {"request": [destination_guard(plan.destinations.refusal)]}
            if plan.destinations is not None
            else None
        ),
    ) as client:

        async def root_list(url: str) -> list[Fetched]:
            r = await fetch(url, timeout=timeout, client=client)
            if r.outcome == FetchOutcome.OK and not (r.body or b"").startswith(_CAB_SIGNATURE):
                r = HttpResult(
                    r.url, FetchOutcome.INVALID, r.status, r.elapsed_ms, None, "not a cabinet file"
                )
            return [_released(Fetched(Purpose.ROOT_LIST, r.url, r, detail=r.error))]

        issuers: list[x509.Certificate] = []

        async def aia(url: str) -> list[Fetched]:
            r = await fetch(url, timeout=timeout, client=client)
            found = parse_issuers(r.body or b"") if r.outcome == FetchOutcome.OK else []
            if r.outcome == FetchOutcome.OK and not found:
                r = HttpResult(
                    url, FetchOutcome.INVALID, r.status, r.elapsed_ms, None, "not a certificate"
                )
            issuers.extend(found)
            last = subject_text(path.certificates[-1]) if path.certificates else None
            return [_released(Fetched(Purpose.AIA, url, r, detail=r.error, certificate=last))]

        jobs: list[Awaitable[list[Fetched]]] = []
        if plan.root_list_url is not None:
            jobs.append(root_list(plan.root_list_url))
        if not pinned:
            jobs.extend(aia(u) for u in path.missing_issuer_urls if u.lower().startswith(_SCHEMES))
        checked: set[bytes] = set()
        start = time.monotonic()
        if not pinned:
            for index, cert, issuer in revocation_plan(path):
                checked.add(cert.tbs_certificate_bytes)
                jobs.append(_revocation(client, cert, issuer, index, timeout, now, plan.deadline))
        for batch in await asyncio.gather(*jobs):
            fetched.extend(batch)

        if issuers:
            path = await run_cpu(
                build_path, served, anchors, issuers, budget=WorkBudget(plan.deadline)
            )
            # The second round gets what is left of one URL time-out, so the wall time
            # stays within one time-out however the chain was completed.
            left = max(timeout - (time.monotonic() - start), _MIN_SECOND_ROUND_S)
            short = min(timeout, left)
            more = [
                _revocation(client, cert, issuer, index, short, now, plan.deadline)
                for index, cert, issuer in revocation_plan(path)
                if cert.tbs_certificate_bytes not in checked
            ]
            for batch in await asyncio.gather(*more):
                fetched.extend(_shortened(f, short, timeout) for f in batch)
    return RetrievalRun(tuple(fetched), path)
