"""Certificate builders for RDP hosts and their CA: extensions as Windows expects them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from rdptrust.pki.facts import RDP_AUTHENTICATION_OID

#: Remote Desktop Authentication (szOID_KP_RDP_AUTH... as Windows names it).
RDP_AUTH_EKU = x509.ObjectIdentifier(RDP_AUTHENTICATION_OID)


def with_pki_urls(
    builder: x509.CertificateBuilder,
    crl: str | None,
    ocsp: str | None,
    ca_issuers: str | None,
) -> x509.CertificateBuilder:
    """*builder* with a CRL distribution point and AIA (OCSP, caIssuers) for the URLs given."""
    if crl:
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl)], None, None, None)
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    access = [
        x509.AccessDescription(method, x509.UniformResourceIdentifier(url))
        for method, url in (
            (AuthorityInformationAccessOID.OCSP, ocsp),
            (AuthorityInformationAccessOID.CA_ISSUERS, ca_issuers),
        )
        if url
    ]
    if access:
        builder = builder.add_extension(x509.AuthorityInformationAccess(access), critical=False)
    return builder


#: Key usage of a CA certificate: it signs certificates and CRLs (and OCSP answers).
CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


def host_certificate_builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: CertificatePublicKeyTypes,
    issuer_public_key: CertificatePublicKeyTypes,
    not_before: dt.datetime,
    not_after: dt.datetime,
    *,
    alt_names: Sequence[x509.GeneralName] = (),
    extended_key_usage: Sequence[x509.ObjectIdentifier] | None = (
        ExtendedKeyUsageOID.SERVER_AUTH,
        RDP_AUTH_EKU,
    ),
    crl: str | None = None,
    ocsp: str | None = None,
    ca_issuers: str | None = None,
) -> x509.CertificateBuilder:
    """The certificate an RDP host serves, issued by a CA, ready to sign.

    An end entity (basic constraints, critical) for digital signature and key
    encipherment (critical), with Server Authentication and Remote Desktop
    Authentication (*extended_key_usage* ``None`` leaves the EKU out), the subject
    alternative names given, key identifiers and the CRL and AIA URLs given.
    """
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if extended_key_usage is not None:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(list(extended_key_usage)), critical=False
        )
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    builder = builder.add_extension(
        x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False
    ).add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public_key),  # type: ignore[arg-type]
        critical=False,
    )
    return with_pki_urls(builder, crl, ocsp, ca_issuers)
