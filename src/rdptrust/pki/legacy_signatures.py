"""Certificate signatures cryptography's own check refuses (SHA-1, MD5), verified by hand.

Old Windows hosts still present them; judging them needs to know whether they verify.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import dsa, ec, padding, rsa
from cryptography.x509.oid import SignatureAlgorithmOID


def verify_legacy_signature(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether *issuer*'s key verifies *cert*'s signature (RSA PKCS#1 v1.5, ECDSA, DSA)."""
    algorithm = cert.signature_hash_algorithm
    if algorithm is None:
        return False
    key = issuer.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            if cert.signature_algorithm_oid == SignatureAlgorithmOID.RSASSA_PSS:
                return False
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(algorithm))
        elif isinstance(key, dsa.DSAPublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, algorithm)
        else:
            return False
    except InvalidSignature:
        return False
    return True
