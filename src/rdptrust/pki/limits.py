"""What the Windows client retrieves for a chain, and no more: URL schemes, counts, sizes.

Pure. Windows' own limits are the chain engine's SDK defaults (WINDOWS.md §3, §4):
``MaxUrlRetrievalByteCount`` 100 MiB per URL, ``MaxAIAUrlRetrievalByteCount`` 100 000 bytes,
``MaxAIAUrlCountInCert`` 5, ``MaxAIAUrlRetrievalCountPerChain`` 3, and no HTTPS for AIA
(CryptRetrieveObjectByUrl: HTTPS for CRL and OCSP only). Where Windows documents no limit
(OCSP answer size, revocation URLs per certificate, certificates whose revocation is
checked) the bound is rdptrust's own, chosen well above what real PKIs use, and says so.
Whatever a limit leaves out is an :class:`~rdptrust.model.retrieval.Omission`, reported
as a problem, never dropped silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rdptrust.model import catalog
from rdptrust.model.problems import Problem, Severity
from rdptrust.model.retrieval import Omission, Purpose
from rdptrust.pki.schemes import fetchable

MIB = 1024 * 1024
#: The rule name for the scheme rule, as an :class:`Omission` carries it.
NO_HTTPS_AIA = "no HTTPS for AIA"


@dataclass(frozen=True)
class RetrievalLimits:
    """The limits applied to one chain's retrievals (Windows' defaults unless noted)."""

    #: MaxUrlRetrievalByteCount (documented): a CRL or root list.
    url_bytes: int = 100 * MIB
    #: MaxAIAUrlRetrievalByteCount (documented).
    aia_bytes: int = 100_000
    #: MaxAIAUrlCountInCert (documented).
    aia_urls_per_cert: int = 5
    #: MaxAIAUrlRetrievalCountPerChain (documented).
    aia_retrievals_per_chain: int = 3
    #: rdptrust's own (assumed): real OCSP answers are a few KiB.
    ocsp_bytes: int = 256 * 1024
    #: rdptrust's own (assumed): OCSP URLs, and CRL URLs, per certificate.
    revocation_urls_per_cert: int = 8
    #: rdptrust's own (assumed): path certificates whose revocation is checked.
    revocation_certificates: int = 8

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value <= 0:
                raise ValueError(f"{name} must be positive")


WINDOWS_LIMITS = RetrievalLimits()


def aia_urls(
    urls: Sequence[str], certificate: str | None, limits: RetrievalLimits
) -> tuple[tuple[str, ...], tuple[Omission, ...]]:
    """The AIA caIssuers URLs of one certificate Windows tries, in order, and those it
    does not: past ``MaxAIAUrlCountInCert``, HTTPS, and schemes other than HTTP, LDAP
    and file."""
    omitted: list[Omission] = []
    considered = list(urls[: limits.aia_urls_per_cert])
    if len(urls) > limits.aia_urls_per_cert:
        omitted.append(
            Omission(
                Purpose.AIA,
                "MaxAIAUrlCountInCert",
                f"{len(urls) - limits.aia_urls_per_cert} of {len(urls)} caIssuers URLs are past"
                f" Windows' limit of {limits.aia_urls_per_cert} per certificate and not tried",
                certificate=certificate,
            )
        )
    kept: list[str] = []
    for url in considered:
        if url.lower().startswith("https://"):
            omitted.append(
                Omission(
                    Purpose.AIA,
                    NO_HTTPS_AIA,
                    f"Windows does not fetch AIA over HTTPS, so {url} is never tried",
                    url=url,
                    certificate=certificate,
                )
            )
        elif fetchable(Purpose.AIA, url):
            kept.append(url)
    return tuple(kept), tuple(omitted)


def aia_attempts_left(made: int, limits: RetrievalLimits) -> bool:
    """Whether one more AIA retrieval fits ``MaxAIAUrlRetrievalCountPerChain``."""
    return made < limits.aia_retrievals_per_chain


def aia_over_chain_limit(left: Sequence[str], limits: RetrievalLimits) -> Omission | None:
    """The omission for AIA URLs left untried once the per-chain count is reached."""
    if not left:
        return None
    return Omission(
        Purpose.AIA,
        "MaxAIAUrlRetrievalCountPerChain",
        f"{len(left)} more caIssuers URLs not tried: Windows makes at most "
        f"{limits.aia_retrievals_per_chain} AIA retrievals per chain",
    )


def revocation_urls(
    purpose: Purpose, urls: Sequence[str], certificate: str, limits: RetrievalLimits
) -> tuple[tuple[str, ...], tuple[Omission, ...]]:
    """The OCSP or CRL URLs of one certificate that are fetched (OCSP over HTTP(S); CRL
    also over ldap and file: :func:`rdptrust.pki.schemes.fetchable`), and the excess."""
    usable = [u for u in urls if fetchable(purpose, u)]
    cap = limits.revocation_urls_per_cert
    if len(usable) <= cap:
        return tuple(usable), ()
    what = "OCSP" if purpose == Purpose.OCSP else "CRL"
    return tuple(usable[:cap]), (
        Omission(
            purpose,
            "revocation URLs per certificate",
            f"{len(usable) - cap} of {len(usable)} {what} URLs not fetched: past rdptrust's "
            f"own limit of {cap} per certificate (Windows documents none; it stops at the "
            "first that answers)",
            certificate=certificate,
        ),
    )


def revocation_certificates(count: int, limits: RetrievalLimits) -> tuple[int, Omission | None]:
    """How many of *count* path certificates get revocation checked, and the excess."""
    cap = limits.revocation_certificates
    if count <= cap:
        return count, None
    return cap, Omission(
        Purpose.CRL,
        "certificates checked for revocation",
        f"revocation of {count - cap} of {count} path certificates not checked: past "
        f"rdptrust's own limit of {cap} per chain",
    )


def body_limit(purpose: Purpose, limits: RetrievalLimits) -> int:
    """The most bytes one retrieval of *purpose* may bring."""
    if purpose == Purpose.AIA:
        return limits.aia_bytes
    if purpose == Purpose.OCSP:
        return limits.ocsp_bytes
    return limits.url_bytes


def omission_problems(omitted: Sequence[Omission]) -> tuple[Problem, ...]:
    """One problem per omission: HTTPS AIA, or a limit reached."""
    problems = []
    for o in omitted:
        where = f" ({o.certificate})" if o.certificate else ""
        if o.rule == NO_HTTPS_AIA:
            problems.append(catalog.AIA_OVER_HTTPS.problem(Severity.WARNING, o.detail + where))
        else:
            problems.append(
                catalog.RETRIEVAL_LIMIT.problem(Severity.WARNING, f"{o.rule}: {o.detail}{where}")
            )
    return tuple(problems)
