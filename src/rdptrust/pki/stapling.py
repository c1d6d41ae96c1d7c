"""What a stapled OCSP answer says (RFC 6066 8, RFC 6960 4.2), read without judging trust.

The probe asks for a staple on every handshake (status_request) and keeps the DER the
host sent. Windows' chain engine uses a stapled answer in place of its own OCSP
retrieval, so whether the host staples, and what the staple says, decides whether
the client waits on the responder at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from cryptography import x509
from cryptography.x509 import ocsp

from rdptrust.errors import PkiError
from rdptrust.model.retrieval import RevocationCheck, RevocationStatus
from rdptrust.model.windows import StapleUse
from rdptrust.pki.facts import load_certificate
from rdptrust.pki.revocation import check_ocsp


def stapled_ocsp_status(der: bytes) -> str | None:
    """``good``, ``revoked`` or ``unknown`` for a successful single response; the
    response status (``try_later``, ``unauthorized``, …) when it was not successful;
    ``None`` when *der* is not an OCSP response at all."""
    try:
        response = ocsp.load_der_ocsp_response(der)
    except (ValueError, x509.InvalidVersion):
        return None
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return response.response_status.name.lower()
    try:
        return response.certificate_status.name.lower()
    except ValueError:  # several single responses: the first is the leaf's by convention
        for single in response.responses:
            return single.certificate_status.name.lower()
    return None


def check_stapled_ocsp(
    staple: bytes | None, chain: Sequence[bytes], *, now: dt.datetime | None = None
) -> RevocationCheck | None:
    """Judge the host's stapled answer for its leaf against the issuer it served.

    ``None`` when there is no staple or the host sent no issuer certificate (the issuer
    must then come from AIA or a store: the caller's path, not this function's).
    """
    if staple is None or len(chain) < 2:
        return None
    try:
        leaf, issuer = load_certificate(chain[0]), load_certificate(chain[1])
    except PkiError:
        return None
    return check_ocsp(staple, leaf, issuer, now=now)


def staple_use(
    staple: bytes | None,
    path: Sequence[x509.Certificate],
    *,
    now: dt.datetime | None = None,
) -> StapleUse | None:
    """Whether the chain engine takes *staple* for the leaf of *path* (the path built,
    leaf first), and why (rule ``stapled-ocsp``: WINDOWS.md §4).

    Used when it is a successful answer for the leaf's serial, from the issuer on the
    path (its key hash, signed by it or a responder it delegated), current at *now*, and
    says good or revoked; otherwise not used, with the reason. ``None``: no staple.
    """
    if staple is None:
        return None
    if len(path) < 2:
        return StapleUse(False, "the leaf's issuer is not known, so the answer cannot be checked")
    check = check_ocsp(staple, path[0], path[1], now=now)
    if check.status in (RevocationStatus.GOOD, RevocationStatus.REVOKED):
        return StapleUse(True, check.detail, revoked=check.status == RevocationStatus.REVOKED)
    return StapleUse(False, check.detail)
