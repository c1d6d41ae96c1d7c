"""A certificate's encodings that are compared or hashed as bytes: the whole DER, and the
parts of its TBSCertificate.

The whole DER names a certificate (its fingerprints) and tells copies apart. The issuer
and subject names as encoded: names encoded alike are equal, which decides most name
comparisons without decoding either. The SubjectPublicKeyInfo, whose SHA-256 names a
key. Each is read once per certificate.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from rdptrust.protocol import der

#: Certificates whose parts are remembered (the same as the decoded names' cache).
CACHE_SIZE = 256


@functools.lru_cache(maxsize=CACHE_SIZE)
def certificate_der(cert: x509.Certificate) -> bytes:
    """*cert*'s DER encoding (fingerprints and path building ask for it several times)."""
    return cert.public_bytes(serialization.Encoding.DER)


class TbsParts(NamedTuple):
    """Encodings read from a DER TBSCertificate (RFC 5280 4.1), header included."""

    issuer: bytes
    subject: bytes
    spki: bytes


@functools.lru_cache(maxsize=CACHE_SIZE)
def tbs_parts(cert: x509.Certificate) -> TbsParts | Exception:
    """The issuer, subject and SubjectPublicKeyInfo encodings of *cert*, or the error that
    says why they cannot be read (returned, and remembered, not raised).

    Read from the bytes rather than re-encoded (``public_key()``), which fails for key
    types ``cryptography`` does not know and would not keep the sender's encoding.
    """
    try:
        tbs = cert.tbs_certificate_bytes
        outer = der.read_element(tbs, 0, len(tbs), what="TBSCertificate")
        if outer.tag != der.Tag.SEQUENCE:
            raise ValueError("TBSCertificate is not a SEQUENCE")
        # the version, if any, and the six fields up to the key: the rest is not read
        fields = der.spans(tbs, outer.start, outer.end, 7, what="TBSCertificate field")
    except Exception as exc:
        return exc
    if fields and fields[0][0] == der.CONTEXT_CONSTRUCTED:  # explicit [0] version
        fields = fields[1:]
    # serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo
    if len(fields) < 6:
        return ValueError("TBSCertificate is too short")
    issuer, subject, spki = fields[2], fields[4], fields[5]
    return TbsParts(
        tbs[issuer[1] : issuer[2]], tbs[subject[1] : subject[2]], tbs[spki[1] : spki[2]]
    )
