"""CRL and OCSP checks of one certificate, against the lab CA's real CRLs and OCSP answers."""

from __future__ import annotations

import base64
import datetime as dt
import re
import shutil
import subprocess
import urllib.parse
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from rdptrust.lab.certs import CertKind, HostCredentials, LabCa, make_host_credentials
from rdptrust.lab.pki import ocsp_answer
from rdptrust.model.retrieval import RevocationCheck, RevocationStatus
from rdptrust.pki.revocation import (
    MAX_OCSP_CERTIFICATES,
    check_crl,
    check_ocsp,
    ocsp_get_url,
    ocsp_request,
)

DER = serialization.Encoding.DER
PEM = serialization.Encoding.PEM
FAR_FUTURE = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
#: sha256WithRSAEncryption and md2WithRSAEncryption as DER OIDs (same length).
SHA256_RSA_OID = bytes.fromhex("06092a864886f70d01010b")
MD2_RSA_OID = bytes.fromhex("06092a864886f70d010102")


@pytest.fixture(scope="module")
def ca() -> LabCa:
    return LabCa.generate()


@pytest.fixture(scope="module")
def other_ca() -> LabCa:
    """Another lab CA with the same names as ``ca`` but its own keys."""
    return LabCa.generate()


@pytest.fixture
def host(ca: LabCa) -> HostCredentials:
    return make_host_credentials(CertKind.CA, ca=ca)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def crl_der(ca: LabCa) -> bytes:
    return ca.crl("intermediate").public_bytes(DER)


def answer_for(ca: LabCa, cert: x509.Certificate, now: dt.datetime | None = None) -> bytes:
    return ocsp_answer(ca, ocsp_request(cert, ca.intermediate), now)


def unrecorded_certificate(ca: LabCa) -> x509.Certificate:
    """A certificate signed by the intermediate's key that the lab CA never recorded."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "WIN-UNKNOWN")]))
        .issuer_name(ca.intermediate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(ca.intermediate_key, hashes.SHA256())
    )


def responder_certificate(
    issuer: x509.Certificate,
    issuer_key: CertificateIssuerPrivateKeyTypes,
    key: CertificateIssuerPrivateKeyTypes,
    *,
    ocsp_signing: bool = True,
) -> x509.Certificate:
    """A delegated OCSP responder certificate for *key*, issued by *issuer*."""
    now = _now()
    usages = [ExtendedKeyUsageOID.OCSP_SIGNING if ocsp_signing else ExtendedKeyUsageOID.SERVER_AUTH]
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Lab OCSP Responder")]))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )


def signed_response(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    signer: x509.Certificate,
    signer_key: CertificateIssuerPrivateKeyTypes,
    *,
    status: ocsp.OCSPCertStatus = ocsp.OCSPCertStatus.GOOD,
    include: tuple[x509.Certificate, ...] = (),
) -> bytes:
    """A GOOD (by default) OCSP answer for *cert*, signed by *signer_key*."""
    now = _now()
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=cert,
            issuer=issuer,
            algorithm=hashes.SHA1(),
            cert_status=status,
            this_update=now - dt.timedelta(minutes=1),
            next_update=now + dt.timedelta(hours=1),
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, signer)
    )
    if include:
        builder = builder.certificates(list(include))
    return builder.sign(signer_key, hashes.SHA256()).public_bytes(DER)


def assert_invalid(check: RevocationCheck, words: str) -> None:
    assert check.status == RevocationStatus.INVALID
    assert words in check.detail
    assert check.revoked_at is None


# -- CRL --------------------------------------------------------------------------------------


def test_crl_good(ca: LabCa, host: HostCredentials) -> None:
    check = check_crl(crl_der(ca), host.leaf, ca.intermediate)
    assert check == RevocationCheck(RevocationStatus.GOOD, "not on the CRL", None)


def test_crl_revoked(ca: LabCa, host: HostCredentials) -> None:
    # Given a host certificate revoked at a known moment,
    when = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
    ca.revoke(host.leaf.serial_number, revoked_at=when)
    # when the intermediate's new CRL is checked,
    check = check_crl(crl_der(ca), host.leaf, ca.intermediate)
    # then it says revoked, and when.
    assert check.status == RevocationStatus.REVOKED
    assert check.revoked_at == when
    assert check.detail == "revoked on 2026-03-04 (CRL)"


def test_crl_other_revocations_do_not_touch_the_host(ca: LabCa, host: HostCredentials) -> None:
    other = make_host_credentials(CertKind.CA, ca=ca, computer_name="WIN-OTHER")
    ca.revoke(other.leaf.serial_number)
    check = check_crl(crl_der(ca), host.leaf, ca.intermediate)
    assert check.status == RevocationStatus.GOOD
    assert check_crl(crl_der(ca), other.leaf, ca.intermediate).status == RevocationStatus.REVOKED


def test_crl_in_pem_is_accepted(ca: LabCa, host: HostCredentials) -> None:
    ca.revoke(host.leaf.serial_number)
    pem = b"\r\n  " + ca.crl("intermediate").public_bytes(PEM)
    check = check_crl(pem, host.leaf, ca.intermediate)
    assert check.status == RevocationStatus.REVOKED


def test_crl_signed_by_another_ca_with_the_same_name_is_invalid(
    ca: LabCa, other_ca: LabCa, host: HostCredentials
) -> None:
    # Same issuer name, other key: only the signature tells them apart.
    assert other_ca.intermediate.subject == ca.intermediate.subject
    check = check_crl(crl_der(other_ca), host.leaf, ca.intermediate)
    assert_invalid(check, "CRL signature does not verify")


def test_crl_of_another_issuer_is_invalid(ca: LabCa, host: HostCredentials) -> None:
    root_crl = ca.crl("root").public_bytes(DER)
    check = check_crl(root_crl, host.leaf, ca.intermediate)
    assert_invalid(check, "CRL issued by another CA")


def test_crl_past_its_next_update_is_invalid(ca: LabCa, host: HostCredentials) -> None:
    crl = ca.crl("intermediate", validity=dt.timedelta(days=7))
    check = check_crl(crl.public_bytes(DER), host.leaf, ca.intermediate, now=FAR_FUTURE)
    assert crl.next_update_utc is not None
    assert_invalid(check, f"CRL expired on {crl.next_update_utc:%Y-%m-%d %H:%M} UTC")


@pytest.mark.parametrize(
    ("early", "good"), [(dt.timedelta(hours=1), False), (dt.timedelta(0), True)]
)
def test_crl_issued_in_the_future_is_invalid(
    ca: LabCa, host: HostCredentials, early: dt.timedelta, good: bool
) -> None:
    # Given a CRL checked before (or just at) its thisUpdate, as with a CA clock running fast
    crl = ca.crl("intermediate")
    moment = crl.last_update_utc - early
    check = check_crl(crl.public_bytes(DER), host.leaf, ca.intermediate, now=moment)
    if good:
        assert check.status == RevocationStatus.GOOD
    else:
        assert_invalid(check, "CRL not valid before")


def test_crl_just_before_next_update_is_good(ca: LabCa, host: HostCredentials) -> None:
    crl = ca.crl("intermediate", validity=dt.timedelta(days=7))
    assert crl.next_update_utc is not None
    moment = crl.next_update_utc - dt.timedelta(seconds=1)
    check = check_crl(crl.public_bytes(DER), host.leaf, ca.intermediate, now=moment)
    assert check.status == RevocationStatus.GOOD


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\x01garbage",
        b"-----BEGIN X509 CRL-----\nnot base64 at all\n-----END X509 CRL-----\n",
        b"<html><body>captive portal</body></html>",
    ],
)
def test_crl_garbage_is_invalid(data: bytes, ca: LabCa, host: HostCredentials) -> None:
    assert_invalid(check_crl(data, host.leaf, ca.intermediate), "not a CRL")


def test_crl_given_a_certificate_instead_is_invalid(ca: LabCa, host: HostCredentials) -> None:
    data = ca.intermediate.public_bytes(DER)
    assert_invalid(check_crl(data, host.leaf, ca.intermediate), "not a CRL")


def test_crl_with_an_unknown_signature_algorithm_is_invalid(
    ca: LabCa, host: HostCredentials
) -> None:
    data = crl_der(ca).replace(SHA256_RSA_OID, MD2_RSA_OID)
    assert check_crl(data, host.leaf, ca.intermediate).status == RevocationStatus.INVALID


def test_crl_with_a_flipped_signature_bit_is_invalid(ca: LabCa, host: HostCredentials) -> None:
    data = bytearray(crl_der(ca))
    data[-1] ^= 0x01
    assert_invalid(check_crl(bytes(data), host.leaf, ca.intermediate), "does not verify")


# -- OCSP request -------------------------------------------------------------------------------


def test_ocsp_request_names_the_certificate_by_sha1(ca: LabCa, host: HostCredentials) -> None:
    request = ocsp.load_der_ocsp_request(ocsp_request(host.leaf, ca.intermediate))
    assert request.serial_number == host.leaf.serial_number
    assert isinstance(request.hash_algorithm, hashes.SHA1)
    expected = ocsp.OCSPRequestBuilder().add_certificate(host.leaf, ca.intermediate, hashes.SHA1())
    built = expected.build()
    assert request.issuer_name_hash == built.issuer_name_hash
    assert request.issuer_key_hash == built.issuer_key_hash
    assert list(request.extensions) == []


def test_ocsp_request_parses_in_openssl(ca: LabCa, host: HostCredentials, tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl (Debian package openssl) is not installed")
    path = tmp_path / "request.der"
    path.write_bytes(ocsp_request(host.leaf, ca.intermediate))
    run = subprocess.run(
        [openssl, "ocsp", "-reqin", str(path), "-req_text", "-noverify"],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "OCSP Request Data" in run.stdout
    assert "Hash Algorithm: sha1" in run.stdout
    serials = re.findall(r"Serial Number: ([0-9A-Fa-f]+)", run.stdout)
    assert [int(s, 16) for s in serials] == [host.leaf.serial_number]


# -- OCSP answers -------------------------------------------------------------------------------


def test_ocsp_good(ca: LabCa, host: HostCredentials) -> None:
    check = check_ocsp(answer_for(ca, host.leaf), host.leaf, ca.intermediate)
    assert check == RevocationCheck(
        RevocationStatus.GOOD, "good (OCSP, signed by the issuer)", None
    )


def test_ocsp_revoked(ca: LabCa, host: HostCredentials) -> None:
    when = dt.datetime(2026, 7, 8, 9, 10, 11, tzinfo=dt.UTC)
    ca.revoke(host.leaf.serial_number, revoked_at=when)
    check = check_ocsp(answer_for(ca, host.leaf), host.leaf, ca.intermediate)
    assert check.status == RevocationStatus.REVOKED
    assert check.revoked_at == when
    assert check.detail == "revoked on 2026-07-08 (OCSP)"


def test_ocsp_unknown_serial(ca: LabCa) -> None:
    # A certificate the CA's key signed but its records do not hold.
    stranger = unrecorded_certificate(ca)
    check = check_ocsp(answer_for(ca, stranger), stranger, ca.intermediate)
    assert check.status == RevocationStatus.UNKNOWN
    assert check.revoked_at is None
    assert "does not know" in check.detail


def test_ocsp_answer_for_another_serial_is_invalid(ca: LabCa, host: HostCredentials) -> None:
    other = make_host_credentials(CertKind.CA, ca=ca, computer_name="WIN-OTHER")
    check = check_ocsp(answer_for(ca, other.leaf), host.leaf, ca.intermediate)
    assert_invalid(check, "another serial")


def test_ocsp_signed_by_the_wrong_key_is_invalid(
    ca: LabCa, other_ca: LabCa, host: HostCredentials
) -> None:
    # Given a real answer whose signature is replaced by one from another CA's key over
    # the very same response data,
    data = answer_for(ca, host.leaf)
    response = ocsp.load_der_ocsp_response(data)
    forged = other_ca.intermediate_key.sign(
        response.tbs_response_bytes, padding.PKCS1v15(), hashes.SHA256()
    )
    assert len(forged) == len(response.signature)
    data = data.replace(response.signature, forged)
    assert ocsp.load_der_ocsp_response(data).signature == forged
    # then the answer is not believed.
    assert_invalid(check_ocsp(data, host.leaf, ca.intermediate), "signature does not verify")


def test_ocsp_answer_naming_another_issuer_is_invalid(
    ca: LabCa, other_ca: LabCa, host: HostCredentials
) -> None:
    # Signed by the right key, but its CertID hashes another issuer's key.
    data = signed_response(host.leaf, other_ca.intermediate, ca.intermediate, ca.intermediate_key)
    assert_invalid(check_ocsp(data, host.leaf, ca.intermediate), "another issuer")


def test_ocsp_with_an_unknown_certid_hash_is_invalid(ca: LabCa, host: HostCredentials) -> None:
    # The CertID's SHA-1 OID (1.3.14.3.2.26) becomes 1.3.14.3.2.27, which is no hash.
    data = answer_for(ca, host.leaf).replace(
        bytes.fromhex("06052b0e03021a"), bytes.fromhex("06052b0e03021b"), 1
    )
    assert_invalid(check_ocsp(data, host.leaf, ca.intermediate), "OCSP answer unusable")


def test_ocsp_from_another_ca_is_invalid(ca: LabCa, other_ca: LabCa, host: HostCredentials) -> None:
    # Another CA's responder, whose names match, signs a GOOD answer about our serial.
    data = signed_response(
        host.leaf,
        ca.intermediate,
        other_ca.intermediate,
        other_ca.intermediate_key,
        include=(other_ca.intermediate,),
    )
    assert_invalid(check_ocsp(data, host.leaf, ca.intermediate), "signature does not verify")


def test_ocsp_delegated_responder_is_accepted(ca: LabCa, host: HostCredentials) -> None:
    # Given a responder certificate with the OCSP Signing EKU, issued by the issuer, on an
    # EC key (the issuer's own key is RSA),
    key = ec.generate_private_key(ec.SECP256R1())
    responder = responder_certificate(ca.intermediate, ca.intermediate_key, key)
    data = signed_response(host.leaf, ca.intermediate, responder, key, include=(responder,))
    # then its signed answer counts.
    check = check_ocsp(data, host.leaf, ca.intermediate)
    assert check.status == RevocationStatus.GOOD
    assert check.detail == "good (OCSP, signed by a delegated responder)"


def test_ocsp_signer_past_the_certificates_considered_is_not_tried_and_said(
    ca: LabCa, host: HostCredentials
) -> None:
    # Given a delegated responder that comes after MAX_OCSP_CERTIFICATES other certificates,
    key = ec.generate_private_key(ec.SECP256R1())
    responder = responder_certificate(ca.intermediate, ca.intermediate_key, key)
    padding_certs = (ca.root,) * MAX_OCSP_CERTIFICATES
    data = signed_response(
        host.leaf, ca.intermediate, responder, key, include=(*padding_certs, responder)
    )
    # then it is never tried, and the detail says why.
    check = check_ocsp(data, host.leaf, ca.intermediate)
    assert_invalid(check, f"only the first {MAX_OCSP_CERTIFICATES} were tried")
    # (the same responder first is accepted)
    first = signed_response(host.leaf, ca.intermediate, responder, key, include=(responder,))
    assert check_ocsp(first, host.leaf, ca.intermediate).status == RevocationStatus.GOOD


def test_ocsp_delegated_responder_without_ocsp_signing_is_invalid(
    ca: LabCa, host: HostCredentials
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    responder = responder_certificate(ca.intermediate, ca.intermediate_key, key, ocsp_signing=False)
    data = signed_response(host.leaf, ca.intermediate, responder, key, include=(responder,))
    assert_invalid(check_ocsp(data, host.leaf, ca.intermediate), "signature does not verify")


def test_ocsp_responder_delegated_by_another_ca_is_invalid(
    ca: LabCa, other_ca: LabCa, host: HostCredentials
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    responder = responder_certificate(other_ca.intermediate, other_ca.intermediate_key, key)
    data = signed_response(host.leaf, ca.intermediate, responder, key, include=(responder,))
    assert_invalid(check_ocsp(data, host.leaf, ca.intermediate), "signature does not verify")


def test_ocsp_answer_out_of_date_is_invalid(ca: LabCa, host: HostCredentials) -> None:
    # The lab's answers are valid for one hour after they are made.
    old = _now() - dt.timedelta(days=2)
    check = check_ocsp(answer_for(ca, host.leaf, now=old), host.leaf, ca.intermediate)
    assert_invalid(check, "out of date")


def test_ocsp_answer_checked_far_in_the_future_is_invalid(ca: LabCa, host: HostCredentials) -> None:
    check = check_ocsp(answer_for(ca, host.leaf), host.leaf, ca.intermediate, now=FAR_FUTURE)
    assert_invalid(check, "out of date")


def test_ocsp_answer_made_in_the_future_is_invalid(ca: LabCa, host: HostCredentials) -> None:
    answer = answer_for(ca, host.leaf)
    made = ocsp.load_der_ocsp_response(answer).this_update_utc
    early = check_ocsp(answer, host.leaf, ca.intermediate, now=made - dt.timedelta(hours=1))
    assert_invalid(early, "OCSP answer not valid before")
    skewed = check_ocsp(answer, host.leaf, ca.intermediate, now=made - dt.timedelta(minutes=4))
    assert skewed.status == RevocationStatus.GOOD


def test_ocsp_unsuccessful_answer_is_invalid(ca: LabCa, host: HostCredentials) -> None:
    malformed = ocsp_answer(ca, b"not an OCSP request")
    assert_invalid(check_ocsp(malformed, host.leaf, ca.intermediate), "MALFORMED_REQUEST")


def test_ocsp_request_about_another_ca_is_unauthorized(
    ca: LabCa, other_ca: LabCa, host: HostCredentials
) -> None:
    # Asking the other CA's responder about our certificate: it has no authority.
    data = ocsp_answer(other_ca, ocsp_request(host.leaf, ca.intermediate))
    assert_invalid(check_ocsp(data, host.leaf, ca.intermediate), "UNAUTHORIZED")


@pytest.mark.parametrize("data", [b"", b"\x30\x03\x0a\x01", b"HTTP/1.1 200 OK", b"\x00" * 64])
def test_ocsp_garbage_is_invalid(data: bytes, ca: LabCa, host: HostCredentials) -> None:
    assert_invalid(check_ocsp(data, host.leaf, ca.intermediate), "not an OCSP response")


def test_ocsp_given_a_crl_is_invalid(ca: LabCa, host: HostCredentials) -> None:
    assert_invalid(check_ocsp(crl_der(ca), host.leaf, ca.intermediate), "not an OCSP response")


def test_ocsp_with_a_flipped_signature_bit_is_invalid(ca: LabCa, host: HostCredentials) -> None:
    data = bytearray(answer_for(ca, host.leaf))
    # The signature BIT STRING ends the BasicOCSPResponse before the [0] certificates.
    signature = ocsp.load_der_ocsp_response(bytes(data)).signature
    at = bytes(data).index(signature)
    data[at + 10] ^= 0x01
    assert_invalid(check_ocsp(bytes(data), host.leaf, ca.intermediate), "does not verify")


def test_ocsp_with_an_unknown_signature_algorithm_is_invalid(
    ca: LabCa, host: HostCredentials
) -> None:
    # The first sha256WithRSA OID after the response data is the answer's own signature
    # algorithm (the embedded certificates come after it).
    data = answer_for(ca, host.leaf)
    data = data.replace(SHA256_RSA_OID, MD2_RSA_OID, 1)
    assert_invalid(check_ocsp(data, host.leaf, ca.intermediate), "signature does not verify")


def test_ocsp_get_url_is_base64_url_encoded_after_the_url() -> None:
    request = bytes(range(0xF0, 0x100)) * 3  # base64 with "+" and "/" in it
    url = ocsp_get_url("http://ocsp.example.test", request)
    assert url.startswith("http://ocsp.example.test/")
    encoded = url.rpartition("/")[2]
    assert "+" not in encoded
    assert "/" not in encoded
    assert base64.b64decode(urllib.parse.unquote(encoded)) == request
    assert ocsp_get_url("http://ocsp.example.test/", request) == url
