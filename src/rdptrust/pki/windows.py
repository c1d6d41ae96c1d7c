"""The Windows chain engine's arithmetic and gating, as pure functions (WINDOWS.md).

Each function cites the WINDOWS.md section and the Microsoft source it follows; the rule
ids are those of :mod:`rdptrust.pki.rules`. What a chain's retrievals add up to, for the
first connection and the later ones, is :mod:`rdptrust.pki.prediction`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from rdptrust.model.retrieval import FetchOutcome, Purpose
from rdptrust.model.windows import ClientProfile, RevocationRegime, WindowsSettings

#: Below this a wait is not worth naming as a cause.
NOTABLE_WAIT_S = 0.5
#: The certificate trust lists, in the order Windows syncs them (WINDOWS.md §2).
CTL_PURPOSES = (Purpose.ROOT_LIST, Purpose.DISALLOWED_LIST, Purpose.PIN_RULES)
REVOCATION_PURPOSES = (Purpose.CRL, Purpose.OCSP)


def retrieval_wait(
    outcome: FetchOutcome, elapsed_ms: float, settings: WindowsSettings
) -> tuple[float, bool]:
    """Seconds Windows would wait for one retrieval under the per-URL time-out, and
    whether that figure is modelled (rule ``url-timeout``: WINDOWS.md §3,
    CERT_CHAIN_PARA ``dwUrlRetrievalTimeout``, default 15 000 ms).

    A retrieval that got no answer within our observation is stretched to the time-out;
    a longer answer is cut at it; fast failures cost what was observed.
    """
    observed = elapsed_ms / 1000.0
    if outcome == FetchOutcome.TIMEOUT or observed >= settings.url_timeout_s:
        return settings.url_timeout_s, observed != settings.url_timeout_s
    return observed, False


def is_dead(outcome: FetchOutcome, elapsed_ms: float, settings: WindowsSettings) -> bool:
    """Whether a retrieval runs into Windows' time-out (no answer in time)."""
    return outcome == FetchOutcome.TIMEOUT or elapsed_ms / 1000.0 >= settings.url_timeout_s


def settings_for(purpose: Purpose, settings: WindowsSettings) -> WindowsSettings:
    """The settings one retrieval of *purpose* is judged with: a certificate trust list's
    fetch waits ``list_timeout_s`` (rule ``ctl-fetch-wait``, unverified: WINDOWS.md §2),
    every other retrieval the per-URL time-out."""
    if purpose in CTL_PURPOSES and settings.list_timeout_s != settings.url_timeout_s:
        return replace(settings, url_timeout_s=settings.list_timeout_s)
    return settings


@dataclass(frozen=True)
class RevocationEntry:
    """One counted revocation retrieval: what was observed and whether it was dead."""

    observed_s: float
    dead: bool


def per_url_waits(entries: Sequence[RevocationEntry], url_timeout_s: float) -> tuple[float, ...]:
    """Revocation waits without ``CERT_CHAIN_REVOCATION_ACCUMULATIVE_TIMEOUT``: each URL
    up to the per-URL time-out, no cap ("15 seconds multiplied by the number of URLs in
    the chain"; rule ``revocation-per-url``: WINDOWS.md §3, CERT_CHAIN_PARA)."""
    return tuple(url_timeout_s if e.dead else min(e.observed_s, url_timeout_s) for e in entries)


def accumulative_waits(entries: Sequence[RevocationEntry], budget_s: float) -> tuple[float, ...]:
    """Revocation waits with ``CERT_CHAIN_REVOCATION_ACCUMULATIVE_TIMEOUT``: "each URL
    tested will timeout after half of the remaining cumulative balance" of
    ChainRevAccumulativeUrlRetrievalTimeoutMilliseconds (20 s: 10, 5, 2.5 s ...; rule
    ``revocation-accumulative``: WINDOWS.md §3, CERT_CHAIN_PARA). The per-URL time-out
    plays no part: with the flag, the budget is the caller's whole time-out (a 60 s
    budget gives the first dead URL 30 s)."""
    remaining = budget_s
    waits: list[float] = []
    for entry in entries:
        limit = remaining / 2.0
        wait = limit if entry.dead else min(entry.observed_s, limit)
        waits.append(wait)
        remaining = max(remaining - wait, 0.0)
    return tuple(waits)


def regimes(settings: WindowsSettings) -> tuple[RevocationRegime, ...]:
    """The regimes a prediction covers: one, or both when which flags mstsc passes is
    not known (rule ``revocation-regime-unknown``: WINDOWS.md §3, CAPI2 log)."""
    if settings.revocation_timeouts == RevocationRegime.BOTH:
        return (RevocationRegime.ACCUMULATIVE, RevocationRegime.PER_URL)
    return (settings.revocation_timeouts,)


def revocation_waits(
    entries: Sequence[RevocationEntry], regime: RevocationRegime, settings: WindowsSettings
) -> tuple[float, ...]:
    """The waits of *entries* (in the order Windows makes them) under *regime*."""
    if regime == RevocationRegime.ACCUMULATIVE:
        return accumulative_waits(entries, settings.revocation_timeout_s)
    return per_url_waits(entries, settings.url_timeout_s)


def wants_root_list(*, anchored: bool, pinned: bool, settings: WindowsSettings) -> bool:
    """Whether the trusted list (authrootseq.txt, then authrootstl.cab) is synced: the
    path's root is untrusted (neither anchor nor pinned), root update is on (Method 2
    off) and the list is due (rules ``ctl-trusted-list``, ``method2-trusted-only``,
    ``ctl-due``: WINDOWS.md §2, KB 2915774)."""
    return not anchored and not pinned and settings.root_update and settings.ctl_due


def wants_disallowed_list(settings: WindowsSettings) -> bool:
    """Whether the untrusted list is synced, for every chain (rule ``ctl-disallowed-list``:
    WINDOWS.md §2, AskDS 2018). From Windows 8.1 EnableDisallowedCertAutoUpdate switches
    it; on Windows 7 DisableRootAutoUpdate (Method 2) is the whole switch (rule
    ``disallowed-switch``: configure-trusted-roots-disallowed-certificates, KB 2677070)."""
    if not settings.ctl_due:
        return False
    if settings.client == ClientProfile.WIN7:
        return settings.root_update
    return settings.disallowed_update


def wants_pin_rules(settings: WindowsSettings) -> bool:
    """Whether pinrulesstl.cab is synced: Windows 10 and later, with the untrusted list's
    switch (rule ``ctl-pin-rules``: WINDOWS.md §2, §7)."""
    return (
        settings.ctl_due and settings.client == ClientProfile.WIN10 and settings.disallowed_update
    )


def ctl_syncs(*, anchored: bool, pinned: bool, settings: WindowsSettings) -> tuple[Purpose, ...]:
    """The certificate trust lists the client syncs for a chain, in order."""
    wanted = {
        Purpose.ROOT_LIST: wants_root_list(anchored=anchored, pinned=pinned, settings=settings),
        Purpose.DISALLOWED_LIST: wants_disallowed_list(settings),
        Purpose.PIN_RULES: wants_pin_rules(settings),
    }
    return tuple(p for p in CTL_PURPOSES if wanted[p])


def wants_revocation(*, anchored: bool, pinned: bool) -> bool:
    """Whether Windows checks revocation: only for a chain that ends in a trusted root; a
    pinned certificate counts as one in the Root store (rules ``revocation-trusted-only``,
    ``pin-as-root``: WINDOWS.md §1, ee619754)."""
    return anchored or pinned


def revocation_methods(settings: WindowsSettings) -> tuple[Purpose, Purpose]:
    """The order a certificate's revocation sources are tried in, once no stapled answer,
    cached answer or stored CRL settles it: OCSP from AIA, then the CRL distribution point
    (rule ``revocation-trusted-only``: WINDOWS.md §4, path-validation doc); the CRL first
    when the client prefers it, as after 50 cached OCSP answers for one CA or with
    ``CRYPTNET_CRL_BEFORE_OCSP_ENABLE`` (rule ``crl-before-ocsp``: ee619783)."""
    return (Purpose.OCSP, Purpose.CRL) if settings.ocsp_first else (Purpose.CRL, Purpose.OCSP)


def stapled_skips(cert_index: int, *, staple_used: bool) -> bool:
    """Whether the certificate at *cert_index* needs no retrieval because the host's
    stapled OCSP answer settles it: a staple is for the leaf (index 0) only, and a usable
    one comes first in the order (rule ``stapled-ocsp``: WINDOWS.md §4, RFC 6066 8)."""
    return staple_used and cert_index == 0


@dataclass(frozen=True)
class RevocationAttempt:
    """One revocation retrieval for the certificate at ``cert_index`` of the path;
    ``answered`` is true when it gave a status (good or revoked); ``delta`` marks a
    delta CRL (the certificate's Freshest CRL)."""

    cert_index: int
    purpose: Purpose
    answered: bool
    delta: bool = False


def counted_revocation(
    attempts: Sequence[RevocationAttempt], settings: WindowsSettings
) -> frozenset[int]:
    """Positions in *attempts* that Windows makes (see :func:`revocation_order`)."""
    return frozenset(revocation_order(attempts, settings))


def revocation_order(
    attempts: Sequence[RevocationAttempt], settings: WindowsSettings
) -> tuple[int, ...]:
    """Positions in *attempts* that Windows makes, in the order it makes them: top down
    (the certificate nearest the root first), per certificate OCSP then CRL (or CRL
    first, a setting), stopping at the first retrieval that gives a status (rule
    ``revocation-trusted-only``: WINDOWS.md §1, §4; ee619754, path-validation doc);
    when that is a CRL, the certificate's delta CRLs too (a second fetch per
    certificate: Freshest CRL, WINDOWS.md §4)."""
    order = revocation_methods(settings)
    counted: list[int] = []
    for index in sorted({a.cert_index for a in attempts}, reverse=True):
        mine = [
            (position, attempt)
            for purpose in order
            for position, attempt in enumerate(attempts)
            if attempt.cert_index == index and attempt.purpose == purpose and not attempt.delta
        ]
        for position, attempt in mine:
            counted.append(position)
            if attempt.answered:
                if attempt.purpose == Purpose.CRL:
                    counted.extend(
                        p
                        for p, a in enumerate(attempts)
                        if a.cert_index == index and a.delta and a.purpose == Purpose.CRL
                    )
                break
    return tuple(counted)


def ctl_url(base_url: str, name: str, token: str) -> str:
    """The URL Windows fetches for list file *name* from *base_url*, with its random query
    string (WINDOWS.md §2: traffic shows ``…stl.cab?556e6917…``; SDK
    CERT_AUTO_UPDATE_DISABLE_RANDOM_QUERY_STRING_FLAG)."""
    base = base_url if base_url.endswith("/") else base_url + "/"
    return f"{base}{name}?{token}" if token else base + name


def ctl_directory(root_list_url: str, root_dir_url: str | None) -> str:
    """The folder the lists come from: RootDirUrl when set (rule ``root-dir-url``), else
    the folder of the trusted list's URL."""
    if root_dir_url:
        return root_dir_url if root_dir_url.endswith("/") else root_dir_url + "/"
    head, slash, tail = root_list_url.rpartition("/")
    if slash and tail.lower().endswith((".cab", ".txt")):
        return head + "/"
    return root_list_url if root_list_url.endswith("/") else root_list_url + "/"
