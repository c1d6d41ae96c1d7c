"""Judge one host from what was seen: the chain, its path, the pin and the retrievals.

Pure: no sockets, no clocks but the *now* given. :func:`assessment` is the only place a
host is judged; :mod:`rdptrust.engine` gathers the inputs (probe, trust sources, pinned
store, retrievals) and calls it.

Verdict: the worst of the chain's problems and the probe's security findings; a
predicted stall of ``STALL_WARNING_S`` or more is a warning (``predicted-stall``), of
``STALL_CRITICAL_S`` or more critical; UNKNOWN when the host could not be probed or the
pinned-host store could not be read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import replace

from cryptography import x509

from rdptrust.errors import PkiError
from rdptrust.model import catalog
from rdptrust.model.assessment import Assessment, Retrieval, Verdict
from rdptrust.model.pin import PinCheck, PinStatus
from rdptrust.model.probe import ProbeResult
from rdptrust.model.problems import Problem, Severity
from rdptrust.model.retrieval import Fetched, FetchOutcome, Omission, Purpose, RevocationStatus
from rdptrust.model.target import Target
from rdptrust.model.windows import NO_PREDICTION, Basis, Cause, StapleUse, WindowsSettings
from rdptrust.pki.facts import as_utc, certificate_facts, is_self_signed
from rdptrust.pki.findings import probe_findings
from rdptrust.pki.limits import omission_problems
from rdptrust.pki.names import name_text
from rdptrust.pki.network import result_wait
from rdptrust.pki.prediction import StallPrediction, Wait, predict
from rdptrust.pki.problems import distrusted, judge_chain
from rdptrust.pki.rules import NOT_MEASURED, rule
from rdptrust.pki.schemes import assumed_rule, modelled_note
from rdptrust.pki.stapling import staple_use
from rdptrust.pki.trust import ChainPath
from rdptrust.pki.windows import (
    CTL_PURPOSES,
    NOTABLE_WAIT_S,
    REVOCATION_PURPOSES,
    RevocationAttempt,
    ctl_syncs,
    is_dead,
    revocation_order,
    settings_for,
    stapled_skips,
    wants_revocation,
)

STALL_WARNING_S = 2.0
STALL_CRITICAL_S = 10.0
DISTRUSTED_ASSUMPTION = (
    "a certificate of this chain is in the client's Disallowed store: its waits are"
    " modelled as for the path anyway (whether the chain engine then skips the"
    " retrievals is not documented)"
)
#: Findings about the certificate that the chain's judgement already makes as problems
#: (``self-signed-not-pinned``, ``expired``, ``expiring-soon``): not raised twice.
CHAIN_JUDGED_FINDINGS = frozenset(
    {catalog.SELF_SIGNED_CERTIFICATE.code, catalog.EXPIRING_CERTIFICATE.code}
)

_NO_STORE = PinCheck(PinStatus.NOT_PINNED, None, False, "the pinned-host store is unreadable")


def subject_text(cert: x509.Certificate) -> str:
    """The subject as RFC 4514 text, or a placeholder when it cannot be decoded."""
    try:
        return name_text(cert.subject)
    except ValueError:
        return "(undecodable subject)"


def revocation_plan(path: ChainPath) -> list[tuple[int, x509.Certificate, x509.Certificate]]:
    """(index, certificate, issuer) for each path certificate below the root or anchor."""
    certs = path.certificates
    plan = []
    for index in range(len(certs) - 1):
        if is_self_signed(certs[index]):
            break
        plan.append((index, certs[index], certs[index + 1]))
    return plan


def _revocation_order(
    fetched: Sequence[Fetched], settings: WindowsSettings, staple: StapleUse | None
) -> tuple[int, ...]:
    used = staple is not None and staple.used
    attempts = [
        RevocationAttempt(
            f.cert_index if f.cert_index is not None else -1,
            f.purpose,
            f.revocation in (RevocationStatus.GOOD, RevocationStatus.REVOKED),
            f.delta,
        )
        for f in fetched
    ]
    order = revocation_order(attempts, settings)
    return tuple(p for p in order if not stapled_skips(attempts[p].cert_index, staple_used=used))


def assessment(
    target: Target,
    probe: ProbeResult,
    *,
    served: Sequence[x509.Certificate] | None,
    path: ChainPath | None,
    pin: PinCheck | None,
    fetched: Sequence[Fetched] | None,
    settings: WindowsSettings,
    fetch_timeout_s: float,
    now: dt.datetime | None,
    warn_days: int,
    elapsed_ms: float,
    store_error: str | None = None,
    unreadable: str | None = None,
    disallowed: frozenset[bytes] = frozenset(),
    omitted: Sequence[Omission] = (),
    direct_path: bool = False,
) -> Assessment:
    """The :class:`Assessment` of *target* from what was seen.

    *direct_path*: no WinHTTP proxy was given (no static proxy, PAC or WPAD), so the
    retrievals went direct and the prediction says that it assumes the clients' do too.

    *served* are the certificates the host sent, read (None when it sent none);
    *unreadable* says why the served leaf could not be read. *path* is the path built
    for them (after any AIA fetch); *pin* the pin check (None with *store_error*).
    *fetched* are the retrievals made, None when no diagnosis ran; *omitted* those the
    retrieval limits left out (each a problem). *disallowed* is the client's Disallowed
    store (DER): a chain holding one of them is not trusted.
    """
    moment = as_utc(now)

    def result(**fields: object) -> Assessment:
        base: dict[str, object] = {
            "target": target,
            "probe": probe,
            "chain": (),
            "path": (),
            "trusted": None,
            "anchor": None,
            "pin": None,
            "problems": (),
            "findings": (),
            "verdict": Verdict.UNKNOWN,
            "diagnosed": False,
            "retrievals": (),
            "predicted_stall_s": None,
            "causes": (),
            "revocation_capped": False,
            "settings": settings,
            "fetch_timeout_s": fetch_timeout_s,
            "now": moment,
            "elapsed_ms": elapsed_ms,
            "store_error": store_error,
        }
        base.update(fields)
        return Assessment(**base)  # type: ignore[arg-type]

    if probe.error is not None:
        return result()

    def unjudged_findings() -> tuple[Problem, ...]:
        # Findings when the chain cannot be judged: probe_findings reads the leaf itself.
        # (A judged chain passes its leaf facts instead, so it is not parsed twice.)
        return probe_findings(probe, now=now, warn_days=warn_days)

    if unreadable is not None:
        findings = unjudged_findings()
        problem = catalog.MALFORMED_CERTIFICATE.problem(
            Severity.CRITICAL,
            f"the certificate {target} sent cannot be read ({unreadable})",
        )
        return result(
            trusted=False,
            problems=(problem,),
            findings=findings,
            verdict=Verdict.of((problem, *findings)),
        )
    if not served:
        findings = unjudged_findings()
        problem = catalog.NO_CERTIFICATE.problem(
            Severity.CRITICAL,
            f"{target} did not start TLS, so it presented no certificate: the client cannot"
            " tell who it talks to (Standard RDP Security only?)",
        )
        return result(
            problems=(problem,),
            findings=findings,
            verdict=Verdict.of((problem, *findings)),
            diagnosed=fetched is not None,
            predicted_stall_s=0.0 if fetched is not None else None,
            # no chain to validate, but the same screen still has CredSSP (WINDOWS.md §1)
            prediction=replace(NO_PREDICTION, not_measured=NOT_MEASURED)
            if fetched is not None
            else NO_PREDICTION,
        )
    assert path is not None
    try:
        chain = tuple(certificate_facts(c, now=now) for c in served)
        # the path runs through the served certificates: their facts are read once
        served_facts = {id(c): f for c, f in zip(served, chain, strict=True)}
        path_facts = tuple(
            served_facts.get(id(c)) or certificate_facts(c, now=now) for c in path.certificates
        )
        problems = list(
            judge_chain(
                target,
                list(served),
                path,
                pin if pin is not None else _NO_STORE,
                now=now,
                warn_days=warn_days,
                disallowed=disallowed,
            )
        )
    except PkiError as exc:
        findings = unjudged_findings()
        problem = catalog.MALFORMED_CERTIFICATE.problem(
            Severity.CRITICAL,
            f"the certificate chain {target} sent cannot be read ({exc})",
        )
        return result(
            trusted=False,
            pin=pin,
            problems=(problem,),
            findings=findings,
            verdict=Verdict.of((problem, *findings)),
        )
    if path.limited is not None:
        problems.append(
            catalog.PATH_LIMIT.problem(
                Severity.WARNING,
                f"path building stopped at a limit ({path.limited}); the chain was judged on"
                f" the best path found: {target} should send its certificate and issuers only",
            )
        )
    findings = probe_findings(probe, now=now, warn_days=warn_days, leaf=chain[0])
    findings = tuple(f for f in findings if f.code not in CHAIN_JUDGED_FINDINGS)
    pinned = pin is not None and pin.status == PinStatus.MATCH
    anchored = path.anchor is not None
    # An explicitly distrusted certificate overrides the anchor and the pin; the waits
    # are still modelled as for the path (whether the chain engine then skips its
    # retrievals is not documented).
    is_distrusted = distrusted(served, path, disallowed)
    trusted = (anchored or pinned) and not is_distrusted
    retrievals: tuple[Retrieval, ...] = ()
    stall: float | None = None
    causes: tuple[Cause, ...] = ()
    capped = False
    forecast = NO_PREDICTION
    if fetched is not None:
        staple = staple_use(probe.stapled_ocsp, path.certificates, now=now)
        retrievals, prediction = _count(
            fetched, anchored, pinned, settings, staple, direct=direct_path
        )
        forecast = prediction.prediction
        if is_distrusted:
            forecast = replace(forecast, assumptions=(*forecast.assumptions, DISTRUSTED_ASSUMPTION))
        stall, causes, capped = prediction.seconds, prediction.causes, prediction.revocation_capped
        problems.extend(_revocation_problems(fetched, path, trusted, staple))
        problems.extend(wpad_problems(retrievals))
        problems.extend(omission_problems(omitted))
        if prediction.seconds >= STALL_WARNING_S:
            severity = (
                Severity.CRITICAL if prediction.seconds >= STALL_CRITICAL_S else Severity.WARNING
            )
            cause = prediction.causes[0].text if prediction.causes else "retrievals"
            first = forecast.first_connection
            span = (
                f"about {first.high_s:.0f} s"
                if round(first.low_s) == round(first.high_s)
                else f"{first.low_s:.0f}-{first.high_s:.0f} s"
            )
            problems.append(
                catalog.PREDICTED_STALL.problem(
                    severity,
                    f"Remote Desktop Connection waits {span} on"
                    f' "Securing remote connection": {cause}',
                )
            )
    problems.sort(key=lambda p: -p.severity.rank)
    verdict = Verdict.UNKNOWN if store_error is not None else Verdict.of((*problems, *findings))
    return result(
        chain=chain,
        path=path_facts,
        trusted=trusted,
        anchor=subject_text(path.anchor) if path.anchor is not None else None,
        pin=pin,
        problems=tuple(problems),
        findings=findings,
        verdict=verdict,
        diagnosed=fetched is not None,
        retrievals=retrievals,
        predicted_stall_s=stall,
        causes=causes,
        revocation_capped=capped,
        prediction=forecast,
    )


def _answered(f: Fetched) -> bool:
    return f.revocation in (RevocationStatus.GOOD, RevocationStatus.REVOKED)


def _count(
    fetched: Sequence[Fetched],
    anchored: bool,
    pinned: bool,
    settings: WindowsSettings,
    staple: StapleUse | None = None,
    *,
    direct: bool = False,
) -> tuple[tuple[Retrieval, ...], StallPrediction]:
    """Which retrievals Windows makes, in its order (a usable staple for the leaf, lists,
    AIA, revocation top down), what each costs and what later connections pay again
    (WINDOWS.md §2-§5)."""
    revocation = [f for f in fetched if f.purpose in REVOCATION_PURPOSES]
    checks = wants_revocation(anchored=anchored, pinned=pinned)
    order = _revocation_order(revocation, settings, staple) if checks else ()
    rank = {id(revocation[p]): n for n, p in enumerate(order)}
    lists = ctl_syncs(anchored=anchored, pinned=pinned, settings=settings)
    synced = {
        p: all(f.result.outcome == FetchOutcome.OK for f in fetched if f.purpose == p)
        for p in lists
    }
    answered_certs = {revocation[p].cert_index for p in order if _answered(revocation[p])}
    proxy_found = any(
        f.purpose == Purpose.WPAD and f.result.outcome == FetchOutcome.OK for f in fetched
    )
    retrievals: list[Retrieval] = []
    keyed: list[tuple[tuple[int, int], Wait]] = []
    for position, f in enumerate(fetched):
        if f.purpose in CTL_PURPOSES:
            counted = f.purpose in lists
            key = (0, CTL_PURPOSES.index(f.purpose) * 1000 + position)
            cached = synced.get(f.purpose, False)
        elif f.purpose == Purpose.WPAD:
            # proxy discovery comes before any retrieval; a script found is kept (assumed)
            counted = True
            key = (-1, position)
            cached = proxy_found
        elif f.purpose == Purpose.AIA:
            counted = True
            key = (1, position)
            cached = f.result.outcome == FetchOutcome.OK
        else:
            counted = id(f) in rank
            key = (2, rank.get(id(f), 0))
            cached = f.cert_index in answered_certs
        # the connects are charged as Windows pays them (rdptrust.pki.network)
        # (a list fetch waits the list wait, a setting of its own: rule ctl-fetch-wait)
        judged_with = settings_for(f.purpose, settings)
        charge = result_wait(f.result, judged_with)
        if f.purpose == Purpose.WPAD and charge.rule is None:
            charge = replace(charge, rule="wpad-discovery", basis=Basis.ASSUMED)
        seconds, modelled = charge.seconds, charge.modelled
        dead = is_dead(f.result.outcome, f.result.elapsed_ms, judged_with)
        assumed = assumed_rule(f.url, f.result.outcome)
        if assumed is not None:
            # not made by rdptrust (file://, ldap:/// without --domain): the time-out
            seconds, modelled, dead = judged_with.url_timeout_s, True, True
            charge = replace(
                charge,
                rule=assumed,
                basis=rule(assumed).status.basis,
                note=modelled_note(f.url) or "",
                own_text=True,
            )
        if counted:
            keyed.append(
                (
                    key,
                    Wait(
                        f.purpose,
                        f.url,
                        f.result.outcome,
                        f.result.status,
                        seconds,
                        modelled,
                        dead=dead,
                        cached=cached,
                        rule=charge.rule,
                        basis=charge.basis,
                        note=charge.note,
                        own_text=charge.own_text,
                    ),
                )
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
                connects=f.result.attempts,
            )
        )
    waits = [w for _, w in sorted(keyed, key=lambda kw: kw[0])]
    return tuple(retrievals), predict(
        waits,
        settings,
        pinned=pinned and not anchored,
        staple=staple if checks else None,
        direct=direct,
    )


def wpad_problems(retrievals: Sequence[Retrieval]) -> list[Problem]:
    """A ``wpad-discovery-wait`` when finding the proxy failed or took 0.5 s or more
    (rule ``wpad-discovery``: WINDOWS.md §6, KB 2623724)."""
    mine = [r for r in retrievals if r.purpose == Purpose.WPAD and r.counted]
    if not mine:
        return []
    seconds = sum(r.wait_s for r in mine)
    found = any(r.outcome == FetchOutcome.OK for r in mine)
    if found and seconds < NOTABLE_WAIT_S:
        return []
    what = "found a proxy script" if found else "found no proxy script (so: direct)"
    steps = ", ".join(f"{r.url} {r.outcome.value}" for r in mine)
    return [
        catalog.WPAD_DISCOVERY_WAIT.problem(
            Severity.WARNING,
            f"proxy discovery {what} after about {seconds:.1f} s ({steps}); the client pays"
            f" it before its retrievals{'' if found else ', at every connection'}",
        )
    ]


def _revocation_problems(
    fetched: Sequence[Fetched], path: ChainPath, trusted: bool, staple: StapleUse | None
) -> list[Problem]:
    revocation = [f for f in fetched if f.purpose in REVOCATION_PURPOSES]
    problems = [
        catalog.REVOKED.problem(
            Severity.CRITICAL,
            f"{f.certificate} is revoked: {f.detail}; the host needs a new certificate",
        )
        for f in revocation
        if f.revocation == RevocationStatus.REVOKED
    ]
    stapled = staple is not None and staple.used
    if staple is not None and staple.used and staple.revoked and not problems:
        problems.append(
            catalog.REVOKED.problem(
                Severity.CRITICAL,
                f"{subject_text(path.certificates[0])} is revoked: the host's stapled OCSP"
                f" answer says {staple.detail}; the host needs a new certificate",
            )
        )
    if trusted:
        for index, cert, _issuer in revocation_plan(path):
            if stapled_skips(index, staple_used=stapled):
                continue  # the staple settled it
            mine = [f for f in revocation if f.cert_index == index]
            if mine and not any(
                f.revocation in (RevocationStatus.GOOD, RevocationStatus.REVOKED) for f in mine
            ):
                problems.append(
                    catalog.REVOCATION_UNAVAILABLE.problem(
                        Severity.WARNING,
                        f"no revocation answer for {subject_text(cert)}: every CRL and OCSP"
                        " URL failed, so Windows waits for them and then warns",
                    )
                )
    return problems
