"""Retrievals: how one URL fetch ended, and what a revocation answer said."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from rdptrust.model.text import redact_credentials, redact_url


class FetchOutcome(enum.StrEnum):
    """How one retrieval ended."""

    OK = "ok"
    HTTP_ERROR = "http_error"
    REFUSED = "refused"
    DNS_ERROR = "dns_error"
    TIMEOUT = "timeout"
    INVALID = "invalid"


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
    ROOT_LIST = "root_list"
    AIA = "aia"
    CRL = "crl"
    OCSP = "ocsp"


@dataclass(frozen=True)
class Fetched:
    """One retrieval as made, before the model counts it.

    ``cert_index`` is the position in the path of the certificate a CRL or OCSP
    retrieval concerns (None for the root list and AIA); ``certificate`` that
    certificate's subject (for AIA: whose issuer was fetched). ``revocation`` is what a
    CRL or OCSP answer said, ``detail`` what went wrong or what the answer said.
    """

    purpose: Purpose
    url: str
    result: HttpResult
    cert_index: int | None = None
    revocation: RevocationStatus | None = None
    detail: str | None = None
    certificate: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", redact_url(self.url))
        if self.detail is not None:
            object.__setattr__(self, "detail", redact_credentials(self.detail))
