"""Diagnose "Securing remote connection": judge the chain like Windows, time every
retrieval the client would make, predict the stall, name the causes and the fixes.

Verdict: the most severe problem; a predicted stall of ``STALL_WARNING_S`` or more is a
warning (``predicted-stall``), of ``STALL_CRITICAL_S`` or more critical. ``unknown`` when
the host could not be probed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import shlex
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7

from rdptrust.errors import PkiError
from rdptrust.model.certificate import CertificateFacts
from rdptrust.model.pin import PinCheck, PinStatus
from rdptrust.model.probe import ProbeResult
from rdptrust.model.problems import Problem, Severity, verdict
from rdptrust.model.retrieval import FetchOutcome, HttpResult, Purpose, RevocationStatus
from rdptrust.model.target import Target
from rdptrust.net.http import fetch
from rdptrust.net.probe import probe_host
from rdptrust.pki.facts import (
    certificate_facts,
    is_self_signed,
    load_certificate,
    load_certificates,
    name_text,
)
from rdptrust.pki.findings import probe_findings
from rdptrust.pki.pinning import KnownHosts, check_pin
from rdptrust.pki.problems import judge_chain
from rdptrust.pki.revocation import check_crl, check_ocsp, ocsp_request
from rdptrust.pki.trust import ChainPath, TrustAnchors, build_path, load_trust_anchors
from rdptrust.pki.windows import (
    DEFAULT_ROOT_LIST_URL,
    Cause,
    RevocationAttempt,
    Wait,
    WindowsSettings,
    counted_revocation,
    predict,
    retrieval_wait,
    wants_revocation,
    wants_root_list,
)

STALL_WARNING_S = 2.0
STALL_CRITICAL_S = 10.0
#: Least time given to revocation retrievals that only an AIA-completed path reveals.
_MIN_SECOND_ROUND_S = 0.25
_CAB_SIGNATURE = b"MSCF"

Prober = Callable[[Target], Awaitable[ProbeResult]]


@dataclass(frozen=True)
class DiagnoseOptions:
    """Settings of one diagnosis. ``known_hosts`` None means rdptrust's default store.

    ``enumerate`` also asks which security protocols, TLS versions and Standard RDP
    Security methods the host accepts (for the security findings). ``anchors``, when
    given, are used instead of loading ``system_trust``/``ca_files``/``ca_dirs`` again
    (a fleet scan loads them once).
    """

    probe_timeout: float = 10.0
    url_timeout: float = 15.0
    windows: WindowsSettings = field(default_factory=WindowsSettings)
    root_list_url: str = DEFAULT_ROOT_LIST_URL
    system_trust: bool = True
    ca_files: tuple[Path, ...] = ()
    ca_dirs: tuple[Path, ...] = ()
    known_hosts: Path | None = None
    warn_days: int = 30
    now: dt.datetime | None = None
    enumerate: bool = True
    anchors: TrustAnchors | None = None


@dataclass(frozen=True)
class Retrieval:
    """One URL the client would fetch, fetched for real.

    ``certificate`` is the subject of the certificate it concerns (for AIA: whose issuer
    is fetched). ``revocation`` is what a CRL/OCSP answer said (None otherwise).
    ``counted`` says whether Windows would make this retrieval for this chain;
    ``wait_s`` is its part of the stall (0 when not counted) and ``modelled`` whether
    that figure is Windows' time-out rather than what we observed.
    """

    purpose: Purpose
    url: str
    outcome: FetchOutcome
    elapsed_ms: float
    status: int | None
    detail: str | None
    certificate: str | None
    revocation: RevocationStatus | None
    counted: bool
    wait_s: float
    modelled: bool


@dataclass(frozen=True)
class FixCommand:
    """Where to run it (rdptrust, Windows client, Windows host, group policy) and what."""

    where: str
    command: str


@dataclass(frozen=True)
class Fix:
    """One way out: what it removes (problem codes or retrieval purposes) and how."""

    id: str
    title: str
    removes: tuple[str, ...]
    commands: tuple[FixCommand, ...]
    note: str = ""


@dataclass(frozen=True)
class Diagnosis:
    """The whole answer for one host. ``facts`` are of the served chain (leaf first);
    ``path`` the subjects of the certification path built; ``pin`` is None when no
    certificate was seen."""

    target: Target
    probe: ProbeResult
    facts: tuple[CertificateFacts, ...]
    path: tuple[str, ...]
    trusted: bool
    anchor: str | None
    pin: PinCheck | None
    retrievals: tuple[Retrieval, ...]
    predicted_stall_s: float
    causes: tuple[Cause, ...]
    revocation_capped: bool
    problems: tuple[Problem, ...]
    verdict: str
    fixes: tuple[Fix, ...]
    findings: tuple[Problem, ...]
    settings: WindowsSettings
    url_timeout_s: float
    elapsed_ms: float


@dataclass
class _Fetched:
    purpose: Purpose
    url: str
    result: HttpResult
    cert_index: int | None = None
    revocation: RevocationStatus | None = None
    detail: str | None = None
    certificate: str | None = None


def _shortened(fetched: _Fetched, seconds: float, full: float) -> _Fetched:
    """Say so when a time-out came from the shortened budget of the second round."""
    if fetched.result.outcome != FetchOutcome.TIMEOUT or seconds >= full:
        return fetched
    fetched.detail = (
        f"no answer in {seconds:.1f} s, what was left of the {full:g} s time-out after the "
        "issuer certificate came over AIA"
    )
    return fetched


def _subject(cert: x509.Certificate) -> str:
    try:
        return name_text(cert.subject)
    except ValueError:
        return "(undecodable subject)"


def _revocation_urls(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    facts = certificate_facts(cert)
    http = [u for u in facts.ocsp_urls if u.lower().startswith(("http://", "https://"))]
    crl = [u for u in facts.crl_urls if u.lower().startswith(("http://", "https://"))]
    return http, crl


async def _fetch_revocation(
    client: httpx.AsyncClient,
    cert: x509.Certificate,
    issuer: x509.Certificate,
    index: int,
    timeout: float,
    now: dt.datetime | None,
) -> list[_Fetched]:
    ocsp_urls, crl_urls = _revocation_urls(cert)
    subject = _subject(cert)

    async def one_ocsp(url: str) -> _Fetched:
        try:
            request = ocsp_request(cert, issuer)
        except (ValueError, TypeError) as exc:
            result = HttpResult(url, FetchOutcome.INVALID, None, 0.0, None, str(exc))
            return _Fetched(Purpose.OCSP, url, result, index, None, str(exc), subject)
        result = await fetch(
            url,
            timeout=timeout,
            method="POST",
            content=request,
            content_type="application/ocsp-request",
            client=client,
        )
        return _judge(Purpose.OCSP, url, result, cert, issuer, index, subject, now)

    async def one_crl(url: str) -> _Fetched:
        result = await fetch(url, timeout=timeout, client=client)
        return _judge(Purpose.CRL, url, result, cert, issuer, index, subject, now)

    return list(
        await asyncio.gather(*(one_ocsp(u) for u in ocsp_urls), *(one_crl(u) for u in crl_urls))
    )


def _judge(
    purpose: Purpose,
    url: str,
    result: HttpResult,
    cert: x509.Certificate,
    issuer: x509.Certificate,
    index: int,
    subject: str,
    now: dt.datetime | None,
) -> _Fetched:
    if result.outcome != FetchOutcome.OK or result.body is None:
        return _Fetched(purpose, url, result, index, None, result.error, subject)
    check = (check_ocsp if purpose == Purpose.OCSP else check_crl)(
        result.body, cert, issuer, now=now
    )
    if check.status == RevocationStatus.INVALID:
        invalid = HttpResult(
            url, FetchOutcome.INVALID, result.status, result.elapsed_ms, None, check.detail
        )
        return _Fetched(purpose, url, invalid, index, check.status, check.detail, subject)
    return _Fetched(purpose, url, result, index, check.status, check.detail, subject)


def _parse_issuers(body: bytes) -> list[x509.Certificate]:
    try:
        return load_certificates(body)
    except PkiError:
        pass
    try:
        return list(pkcs7.load_der_pkcs7_certificates(body))
    except ValueError:
        return []


def _revocation_plan(path: ChainPath) -> list[tuple[int, x509.Certificate, x509.Certificate]]:
    """(index, certificate, issuer) for each path certificate below the root or anchor."""
    certs = path.certificates
    plan = []
    for index in range(len(certs) - 1):
        if is_self_signed(certs[index]):
            break
        plan.append((index, certs[index], certs[index + 1]))
    return plan


def _count_revocation(fetched: Sequence[_Fetched], settings: WindowsSettings) -> frozenset[int]:
    """Which revocation retrievals Windows makes (see :func:`counted_revocation`)."""
    attempts = [
        RevocationAttempt(
            f.cert_index if f.cert_index is not None else -1,
            f.purpose,
            f.revocation in (RevocationStatus.GOOD, RevocationStatus.REVOKED),
        )
        for f in fetched
    ]
    return counted_revocation(attempts, settings)


def _shell(text: str) -> str:
    """A POSIX shell word (target names come from the user, not from certificates)."""
    return shlex.quote(text)


async def diagnose(
    target: Target,
    options: DiagnoseOptions | None = None,
    *,
    prober: Prober | None = None,
) -> Diagnosis:
    """Diagnose *target*; see the module docstring. Never raises for network trouble."""
    options = options or DiagnoseOptions()
    settings = options.windows
    start = time.monotonic()

    async def default_prober(t: Target) -> ProbeResult:
        return await probe_host(
            t,
            timeout=options.probe_timeout,
            enumerate_protocols=options.enumerate,
            enumerate_tls_versions=options.enumerate,
            standard_security=options.enumerate,
            ntlm=False,
        )

    result = await (prober or default_prober)(target)

    def finish(**kwargs: object) -> Diagnosis:
        base: dict[str, object] = {
            "target": target,
            "probe": result,
            "facts": (),
            "path": (),
            "trusted": False,
            "anchor": None,
            "pin": None,
            "retrievals": (),
            "predicted_stall_s": 0.0,
            "causes": (),
            "revocation_capped": False,
            "problems": (),
            "verdict": "unknown",
            "fixes": (),
            "findings": (),
            "settings": settings,
            "url_timeout_s": options.url_timeout,
        }
        base.update(kwargs)
        base["elapsed_ms"] = round((time.monotonic() - start) * 1000.0, 3)
        return Diagnosis(**base)  # type: ignore[arg-type]

    if result.error is not None:
        return finish()
    if not result.chain:
        problem = Problem(
            "no-certificate",
            Severity.CRITICAL,
            f"{target} did not start TLS, so it presented no certificate: the client cannot"
            " tell who it talks to (Standard RDP Security only?)",
        )
        return finish(problems=(problem,), verdict=Severity.CRITICAL.value)
    try:
        served = [load_certificate(der) for der in result.chain]
    except PkiError as exc:
        problem = Problem("malformed-certificate", Severity.CRITICAL, f"{target}: {exc}")
        return finish(problems=(problem,), verdict=Severity.CRITICAL.value)
    now = options.now
    anchors = options.anchors or load_trust_anchors(
        system=options.system_trust, ca_files=options.ca_files, ca_dirs=options.ca_dirs
    )
    store = KnownHosts.load(options.known_hosts)
    pin = check_pin(store, target, served[0])
    pinned = pin.status == PinStatus.MATCH
    path = build_path(served, anchors)

    fetched: list[_Fetched] = []
    async with httpx.AsyncClient(
        trust_env=False,
        follow_redirects=True,
        max_redirects=3,
        timeout=httpx.Timeout(options.url_timeout),
        limits=httpx.Limits(max_connections=64),
        headers={"User-Agent": "Microsoft-CryptoAPI/10.0"},
    ) as client:
        timeout = options.url_timeout

        async def root_list() -> list[_Fetched]:
            r = await fetch(options.root_list_url, timeout=timeout, client=client)
            if r.outcome == FetchOutcome.OK and not (r.body or b"").startswith(_CAB_SIGNATURE):
                r = HttpResult(
                    r.url,
                    FetchOutcome.INVALID,
                    r.status,
                    r.elapsed_ms,
                    None,
                    "not a cabinet file",
                )
            return [_Fetched(Purpose.ROOT_LIST, r.url, r, detail=r.error)]

        async def aia(url: str) -> list[_Fetched]:
            r = await fetch(url, timeout=timeout, client=client)
            if r.outcome == FetchOutcome.OK and not _parse_issuers(r.body or b""):
                r = HttpResult(
                    url,
                    FetchOutcome.INVALID,
                    r.status,
                    r.elapsed_ms,
                    None,
                    "not a certificate",
                )
            last = _subject(path.certificates[-1]) if path.certificates else None
            return [_Fetched(Purpose.AIA, url, r, detail=r.error, certificate=last)]

        jobs: list[Awaitable[list[_Fetched]]] = []
        if wants_root_list(anchored=path.anchor is not None, pinned=pinned, settings=settings):
            jobs.append(root_list())
        aia_urls = () if pinned else path.missing_issuer_urls
        jobs.extend(aia(url) for url in aia_urls if url.lower().startswith(("http://", "https://")))
        checked: set[bytes] = set()
        fetch_start = time.monotonic()
        if not pinned:
            for index, cert, issuer in _revocation_plan(path):
                checked.add(cert.tbs_certificate_bytes)
                jobs.append(_fetch_revocation(client, cert, issuer, index, timeout, now))
        for batch in await asyncio.gather(*jobs):
            fetched.extend(batch)

        extra = [
            issuer
            for f in fetched
            if f.purpose == Purpose.AIA and f.result.outcome == FetchOutcome.OK
            for issuer in _parse_issuers(f.result.body or b"")
        ]
        if extra:
            path = build_path(served, anchors, extra)
            # The second round gets what is left of one URL time-out, so the wall time
            # stays within one time-out however the chain was completed.
            left = max(options.url_timeout - (time.monotonic() - fetch_start), _MIN_SECOND_ROUND_S)
            short = min(timeout, left)
            more = [
                _fetch_revocation(client, cert, issuer, index, short, now)
                for index, cert, issuer in _revocation_plan(path)
                if cert.tbs_certificate_bytes not in checked
            ]
            for batch in await asyncio.gather(*more):
                fetched.extend(_shortened(f, short, timeout) for f in batch)

    trusted = path.anchor is not None or pinned
    revocation = [f for f in fetched if f.purpose in (Purpose.CRL, Purpose.OCSP)]
    made_revocation = (
        _count_revocation(revocation, settings)
        if wants_revocation(anchored=path.anchor is not None, pinned=pinned)
        else frozenset()
    )
    retrievals: list[Retrieval] = []
    waits: list[Wait] = []
    revocation_ids = {id(f): i for i, f in enumerate(revocation)}
    for f in fetched:
        if f.purpose == Purpose.ROOT_LIST:
            counted = wants_root_list(
                anchored=path.anchor is not None, pinned=pinned, settings=settings
            )
        elif f.purpose == Purpose.AIA:
            counted = True
        else:
            counted = revocation_ids[id(f)] in made_revocation
        seconds, modelled = retrieval_wait(f.result.outcome, f.result.elapsed_ms, settings)
        if counted:
            waits.append(
                Wait(f.purpose, f.url, f.result.outcome, f.result.status, seconds, modelled)
            )
        retrievals.append(
            Retrieval(
                purpose=f.purpose,
                url=f.url,
                outcome=f.result.outcome,
                elapsed_ms=f.result.elapsed_ms,
                status=f.result.status,
                detail=f.detail,
                certificate=f.certificate,
                revocation=f.revocation,
                counted=counted,
                wait_s=round(seconds, 3) if counted else 0.0,
                modelled=modelled and counted,
            )
        )
    prediction = predict(waits, settings)

    problems = list(judge_chain(target, served, path, pin, now=now, warn_days=options.warn_days))
    for f in revocation:
        if f.revocation == RevocationStatus.REVOKED:
            problems.append(
                Problem(
                    "revoked",
                    Severity.CRITICAL,
                    f"{f.certificate} is revoked: {f.detail}; the host needs a new certificate",
                )
            )
    if trusted:
        for index, cert, _issuer in _revocation_plan(path):
            mine = [f for f in revocation if f.cert_index == index]
            if mine and not any(
                f.revocation in (RevocationStatus.GOOD, RevocationStatus.REVOKED) for f in mine
            ):
                problems.append(
                    Problem(
                        "revocation-unavailable",
                        Severity.WARNING,
                        f"no revocation answer for {_subject(cert)}: every CRL and OCSP URL"
                        " failed, so Windows waits for them and then warns",
                    )
                )
    if prediction.seconds >= STALL_WARNING_S:
        severity = Severity.CRITICAL if prediction.seconds >= STALL_CRITICAL_S else Severity.WARNING
        cause = prediction.causes[0].text if prediction.causes else "retrievals"
        problems.append(
            Problem(
                "predicted-stall",
                severity,
                f"Remote Desktop Connection waits about {prediction.seconds:.0f} s on"
                f' "Securing remote connection": {cause}',
            )
        )
    problems.sort(key=lambda p: -p.severity.rank)
    facts = tuple(certificate_facts(c, now=now) for c in served)
    fixes = _fixes(target, facts[0], problems, prediction.causes, path)
    return finish(
        facts=facts,
        path=tuple(_subject(c) for c in path.certificates),
        trusted=trusted,
        anchor=_subject(path.anchor) if path.anchor is not None else None,
        pin=pin,
        retrievals=tuple(retrievals),
        predicted_stall_s=prediction.seconds,
        causes=prediction.causes,
        revocation_capped=prediction.revocation_capped,
        problems=tuple(problems),
        verdict=verdict(problems).value,
        fixes=fixes,
        findings=probe_findings(
            result, now=now, warn_days=options.warn_days, leaf=facts[0] if facts else None
        ),
    )


def _fixes(
    target: Target,
    leaf: CertificateFacts,
    problems: Sequence[Problem],
    causes: Sequence[Cause],
    path: ChainPath,
) -> tuple[Fix, ...]:
    codes = {p.code for p in problems}
    purposes = {c.purpose for c in causes}
    host = _shell(str(target))
    # The file stem 'rdptrust trust --out' uses (rdptrust.fix.method1.bundle_stem).
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", f"{target.host}_{target.port}").strip(".")[:80]
    fixes: list[Fix] = []
    if "pin-changed" in codes:
        fixes.append(
            Fix(
                "verify-and-repin",
                "Check the new certificate on the host, then pin it again",
                ("pin-changed",),
                (
                    FixCommand(
                        "windows host",
                        "Get-ChildItem 'Cert:\\LocalMachine\\Remote Desktop' | Format-List "
                        "Subject,Thumbprint,NotAfter",
                    ),
                    FixCommand("rdptrust", f"rdptrust trust {host} --replace"),
                ),
                f"The thumbprint shown on the host must equal {leaf.sha1}.",
            )
        )
    untrusted = {"self-signed-not-pinned", "untrusted-root"} & codes
    if Purpose.ROOT_LIST in purposes or untrusted:
        removes = tuple(
            sorted(untrusted | ({"root_list"} if Purpose.ROOT_LIST in purposes else set()))
        )
        if leaf.self_signed:
            fixes.append(
                Fix(
                    "method1-trust-host-certificate",
                    "Method 1: trust the host's own certificate on the clients",
                    removes,
                    (
                        FixCommand("rdptrust", f"rdptrust trust {host} --out trust-{_shell(stem)}"),
                        FixCommand(
                            "windows client",
                            f"certutil -addstore -f Root {stem}.cer",
                        ),
                    ),
                    "Windows recreates a self-signed RDP certificate every six months:"
                    " Method 1 must then be repeated; the CA-issued certificate lasts.",
                )
            )
        else:
            root = path.certificates[-1] if path.certificates else None
            name = _subject(root) if root is not None else "the issuing CA"
            fixes.append(
                Fix(
                    "trust-issuing-ca",
                    f"Make the clients trust {name}",
                    removes,
                    (FixCommand("windows client", "certutil -addstore -f Root root-ca.cer"),),
                    "Deploy the CA certificate by Group Policy (Public Key Policies >"
                    " Trusted Root Certification Authorities) for all clients at once.",
                )
            )
        if Purpose.ROOT_LIST in purposes:
            fixes.append(
                Fix(
                    "method2-disable-root-update",
                    "Method 2: turn off Automatic Root Certificates Update on the clients",
                    ("root_list",),
                    (
                        FixCommand(
                            "rdptrust", "rdptrust policy root-autoupdate --disable --out gpo"
                        ),
                        FixCommand(
                            "group policy",
                            "Computer Configuration > Administrative Templates > System >"
                            " Internet Communication Management > Internet Communication"
                            " settings > Turn off Automatic Root Certificates Update: Enabled",
                        ),
                        FixCommand(
                            "windows client",
                            'reg add "HKLM\\SOFTWARE\\Policies\\Microsoft\\SystemCertificates'
                            '\\AuthRoot" /v DisableRootAutoUpdate /t REG_DWORD /d 1 /f',
                        ),
                    ),
                    "Removes the root-list wait only; the certificate prompt stays.",
                )
            )
        if leaf.self_signed:
            fixes.append(
                Fix(
                    "ca-issued-host-certificate",
                    "The lasting fix: give the host a certificate from a CA the clients trust",
                    removes,
                    (
                        FixCommand(
                            "rdptrust", "rdptrust ca init --crl-url http://YOUR-PKI/rdp.crl"
                        ),
                        FixCommand(
                            "rdptrust", f"rdptrust ca issue {_shell(target.host)} --out host-cert"
                        ),
                        FixCommand("windows host", "install-HOST.ps1 (written by ca issue)"),
                    ),
                )
            )
    if Purpose.AIA in purposes or "incomplete-chain" in codes:
        fixes.append(
            Fix(
                "send-full-chain",
                "Make the host send its intermediate certificates (or make the AIA URL reachable)",
                ("aia", "incomplete-chain"),
                (
                    FixCommand(
                        "windows host",
                        "certutil -addstore -f CA intermediate.cer  (then restart the Remote"
                        " Desktop Services service)",
                    ),
                ),
            )
        )
    rev = sorted({c.url for c in causes if c.purpose in (Purpose.CRL, Purpose.OCSP) and c.url})
    if rev:
        fixes.append(
            Fix(
                "reach-revocation-urls",
                "Let the clients reach the revocation URLs, or shorten the waits",
                ("crl", "ocsp"),
                (
                    FixCommand("network", "allow HTTP to " + ", ".join(rev)),
                    FixCommand(
                        "rdptrust",
                        "rdptrust policy retrieval-timeouts --url-timeout-ms 3000"
                        " --revocation-timeout-ms 5000 --out timeouts",
                    ),
                ),
            )
        )
    if {"expired", "not-yet-valid", "expiring-soon", "revoked"} & codes:
        fixes.append(
            Fix(
                "renew-host-certificate",
                "Give the host a new certificate",
                tuple(sorted({"expired", "not-yet-valid", "expiring-soon", "revoked"} & codes)),
                (
                    FixCommand(
                        "rdptrust", f"rdptrust ca issue {_shell(target.host)} --out host-cert"
                    ),
                    FixCommand(
                        "windows host",
                        "for the default self-signed certificate: delete it from"
                        " 'Cert:\\LocalMachine\\Remote Desktop' and restart TermService",
                    ),
                ),
            )
        )
    reissue = {"eku-unsuitable", "weak-signature", "weak-key"} & codes
    if "name-mismatch" in codes and not leaf.self_signed:
        # for a self-signed leaf, pinning (Method 1) settles the name too
        reissue.add("name-mismatch")
    if reissue:
        fixes.append(
            Fix(
                "reissue-properly",
                "Issue a certificate with the right names, EKU, SHA-256 and a 2048-bit key",
                tuple(sorted(reissue)),
                (
                    FixCommand(
                        "rdptrust", f"rdptrust ca issue {_shell(target.host)} --out host-cert"
                    ),
                ),
            )
        )
    return tuple(fixes)
