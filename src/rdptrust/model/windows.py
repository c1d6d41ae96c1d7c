"""The modelled Windows client's settings, one reason it waits, and the prediction.

The rules behind every figure are listed in :mod:`rdptrust.pki.rules` (WINDOWS.md).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from rdptrust.model.retrieval import Purpose

#: Where Windows Update serves the certificate trust lists (WINDOWS.md §2).
DEFAULT_CTL_DIRECTORY_URL = (
    "http://ctldl.windowsupdate.com/msdownload/update/v3/static/trustedr/en/"
)
DEFAULT_ROOT_LIST_URL = DEFAULT_CTL_DIRECTORY_URL + "authrootstl.cab"


class RevocationRegime(enum.StrEnum):
    """Which revocation time-out regime the chain engine runs (WINDOWS.md §3).

    ``accumulative``: ``CERT_CHAIN_REVOCATION_ACCUMULATIVE_TIMEOUT`` (half the remaining
    20 s budget per URL); ``per-url``: 15 s per URL without a cap; ``both``: the
    prediction is a range over the two (which flags mstsc passes is not documented).
    """

    ACCUMULATIVE = "accumulative"
    PER_URL = "per-url"
    BOTH = "both"


class ClientProfile(enum.StrEnum):
    """The Windows client version modelled (WINDOWS.md §7 and §2)."""

    WIN7 = "win7"
    WIN81 = "win8.1"
    WIN10 = "win10"

    @property
    def os_version(self) -> str:
        """The version CryptoAPI names in its User-Agent, ``Microsoft-CryptoAPI/<version>``
        (WINDOWS.md §4: 6.1 in the Windows 7 log)."""
        return {"win7": "6.1", "win8.1": "6.3", "win10": "10.0"}[self.value]


class Basis(enum.StrEnum):
    """What a modelled second rests on."""

    DOCUMENTED = "documented"
    OBSERVED = "observed"
    ASSUMED = "assumed"


@dataclass(frozen=True)
class WindowsSettings:
    """The client's chain-engine settings the model uses (all settable by flags).

    ``url_timeout_s`` is ChainUrlRetrievalTimeoutMilliseconds, ``revocation_timeout_s``
    ChainRevAccumulativeUrlRetrievalTimeoutMilliseconds (the accumulative budget).
    ``root_update`` is the trusted list's switch (off: Method 2), ``disallowed_update``
    the untrusted list's and pin rules' (EnableDisallowedCertAutoUpdate), ``ctl_due``
    whether the cached lists are due for a sync, ``root_dir_url`` an internal mirror
    (RootDirUrl; None: Windows Update).

    ``domain`` is the clients' AD domain: ``ldap:///`` URLs (no host) are then measured
    against its DCs (DNS SRV ``_ldap._tcp.dc._msdcs.DOMAIN``), asked of ``dns_server``
    (``ADDR[:PORT]``; None: the system resolver); without it their wait is modelled.
    """

    url_timeout_s: float = 15.0
    revocation_timeout_s: float = 20.0
    list_timeout_s: float = 15.0
    """What one blocked certificate-trust-list fetch costs (rule ``ctl-fetch-wait``): field
    reports say about 15 s; no document ties it to ChainUrlRetrievalTimeoutMilliseconds
    (WINDOWS.md §2), so it is a setting of its own, not ``url_timeout_s``."""
    root_update: bool = True
    ocsp_first: bool = True
    revocation_timeouts: RevocationRegime = RevocationRegime.BOTH
    disallowed_update: bool = True
    ctl_due: bool = True
    client: ClientProfile = ClientProfile.WIN10
    root_dir_url: str | None = None
    domain: str | None = None
    dns_server: str | None = None
    refused_connect_s: float = 2.0
    """What one refused or reset connect costs on Windows (SYN retries; libuv PR 2896)."""
    tcp_give_up_s: float = 21.0
    """When Windows gives up a connect that gets no answer (KB 2786464)."""


@dataclass(frozen=True)
class Cause:
    """One reason for waiting: which retrieval, how many seconds, and why, in words.

    ``seconds`` is the wait of the first connection in the longer regime; ``rule`` the
    rule id of :mod:`rdptrust.pki.rules` it follows and ``basis`` what it rests on;
    ``later`` whether later connections pay it again.
    """

    purpose: Purpose
    url: str
    seconds: float
    modelled: bool
    text: str
    rule: str = ""
    basis: Basis = Basis.OBSERVED
    later: bool = True


@dataclass(frozen=True)
class WaitRange:
    """A predicted wait over the modelled revocation regimes; equal ends for one regime."""

    low_s: float
    high_s: float


@dataclass(frozen=True)
class RuleBasis:
    """One rule a prediction used: its id, what it rests on, and its source."""

    rule: str
    status: Basis
    source: str


@dataclass(frozen=True)
class StapleUse:
    """Whether the chain engine takes the host's stapled OCSP answer for its leaf
    (``used``: for the leaf, from its issuer, current, good or ``revoked``) and why, in
    words."""

    used: bool
    detail: str
    revoked: bool = False


@dataclass(frozen=True)
class Prediction:
    """How long the client sits on "Securing remote connection": the first connection and
    each later one, the rules used, what is assumed, and what is not measured.
    ``stapled_ocsp`` says whether the host's stapled OCSP answer was used (None: the
    host stapled none)."""

    first_connection: WaitRange
    later_connections: WaitRange
    basis: tuple[RuleBasis, ...]
    assumptions: tuple[str, ...]
    not_measured: tuple[str, ...]
    regimes: str
    stapled_ocsp: StapleUse | None = None


NO_PREDICTION = Prediction(WaitRange(0.0, 0.0), WaitRange(0.0, 0.0), (), (), (), "")
