"""Certificate signatures (RSA PKCS#1 v1.5, ECDSA, DSA) verified with the issuer's key,
by the algorithm the certificate names.

Verified here rather than with cryptography's ``verify_directly_issued_by`` because that
check refuses SHA-1 and MD5 signatures, which old Windows hosts still present: judging
them needs to know whether they verify. Every hash goes the same way, so the rule is one:
the algorithm comes from the certificate's signature algorithm identifier, and the key must
be of that algorithm's kind (an RSA key never verifies a signature labelled ECDSA). Other
algorithms (RSA-PSS, EdDSA) are left to cryptography's check.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, padding, rsa
from cryptography.x509.oid import SignatureAlgorithmOID as Oid

_RSA_PKCS1 = frozenset(
    {
        Oid.RSA_WITH_MD5,
        Oid.RSA_WITH_SHA1,
        Oid._RSA_WITH_SHA1,
        Oid.RSA_WITH_SHA224,
        Oid.RSA_WITH_SHA256,
        Oid.RSA_WITH_SHA384,
        Oid.RSA_WITH_SHA512,
    }
)
_ECDSA = frozenset(
    {
        Oid.ECDSA_WITH_SHA1,
        Oid.ECDSA_WITH_SHA224,
        Oid.ECDSA_WITH_SHA256,
        Oid.ECDSA_WITH_SHA384,
        Oid.ECDSA_WITH_SHA512,
    }
)
_DSA = frozenset(
    {
        Oid.DSA_WITH_SHA1,
        Oid.DSA_WITH_SHA224,
        Oid.DSA_WITH_SHA256,
        Oid.DSA_WITH_SHA384,
        Oid.DSA_WITH_SHA512,
    }
)


def verify_signature(cert: x509.Certificate, issuer: x509.Certificate) -> bool | None:
    """Whether *issuer*'s key verifies *cert*'s signature (RSA PKCS#1 v1.5, ECDSA, DSA).

    None when the signature algorithm is none of these (RSA-PSS, EdDSA, unknown): the caller
    asks cryptography's own check then. Raises what cryptography raises for a key or a hash
    it cannot read.
    """
    oid = cert.signature_algorithm_oid
    if oid in _RSA_PKCS1:
        kind: type = rsa.RSAPublicKey
    elif oid in _ECDSA:
        kind = ec.EllipticCurvePublicKey
    elif oid in _DSA:
        kind = dsa.DSAPublicKey
    else:
        return None
    key = issuer.public_key()
    algorithm = cert.signature_hash_algorithm
    if not isinstance(key, kind) or not isinstance(algorithm, hashes.HashAlgorithm):
        return False
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(algorithm))
        else:
            assert isinstance(key, dsa.DSAPublicKey)
            key.verify(cert.signature, cert.tbs_certificate_bytes, algorithm)
    except InvalidSignature:
        return False
    return True
