"""Certificates the lab's RDP endpoint can present, made at run time with ``cryptography``.

- :mod:`~rdptrust.lab.certs.kinds`: the host certificate kinds (:class:`CertKind`), the
  Windows-like self-signed certificate, :func:`make_host_credentials`;
- :mod:`~rdptrust.lab.certs.ca`: the lab CA (:class:`LabCa`), its URLs and revocations;
- :mod:`~rdptrust.lab.certs.credentials`: what a host serves (:class:`HostCredentials`),
  and loading a user-supplied pair;
- :mod:`~rdptrust.lab.certs.signing`: keys, names and signatures, SHA-1 included.
"""

from __future__ import annotations

from rdptrust.lab.certs.ca import CA_ISSUED_VALIDITY, IssuerName, LabCa, PkiUrls, Revocation
from rdptrust.lab.certs.credentials import (
    MAX_PEM_FILE_BYTES,
    HostCredentials,
    load_host_credentials,
)
from rdptrust.lab.certs.kinds import (
    LAB_DOMAIN,
    RDP_AUTHENTICATION_OID,
    SELF_SIGNED_VALIDITY,
    WRONG_NAME,
    CertKind,
    make_host_credentials,
    windows_self_signed,
)
from rdptrust.lab.certs.signing import BACKDATE, SignatureHash, new_rsa_key, sha256_fingerprint

__all__ = [
    "BACKDATE",
    "CA_ISSUED_VALIDITY",
    "LAB_DOMAIN",
    "MAX_PEM_FILE_BYTES",
    "RDP_AUTHENTICATION_OID",
    "SELF_SIGNED_VALIDITY",
    "WRONG_NAME",
    "CertKind",
    "HostCredentials",
    "IssuerName",
    "LabCa",
    "PkiUrls",
    "Revocation",
    "SignatureHash",
    "load_host_credentials",
    "make_host_credentials",
    "new_rsa_key",
    "sha256_fingerprint",
    "windows_self_signed",
]
