"""The Windows chain engine's network behaviour, as a model (see PROTOCOL.md §5).

What mstsc's certificate check fetches for a chain:

- the Automatic Root Certificates Update list (``authrootstl.cab``) when the path does
  not end in a trusted root and root update is on (Method 2 turns it off);
- the missing issuer over AIA caIssuers when the host does not send it;
- revocation data (OCSP, then CRL — the order is a setting) for each certificate below
  the root, only when the path ends in a trusted root.

Each URL may take up to ``url_timeout_s`` (ChainUrlRetrievalTimeoutMilliseconds, 15 s by
default); all revocation retrievals of one chain together up to ``revocation_timeout_s``
(ChainRevAccumulativeUrlRetrievalTimeoutMilliseconds, 20 s). A retrieval that got no
answer within our own observation time-out is *modelled* as a full Windows time-out;
fast failures (refused, DNS, HTTP errors) cost what we observed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from rdptrust.model.retrieval import FetchOutcome, Purpose
from rdptrust.model.windows import Cause, WindowsSettings

#: Below this a wait is not worth naming as a cause.
NOTABLE_WAIT_S = 0.5


def retrieval_wait(
    outcome: FetchOutcome, elapsed_ms: float, settings: WindowsSettings
) -> tuple[float, bool]:
    """Seconds Windows would wait for one retrieval, and whether that figure is modelled."""
    observed = elapsed_ms / 1000.0
    if outcome == FetchOutcome.TIMEOUT or observed >= settings.url_timeout_s:
        # Modelled unless we watched for exactly Windows' time-out: a shorter observation
        # is stretched to it, a longer answer is cut at it.
        return settings.url_timeout_s, observed != settings.url_timeout_s
    return observed, False


_LABELS = {
    Purpose.ROOT_LIST: "root list",
    Purpose.AIA: "issuer certificate (AIA)",
    Purpose.CRL: "CRL",
    Purpose.OCSP: "OCSP responder",
}


def describe(
    purpose: Purpose,
    url: str,
    outcome: FetchOutcome,
    status: int | None,
    seconds: float,
    modelled: bool,
) -> str:
    host = urlsplit(url).netloc or url
    what = {
        FetchOutcome.TIMEOUT: "did not answer",
        FetchOutcome.REFUSED: "refused the connection",
        FetchOutcome.DNS_ERROR: "could not be resolved",
        FetchOutcome.HTTP_ERROR: f"answered HTTP {status}" if status else "answered with an error",
        FetchOutcome.INVALID: "sent unusable data",
        FetchOutcome.OK: "answered slowly",
        FetchOutcome.SKIPPED: "was not fetched here (destination not allowed)",
    }[outcome]
    figure = (
        f"about {seconds:.0f} s (modelled: Windows' time-out)" if modelled else f"{seconds:.1f} s"
    )
    return f"{_LABELS[purpose]} at {host} {what}: {figure}"


@dataclass(frozen=True)
class Wait:
    """A counted retrieval's cost, as :func:`predict` takes it."""

    purpose: Purpose
    url: str
    outcome: FetchOutcome
    status: int | None
    seconds: float
    modelled: bool


@dataclass(frozen=True)
class StallPrediction:
    """How long mstsc sits on "Securing remote connection", and why.

    ``revocation_capped`` is true when revocation waits hit the accumulated time-out.
    """

    seconds: float
    causes: tuple[Cause, ...]
    revocation_capped: bool


def predict(waits: Sequence[Wait], settings: WindowsSettings) -> StallPrediction:
    """Add up the counted waits: root list and AIA in full, revocation up to its cap."""
    total = 0.0
    revocation = 0.0
    causes: list[Cause] = []
    for wait in waits:
        if wait.purpose in (Purpose.CRL, Purpose.OCSP):
            revocation += wait.seconds
        else:
            total += wait.seconds
        if wait.outcome != FetchOutcome.OK or wait.seconds >= NOTABLE_WAIT_S:
            causes.append(
                Cause(
                    wait.purpose,
                    wait.url,
                    round(wait.seconds, 3),
                    wait.modelled,
                    describe(
                        wait.purpose,
                        wait.url,
                        wait.outcome,
                        wait.status,
                        wait.seconds,
                        wait.modelled,
                    ),
                )
            )
    capped = revocation > settings.revocation_timeout_s
    if capped:
        causes.append(
            Cause(
                Purpose.CRL,
                "",
                settings.revocation_timeout_s,
                True,
                f"revocation checks together stop at the accumulated time-out of "
                f"{settings.revocation_timeout_s:.0f} s",
            )
        )
        revocation = settings.revocation_timeout_s
    causes.sort(key=lambda c: -c.seconds)
    return StallPrediction(round(total + revocation, 3), tuple(causes), capped)


def wants_root_list(*, anchored: bool, pinned: bool, settings: WindowsSettings) -> bool:
    """Whether Windows fetches the root list: the path's root is not trusted (neither a
    trust anchor nor pinned, i.e. in the client's Root store) and root update is on."""
    return not anchored and not pinned and settings.root_update


def wants_revocation(*, anchored: bool, pinned: bool) -> bool:
    """Whether Windows checks revocation: only for a chain that ends in a trusted root."""
    return anchored or pinned


@dataclass(frozen=True)
class RevocationAttempt:
    """One revocation retrieval for the certificate at ``cert_index`` of the path;
    ``answered`` is true when it gave a status (good or revoked)."""

    cert_index: int
    purpose: Purpose
    answered: bool


def counted_revocation(
    attempts: Sequence[RevocationAttempt], settings: WindowsSettings
) -> frozenset[int]:
    """Positions in *attempts* that Windows makes: per certificate, OCSP then CRL (or CRL
    first, a setting), stopping at the first retrieval that gives a status."""
    order = (Purpose.OCSP, Purpose.CRL) if settings.ocsp_first else (Purpose.CRL, Purpose.OCSP)
    counted: set[int] = set()
    for index in sorted({a.cert_index for a in attempts}):
        mine = [
            (position, attempt)
            for purpose in order
            for position, attempt in enumerate(attempts)
            if attempt.cert_index == index and attempt.purpose == purpose
        ]
        for position, attempt in mine:
            counted.add(position)
            if attempt.answered:
                break
    return frozenset(counted)
