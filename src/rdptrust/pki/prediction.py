"""What a chain's counted retrievals cost: the first connection and the later ones.

Pure. The waits come from :mod:`rdptrust.pki.windows`; the rules cited are those of
:mod:`rdptrust.pki.rules`. A range covers the revocation regimes modelled
(``WindowsSettings.revocation_timeouts``); the later connections pay again only what
Windows does not cache (rules ``cache-first-connection``, ``cache-failures-repeat``:
WINDOWS.md §5).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from rdptrust.model.retrieval import FetchOutcome, Purpose
from rdptrust.model.windows import (
    Basis,
    Cause,
    ClientProfile,
    Prediction,
    RevocationRegime,
    RuleBasis,
    StapleUse,
    WaitRange,
    WindowsSettings,
)
from rdptrust.pki.rules import CRL_FIRST_ASSUMPTION, NOT_MEASURED, PIN_ASSUMPTION, rule
from rdptrust.pki.schemes import scheme
from rdptrust.pki.windows import (
    CTL_PURPOSES,
    NOTABLE_WAIT_S,
    REVOCATION_PURPOSES,
    RevocationEntry,
    regimes,
    revocation_waits,
)

#: The rules of :mod:`rdptrust.pki.network` that replace a measured figure.
NETWORK_RULES = frozenset({"tcp-refused-retry", "tcp-connect-giveup"})
NETWORK_ASSUMPTION = (
    "failed connects are charged as Windows pays them, not as measured here: a refused or"
    " reset one about 2 s per address (libuv PR 2896), a silent one up to min(URL"
    " time-out, 21 s) (KB 2786464), the addresses one after another"
)

LISTS_ASSUMPTION = (
    "the list syncs are added up, one after another: whether Windows syncs the trusted,"
    " disallowed and pin-rules lists in parallel is not documented (the figure would be"
    " the longest one then)"
)
SEQUENCE_ASSUMPTION = (
    "authrootstl.cab is counted after authrootseq.txt answered: Windows fetches it only when"
    " the sequence number changed since its last sync, which rdptrust cannot see (a client"
    " whose cached list is current fetches the sequence file alone)"
)
DIRECT_ASSUMPTION = (
    "the clients reach these URLs directly, as rdptrust did: no WinHTTP proxy was given"
    " (--proxy, --pac, --wpad or --client-state model the clients' own; Windows 10 finds"
    " one automatically where WPAD answers)"
)

_WHY = {
    "tcp-refused-retry": "Windows retries a refused connect",
    "tcp-connect-giveup": "Windows' connect give-up",
    "ctl-fetch-wait": "the assumed wait of a blocked list fetch",
}

_LABELS = {
    Purpose.ROOT_LIST: "root list",
    Purpose.DISALLOWED_LIST: "disallowed certificate list",
    Purpose.PIN_RULES: "pin rules list",
    Purpose.AIA: "issuer certificate (AIA)",
    Purpose.CRL: "CRL",
    Purpose.OCSP: "OCSP responder",
    Purpose.WPAD: "proxy auto-configuration (WPAD/PAC)",
}


def _host(url: str) -> str:
    """Where *url* points, for the words of a wait (the URL itself when it has no host)."""
    try:
        return urlsplit(url).netloc or url
    except ValueError:  # a certificate's URL that does not parse (``ldap://[x/``)
        return url


def describe(
    purpose: Purpose,
    url: str,
    outcome: FetchOutcome,
    status: int | None,
    seconds: float,
    modelled: bool,
    why: str = "Windows' time-out",
) -> str:
    """One wait in words: what was fetched from where, what happened, what it costs."""
    host = _host(url)
    what = {
        FetchOutcome.TIMEOUT: "did not answer",
        FetchOutcome.REFUSED: "refused the connection",
        FetchOutcome.DNS_ERROR: "could not be resolved",
        FetchOutcome.HTTP_ERROR: f"answered HTTP {status}" if status else "answered with an error",
        FetchOutcome.INVALID: "sent unusable data",
        FetchOutcome.OK: "answered slowly",
        FetchOutcome.SKIPPED: "was not fetched here (destination not allowed)",
        FetchOutcome.LOCAL_ERROR: "could not be tried here (a limit of this machine)",
    }[outcome]
    figure = f"about {seconds:.0f} s (modelled: {why})" if modelled else f"{seconds:.1f} s"
    return f"{_LABELS[purpose]} at {host} {what}: {figure}"


@dataclass(frozen=True)
class Wait:
    """A counted retrieval's cost as :func:`predict` takes it.

    ``seconds`` is its per-URL figure (:func:`~rdptrust.pki.windows.retrieval_wait`),
    ``dead`` whether it ran into Windows' time-out (a modelled figure is one too) and
    ``cached`` whether Windows caches its answer for later connections (an answered
    revocation check, an issuer fetched, a list synced).
    """

    purpose: Purpose
    url: str
    outcome: FetchOutcome
    status: int | None
    seconds: float
    modelled: bool
    dead: bool = False
    cached: bool = False
    rule: str | None = None
    """The network rule its figure follows (``tcp-refused-retry``, ``tcp-connect-giveup``:
    :mod:`rdptrust.pki.network`); None: the per-URL rules."""
    basis: Basis | None = None
    note: str = ""
    """What was measured instead of the Windows figure, in words."""
    own_text: bool = False
    """*note* is the whole description (a retrieval rdptrust did not make:
    :mod:`rdptrust.pki.schemes`), not an addition to the outcome's."""


@dataclass(frozen=True)
class StallPrediction:
    """The prediction, its causes (longest first) and whether the accumulative budget
    bounded the revocation waits (``revocation_capped``). ``seconds`` is the first
    connection's high end."""

    seconds: float
    causes: tuple[Cause, ...]
    revocation_capped: bool
    prediction: Prediction


def _revocation_figures(
    waits: Sequence[Wait], regime: RevocationRegime, settings: WindowsSettings
) -> list[float]:
    # a figure modelled by a network rule is a charge, not a time-out: it is not dead
    entries = [
        RevocationEntry(w.seconds, w.dead or (w.modelled and w.rule not in NETWORK_RULES))
        for w in waits
    ]
    return list(revocation_waits(entries, regime, settings))


def _total(
    waits: Sequence[Wait], regime: RevocationRegime, settings: WindowsSettings, later: bool
) -> tuple[float, float]:
    """(all waits, revocation waits) of one connection under *regime*."""
    paid = [w for w in waits if not (later and w.cached)]
    other = sum(w.seconds for w in paid if w.purpose not in REVOCATION_PURPOSES)
    revocation = [w for w in paid if w.purpose in REVOCATION_PURPOSES]
    spent = sum(_revocation_figures(revocation, regime, settings))
    return other + spent, spent


def _range(values: Sequence[float]) -> WaitRange:
    return WaitRange(round(min(values), 3), round(max(values), 3))


def _cause_rule(wait: Wait, settings: WindowsSettings) -> tuple[str, Basis]:
    """The rule a wait follows and what it rests on (each rule's own status)."""
    if wait.purpose in CTL_PURPOSES and wait.rule == "tcp-connect-giveup":
        # a silent address costs the list fetch's wait, not a documented time-out: the
        # give-up (21 s) is longer, so the unverified list wait bounds it
        return "ctl-fetch-wait", rule("ctl-fetch-wait").status.basis
    if wait.rule is not None and wait.basis is not None:
        return wait.rule, wait.basis
    if not wait.modelled:
        return "observed-figure", Basis.OBSERVED
    if wait.purpose in CTL_PURPOSES:
        return "ctl-fetch-wait", rule("ctl-fetch-wait").status.basis
    if wait.purpose in REVOCATION_PURPOSES:
        regime = settings.revocation_timeouts
        chosen = (
            "revocation-regime-unknown"
            if regime == RevocationRegime.BOTH
            else f"revocation-{regime.value}"
        )
        return chosen, rule(chosen).status.basis
    return "url-timeout", rule("url-timeout").status.basis


def staple_text(staple: StapleUse) -> str:
    """The staple's part in the prediction, in words."""
    if staple.used:
        return (
            f"stapled OCSP answer used (documented order): {staple.detail}; the host"
            " certificate's OCSP and CRL URLs cost no wait"
        )
    return f"stapled OCSP answer not used: {staple.detail}"


def _not_fetched(waits: Sequence[Wait]) -> tuple[str, ...]:
    """The retrievals the destination policy kept rdptrust from making (the exporter's
    ``fetch_allow``/``fetch_deny``): they count 0 s, which says nothing of the client.

    A ``file://`` or host-less ``ldap:///`` URL is skipped too, but by its scheme: it is
    counted as an assumed dead URL (``own_text``), not as 0 s, and is not listed here.
    """
    out: dict[str, None] = {}
    for wait in waits:
        if wait.outcome == FetchOutcome.SKIPPED and not wait.own_text:
            out[
                f"{_LABELS[wait.purpose]} at {_host(wait.url)} (not fetched from here: the"
                " destination policy does not allow it; counted as 0 s)"
            ] = None
    return tuple(out)


def predict(
    waits: Sequence[Wait],
    settings: WindowsSettings,
    *,
    pinned: bool = False,
    staple: StapleUse | None = None,
    direct: bool = False,
) -> StallPrediction:
    """Add up the counted *waits* (in the order Windows makes them) for the first
    connection and for later ones, over the modelled revocation regimes. *staple* is
    what the chain engine made of the host's stapled OCSP answer (the waits already
    leave out what a used one settles); None: no staple, or no revocation check."""
    modelled = regimes(settings)
    first = [_total(waits, r, settings, later=False) for r in modelled]
    later = [_total(waits, r, settings, later=True) for r in modelled]
    revocation = [w for w in waits if w.purpose in REVOCATION_PURPOSES]
    per_regime = {r: _revocation_figures(revocation, r, settings) for r in modelled}
    causes: list[Cause] = []
    used: dict[str, None] = {}
    position = 0
    for wait in waits:
        rule_id, basis = _cause_rule(wait, settings)
        seconds = wait.seconds
        extra = ""
        if wait.purpose in REVOCATION_PURPOSES:
            figures = {r: per_regime[r][position] for r in modelled}
            position += 1
            seconds = max(figures.values())
            if len(figures) > 1 and abs(figures[RevocationRegime.ACCUMULATIVE] - seconds) > 1e-9:
                extra = (
                    f"; {figures[RevocationRegime.ACCUMULATIVE]:.1f} s with the accumulative"
                    " time-out"
                )
        used[rule_id] = None
        if wait.note and not wait.own_text:
            extra = f" ({wait.note}){extra}"
        if wait.outcome != FetchOutcome.OK or seconds >= NOTABLE_WAIT_S:
            why = _WHY.get(rule_id, "Windows' time-out")
            text = (
                f"{_LABELS[wait.purpose]} at {wait.url}: about {seconds:.0f} s ({wait.note})"
                if wait.own_text
                else describe(
                    wait.purpose, wait.url, wait.outcome, wait.status, seconds, wait.modelled, why
                )
            )
            causes.append(
                Cause(
                    wait.purpose,
                    wait.url,
                    round(seconds, 3),
                    wait.modelled,
                    f"{text}{extra}",
                    rule_id,
                    basis,
                    not wait.cached,
                )
            )
    if revocation:
        for regime in modelled:
            used[f"revocation-{regime.value}"] = None
    used["revocation-trusted-only"] = None
    if staple is not None:
        used["stapled-ocsp"] = None
    if not settings.ocsp_first:
        used["crl-before-ocsp"] = None
    # the switches that removed a sync are part of what the figure rests on
    if not settings.ctl_due:
        used["ctl-due"] = None
    if not settings.root_update:
        used["method2-trusted-only"] = None
    if not settings.disallowed_update or settings.client == ClientProfile.WIN7:
        used["disallowed-switch"] = None
    if settings.root_dir_url:
        used["root-dir-url"] = None
    if any(w.purpose in CTL_PURPOSES for w in waits):
        used["ctl-due"] = None
        for purpose, rule_id in (
            (Purpose.ROOT_LIST, "ctl-trusted-list"),
            (Purpose.DISALLOWED_LIST, "ctl-disallowed-list"),
            (Purpose.PIN_RULES, "ctl-pin-rules"),
        ):
            if any(w.purpose == purpose for w in waits):
                used[rule_id] = None
    if any(w.purpose == Purpose.AIA for w in waits):
        used["aia-untrusted-path"] = None
    if any(scheme(w.url) == "ldap" and not w.rule for w in waits):
        used["ldap-url"] = None
    if waits:
        used["cache-first-connection"] = None
        used["cache-failures-repeat"] = None
    assumptions: list[str] = []
    if not settings.ocsp_first:
        assumptions.append(CRL_FIRST_ASSUMPTION)
    if pinned:
        used["pin-as-root"] = None
        assumptions.append(PIN_ASSUMPTION)
    if len(modelled) > 1 and len({round(f[1], 3) for f in first}) > 1:
        assumptions.append(
            "two figures: which revocation time-out flags mstsc passes is not documented"
            " (accumulative: half the remaining 20 s per URL; per URL: 15 s each, no cap)"
        )
    if any(w.rule in NETWORK_RULES for w in waits):
        used["addresses-in-order"] = None
        assumptions.append(NETWORK_ASSUMPTION)
    if sum(1 for w in waits if w.purpose in CTL_PURPOSES and w.seconds >= NOTABLE_WAIT_S) > 1:
        assumptions.append(LISTS_ASSUMPTION)
    if direct and waits:
        assumptions.append(DIRECT_ASSUMPTION)
    if any(
        w.purpose == Purpose.ROOT_LIST and w.url.lower().split("?")[0].endswith(".cab")
        for w in waits
    ):
        assumptions.append(SEQUENCE_ASSUMPTION)
    used["scope-credssp"] = None
    rules_used = tuple(RuleBasis(r.id, r.status.basis, r.source) for r in map(rule, used))
    capped = RevocationRegime.ACCUMULATIVE in modelled and bool(revocation)
    if capped:
        acc = _total(waits, RevocationRegime.ACCUMULATIVE, settings, later=False)[1]
        per = sum(per_regime.get(RevocationRegime.PER_URL) or [acc])
        capped = acc < per - 1e-9 or (len(modelled) == 1 and any(w.dead for w in revocation))
    causes.sort(key=lambda c: -c.seconds)
    prediction = Prediction(
        first_connection=_range([f[0] for f in first]),
        later_connections=_range([f[0] for f in later]),
        basis=rules_used,
        assumptions=tuple(assumptions),
        not_measured=(*NOT_MEASURED, *_not_fetched(waits)),
        regimes=settings.revocation_timeouts.value,
        stapled_ocsp=staple,
    )
    return StallPrediction(prediction.first_connection.high_s, tuple(causes), capped, prediction)
