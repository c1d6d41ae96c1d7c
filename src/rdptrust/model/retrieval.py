"""Retrievals: how one URL fetch ended, and what a revocation answer said."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from rdptrust.model.text import redact_credentials, redact_url

#: Connections the chain's retrievals (AIA, CRL, OCSP) of one assessment may hold open at
#: once (a scan budgets its open files by it).
MAX_RETRIEVAL_CONNECTIONS = 32
#: Connections the certificate trust list syncs of one assessment may hold open at once.
LIST_SYNC_CONNECTIONS = 6


class FetchOutcome(enum.StrEnum):
    """How one retrieval ended."""

    OK = "ok"
    HTTP_ERROR = "http_error"
    REFUSED = "refused"
    DNS_ERROR = "dns_error"
    TIMEOUT = "timeout"
    INVALID = "invalid"
    #: not tried: this machine hit a limit (open files, buffers); says nothing of the URL
    LOCAL_ERROR = "local_error"
    SKIPPED = "skipped"
    """Not made: the destination policy refused its address (see ``error``)."""


class ConnectOutcome(enum.StrEnum):
    """How one TCP connect to one resolved address ended."""

    CONNECTED = "connected"
    REFUSED = "refused"
    RESET = "reset"
    TIMEOUT = "timeout"
    #: no route, network down and the like (a fast local failure)
    UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class ConnectAttempt:
    """One connect of a retrieval to one address (in the order they were tried)."""

    address: str
    port: int
    outcome: ConnectOutcome
    elapsed_ms: float


@dataclass(frozen=True)
class HttpResult:
    """One retrieval. ``status`` is ``None`` when no HTTP answer came; ``body`` is ``None``
    unless the server answered 2xx; ``error`` says what went wrong in words.

    A password in the URL (``http://user:secret@host/``) is kept as ``user:***@`` in
    ``url`` and ``error``, so no metric, report or log built from a result can show it.
    """

    url: str
    outcome: FetchOutcome
    status: int | None
    elapsed_ms: float
    body: bytes | None
    error: str | None
    attempts: tuple[ConnectAttempt, ...] = ()
    """The connects made for it, address after address (empty: a kept-alive connection
    was reused, or none was tried)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", redact_url(self.url))
        if self.error is not None:
            object.__setattr__(self, "error", redact_credentials(self.error))


class RevocationStatus(enum.StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"
    INVALID = "invalid"


@dataclass(frozen=True)
class RevocationCheck:
    """What one CRL or OCSP answer says of one certificate; ``detail`` in words."""

    status: RevocationStatus
    detail: str
    revoked_at: dt.datetime | None = None


class Purpose(enum.StrEnum):
    """What a retrieval is for: the trusted list (``authrootseq.txt``, ``authrootstl.cab``),
    the untrusted list (``disallowedcertseq.txt``, ``disallowedcertstl.cab``), pin rules
    (``pinrulesstl.cab``), an issuer over AIA, a CRL or an OCSP answer, or the proxy's
    auto-configuration (WPAD discovery, a PAC download)."""

    ROOT_LIST = "root_list"
    DISALLOWED_LIST = "disallowed_list"
    PIN_RULES = "pin_rules"
    AIA = "aia"
    CRL = "crl"
    OCSP = "ocsp"
    #: proxy auto-config: WPAD discovery (wpad.<domain>/wpad.dat) or a PAC URL's download
    WPAD = "wpad"


@dataclass(frozen=True)
class Fetched:
    """One retrieval as made, before the model counts it.

    ``cert_index`` is the position in the path of the certificate a CRL or OCSP
    retrieval concerns (None for the root list and AIA); ``certificate`` that
    certificate's subject (for AIA: whose issuer was fetched). ``revocation`` is what a
    CRL or OCSP answer said, ``detail`` what went wrong or what the answer said.
    ``delta`` marks a delta CRL (a certificate's Freshest CRL), fetched after its base CRL.
    """

    purpose: Purpose
    url: str
    result: HttpResult
    cert_index: int | None = None
    revocation: RevocationStatus | None = None
    detail: str | None = None
    certificate: str | None = None
    delta: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", redact_url(self.url))
        if self.detail is not None:
            object.__setattr__(self, "detail", redact_credentials(self.detail))


@dataclass(frozen=True)
class Omission:
    """A retrieval rdptrust did not make because the Windows client would not make it.

    ``rule`` names the limit or rule (``MaxAIAUrlCountInCert``, ``no HTTPS for AIA`` …),
    ``url`` the URL left out (None when a count of them is meant), ``certificate`` the
    subject it belongs to (None for the chain), ``detail`` the whole reason in words.
    """

    purpose: Purpose
    rule: str
    detail: str
    url: str | None = None
    certificate: str | None = None
