"""Revocation data: check a downloaded CRL or OCSP response for one certificate.

Both checks verify the signature against the issuer (or, for OCSP, a responder the issuer
delegated with the OCSP Signing EKU) before believing what the data says.

An OCSP answer may carry any number of certificates (one hostile answer carried 28,000
in 9.7 MB); ``cryptography`` would decode them all, in time that grows faster than their
number. They are counted in the DER here instead, and only the first
:data:`MAX_OCSP_CERTIFICATES` are decoded and tried as the delegated responder
(assumed limit: an answer needs one; Windows documents none).
"""

from __future__ import annotations

import base64
import datetime as dt
from urllib.parse import quote

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from rdptrust.errors import RemoteProtocolError
from rdptrust.model.retrieval import RevocationCheck, RevocationStatus
from rdptrust.pki.budget import WorkBudget
from rdptrust.pki.facts import as_utc, is_signed_by
from rdptrust.pki.quiet import quiet_parsing
from rdptrust.protocol import der

#: Certificates of an OCSP answer considered as its signer (rdptrust's own bound: a real
#: answer carries one delegated responder at most; a hostile one, thousands).
MAX_OCSP_CERTIFICATES = 4
#: How far in the future a CRL's or OCSP answer's issue time may lie (clocks differ).
CLOCK_SKEW = dt.timedelta(minutes=5)


def delta_crl_urls(cert: x509.Certificate) -> tuple[str, ...]:
    """The URLs of *cert*'s delta CRL (Freshest CRL extension, RFC 5280 4.2.1.15)."""
    try:
        points = cert.extensions.get_extension_for_class(x509.FreshestCRL).value
    except (x509.ExtensionNotFound, ValueError):
        return ()
    return tuple(
        name.value
        for point in points
        for name in point.full_name or ()
        if isinstance(name, x509.UniformResourceIdentifier)
    )


def ocsp_get_url(url: str, request: bytes) -> str:
    """The GET form of an OCSP request (RFC 6960 A.1), as Windows sends it first: the
    base64 request, URL-encoded, appended to *url* (``http://ocsp.example/MFEwTzBN…``)."""
    encoded = quote(base64.b64encode(request).decode("ascii"), safe="")
    return (url if url.endswith("/") else url + "/") + encoded


def check_crl(
    data: bytes,
    cert: x509.Certificate,
    issuer: x509.Certificate,
    *,
    now: dt.datetime | None = None,
    delta: bool = False,
) -> RevocationCheck:
    """Check *cert* against the CRL in *data* (DER or PEM) signed by *issuer*; with
    *delta*, the CRL must be a delta CRL (it carries a Delta CRL Indicator)."""
    try:
        crl = (
            x509.load_pem_x509_crl(data)
            if data.lstrip().startswith(b"-----")
            else x509.load_der_x509_crl(data)
        )
    except (ValueError, x509.InvalidVersion) as exc:  # a version no CRL has is no CRL
        return RevocationCheck(RevocationStatus.INVALID, f"not a CRL ({exc})")
    try:
        if delta:
            try:
                crl.extensions.get_extension_for_class(x509.DeltaCRLIndicator)
            except x509.ExtensionNotFound:
                return RevocationCheck(RevocationStatus.INVALID, "not a delta CRL")
        with quiet_parsing():
            return _judge_crl(crl, cert, issuer, now)
    except (ValueError, TypeError, x509.InvalidVersion) as exc:
        # cryptography decodes a CRL's fields lazily (a name attribute of the wrong string
        # type is a TypeError): a broken one fails here, not at load
        return RevocationCheck(RevocationStatus.INVALID, f"CRL cannot be decoded ({exc})")


def _judge_crl(
    crl: x509.CertificateRevocationList,
    cert: x509.Certificate,
    issuer: x509.Certificate,
    now: dt.datetime | None,
) -> RevocationCheck:
    if crl.issuer != issuer.subject:
        return RevocationCheck(RevocationStatus.INVALID, "CRL issued by another CA")
    try:
        valid = crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        return RevocationCheck(RevocationStatus.INVALID, f"CRL signature cannot be checked ({exc})")
    if not valid:
        return RevocationCheck(RevocationStatus.INVALID, "CRL signature does not verify")
    moment = as_utc(now)
    if crl.next_update_utc is not None and crl.next_update_utc < moment:
        return RevocationCheck(
            RevocationStatus.INVALID, f"CRL expired on {crl.next_update_utc:%Y-%m-%d %H:%M} UTC"
        )
    if crl.last_update_utc > moment + CLOCK_SKEW:
        return RevocationCheck(
            RevocationStatus.INVALID,
            f"CRL not valid before {crl.last_update_utc:%Y-%m-%d %H:%M} UTC (issued in the "
            "future: check the CA's clock and this machine's)",
        )
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    if entry is not None:
        return RevocationCheck(
            RevocationStatus.REVOKED,
            f"revoked on {entry.revocation_date_utc:%Y-%m-%d} (CRL)",
            entry.revocation_date_utc,
        )
    return RevocationCheck(RevocationStatus.GOOD, "not on the CRL")


def ocsp_request(cert: x509.Certificate, issuer: x509.Certificate) -> bytes:
    """A DER OCSP request for *cert* (SHA-1 CertID, as Windows sends)."""
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())
    return builder.build().public_bytes(serialization.Encoding.DER)


def _key_hash(issuer: x509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes | None:
    """The CertID issuerKeyHash: the hash of the issuer's subjectPublicKey bits (RFC 6960);
    None for key types whose bits are not derived here (the signature check still runs)."""
    key = issuer.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        bits = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    elif isinstance(key, ec.EllipticCurvePublicKey):
        bits = key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    else:
        return None
    digest = hashes.Hash(algorithm)
    digest.update(bits)
    return digest.finalize()


def _answer_certificates(data: bytes) -> tuple[list[x509.Certificate], int]:
    """The first :data:`MAX_OCSP_CERTIFICATES` certificates of a BasicOCSPResponse, and
    how many it holds (RFC 6960 4.2.1: ``certs [0] EXPLICIT SEQUENCE OF Certificate``).

    Read from the DER without decoding the rest; ``([], 0)`` when there are none or the
    structure is not the expected one (the caller has parsed it already).
    """
    try:
        outer = der.expect(data, 0, len(data), der.Tag.SEQUENCE, what="OCSP")
        parts = list(der.children(data, outer.start, outer.end, what="OCSP"))
        if len(parts) < 2 or parts[1].tag != der.CONTEXT_CONSTRUCTED:
            return [], 0
        body = der.expect(data, parts[1].start, parts[1].end, der.Tag.SEQUENCE, what="OCSP")
        fields = list(der.children(data, body.start, body.end, what="OCSP"))
        if len(fields) != 2 or fields[1].tag != der.Tag.OCTET_STRING:
            return [], 0
        basic = der.expect(data, fields[1].start, fields[1].end, der.Tag.SEQUENCE, what="OCSP")
        items = der.children(data, basic.start, basic.end, what="OCSP")
        certs_field = None
        for index, item in enumerate(items):
            if index == 3 and item.tag == der.CONTEXT_CONSTRUCTED:
                certs_field = item
            if index >= 3:
                break
        if certs_field is None:
            return [], 0
        listing = der.expect(
            data, certs_field.start, certs_field.end, der.Tag.SEQUENCE, what="OCSP"
        )
        found: list[x509.Certificate] = []
        total = 0
        for element in der.children(data, listing.start, listing.end, what="OCSP"):
            if total < MAX_OCSP_CERTIFICATES:
                try:
                    found.append(x509.load_der_x509_certificate(element.encoding(data)))
                except (ValueError, x509.InvalidVersion):
                    pass  # an unreadable certificate cannot be the signer
            total += 1
        return found, total
    except RemoteProtocolError:
        return [], 0


def _responder_ok(
    response: ocsp.OCSPResponse,
    issuer: x509.Certificate,
    carried: list[x509.Certificate],
    budget: WorkBudget,
) -> tuple[bool, str]:
    """Whether the response is signed by the issuer or a responder it delegated."""
    signers = [issuer, *carried]
    for signer in signers:
        if not budget.ok():
            return False, f"OCSP response not checked: {budget.stopped}"
        if signer is not issuer:
            if not is_signed_by(signer, issuer):
                continue
            try:
                eku = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            except (x509.ExtensionNotFound, ValueError):
                continue
            if ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
                continue
        try:
            key = signer.public_key()
            if response.signature_hash_algorithm is None:
                continue
            if isinstance(key, rsa.RSAPublicKey):
                key.verify(
                    response.signature,
                    response.tbs_response_bytes,
                    padding.PKCS1v15(),
                    response.signature_hash_algorithm,
                )
            elif isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(
                    response.signature,
                    response.tbs_response_bytes,
                    ec.ECDSA(response.signature_hash_algorithm),
                )
            else:
                continue
        except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
            continue
        return (
            True,
            "signed by the issuer" if signer is issuer else "signed by a delegated responder",
        )
    return False, "OCSP response signature does not verify"


def check_ocsp(
    data: bytes,
    cert: x509.Certificate,
    issuer: x509.Certificate,
    *,
    now: dt.datetime | None = None,
    budget: WorkBudget | None = None,
) -> RevocationCheck:
    """Check *cert* against the DER OCSP response in *data* (within *budget*)."""
    try:
        response = ocsp.load_der_ocsp_response(data)
    except (ValueError, x509.InvalidVersion) as exc:
        return RevocationCheck(RevocationStatus.INVALID, f"not an OCSP response ({exc})")
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return RevocationCheck(
            RevocationStatus.INVALID, f"OCSP responder said {response.response_status.name}"
        )
    try:
        if response.serial_number != cert.serial_number:
            return RevocationCheck(RevocationStatus.INVALID, "OCSP answer is for another serial")
        expected = _key_hash(issuer, response.hash_algorithm)
        if expected is not None and response.issuer_key_hash != expected:
            return RevocationCheck(RevocationStatus.INVALID, "OCSP answer is for another issuer")
        carried, total = _answer_certificates(data)
        ok, how = _responder_ok(response, issuer, carried, budget or WorkBudget())
        if not ok:
            if total > MAX_OCSP_CERTIFICATES:
                how += (
                    f" (the answer carries {total} certificates; only the first "
                    f"{MAX_OCSP_CERTIFICATES} were tried as its signer)"
                )
            return RevocationCheck(RevocationStatus.INVALID, how)
        moment = as_utc(now)
        next_update = response.next_update_utc
        if next_update is not None and next_update < moment:
            return RevocationCheck(RevocationStatus.INVALID, "OCSP answer is out of date")
        if response.this_update_utc > moment + CLOCK_SKEW:
            return RevocationCheck(
                RevocationStatus.INVALID,
                f"OCSP answer not valid before {response.this_update_utc:%Y-%m-%d %H:%M} UTC "
                "(made in the future: check the responder's clock and this machine's)",
            )
        status = response.certificate_status
    except (ValueError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion) as exc:
        return RevocationCheck(RevocationStatus.INVALID, f"OCSP answer unusable ({exc})")
    if status == ocsp.OCSPCertStatus.REVOKED:
        when = response.revocation_time_utc
        return RevocationCheck(
            RevocationStatus.REVOKED,
            f"revoked on {when:%Y-%m-%d} (OCSP)" if when else "revoked (OCSP)",
            when,
        )
    if status == ocsp.OCSPCertStatus.UNKNOWN:
        return RevocationCheck(RevocationStatus.UNKNOWN, "the OCSP responder does not know it")
    return RevocationCheck(RevocationStatus.GOOD, f"good (OCSP, {how})")
