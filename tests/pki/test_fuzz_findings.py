"""Inputs the fuzzer found (tests/vectors/fuzz): each is judged unusable or refused as the
remote side's error, never an internal one.

A hostile responder could send any of them; before the fix cryptography's
``InvalidVersion`` (not a ``ValueError``) escaped ``check_crl`` and ``check_ocsp``.
"""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from fixtures.vectors import load_hex
from pki.certs_for_tests import hierarchy
from rdptrust.errors import RemoteProtocolError
from rdptrust.model.retrieval import RevocationStatus
from rdptrust.pki.facts import parse_issuers
from rdptrust.pki.revocation import check_crl, check_ocsp
from rdptrust.protocol.credssp import parse_ts_request
from rdptrust.protocol.ntlm import parse_negotiate

CHAIN = hierarchy("fuzz.example.test", slot=3)


def test_a_crl_with_a_broken_issuer_name_is_unusable() -> None:
    data = load_hex("fuzz/crl-issuer-bitstring.hex")
    check = check_crl(data, CHAIN.leaf.cert, CHAIN.intermediate.cert)
    assert check.status == RevocationStatus.INVALID
    assert "cannot be decoded" in check.detail


def test_a_crl_of_version_5_is_not_a_crl() -> None:
    data = load_hex("fuzz/crl-version-5.hex")
    check = check_crl(data, CHAIN.leaf.cert, CHAIN.intermediate.cert)
    assert check.status == RevocationStatus.INVALID
    assert "not a CRL" in check.detail
    assert check_crl(data, CHAIN.leaf.cert, CHAIN.intermediate.cert, delta=True).status == (
        RevocationStatus.INVALID
    )


@pytest.mark.parametrize(
    "name", ["fuzz/ocsp-cert-version-6-a.hex", "fuzz/ocsp-cert-version-6-b.hex"]
)
def test_an_ocsp_answer_carrying_a_version_6_certificate_is_unusable(name: str) -> None:
    data = load_hex(name)
    assert check_ocsp(data, CHAIN.leaf.cert, CHAIN.intermediate.cert).status == (
        RevocationStatus.INVALID
    )
    # The answer's carried certificates are read once its serial is the certificate's and
    # its issuer key hash matches (not derived for Ed25519 issuers): the path the fuzzer took
    leaf, issuer = _same_serial(ocsp.load_der_ocsp_response(data).serial_number)
    check = check_ocsp(data, leaf, issuer)
    assert check.status == RevocationStatus.INVALID


def _same_serial(serial: int) -> tuple[x509.Certificate, x509.Certificate]:
    key = ed25519.Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fuzz Issuer")])

    def cert(subject: x509.Name, number: int) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(number)
            .not_valid_before(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
            .not_valid_after(dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
            .sign(key, None)
        )

    leaf = cert(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fuzz")]), serial)
    return leaf, cert(name, 1)


@pytest.mark.parametrize(
    "name",
    ["fuzz/crl-version-5.hex", "fuzz/ocsp-cert-version-6-a.hex", "fuzz/ocsp-cert-version-6-b.hex"],
)
def test_an_aia_answer_of_such_bytes_holds_no_issuer(name: str) -> None:
    assert parse_issuers(load_hex(name)) == []


def test_a_tsrequest_version_out_of_range_is_the_remotes_error() -> None:
    data = load_hex("fuzz/tsrequest-version-5100339712.hex")
    with pytest.raises(RemoteProtocolError, match="version 5100339712 is out of range"):
        parse_ts_request(data)


def test_a_negotiate_with_a_non_ascii_domain_is_read() -> None:
    message = parse_negotiate(load_hex("fuzz/negotiate-domain-not-ascii.hex"))
    assert message.domain_name is not None
    assert message.domain_name.isascii()
    assert "?" in message.domain_name
