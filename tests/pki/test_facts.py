"""Certificate facts, cross-checked against ``openssl x509`` for the same certificate."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
from certs_for_tests import (
    CLIENT_AUTH,
    ECDSA_WITH_SHA256_LABEL,
    NOW,
    RDP_EKU,
    SERVER_AUTH,
    _der_length,
    ec_key,
    ed25519_key,
    hierarchy,
    issue,
    name,
    resign_rsa,
    rsa_key,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rdptrust.errors import PkiError
from rdptrust.model.certificate import UNDECODABLE_NAME
from rdptrust.model.target import Target
from rdptrust.pki.facts import (
    certificate_facts,
    fingerprint_sha1,
    fingerprint_sha256,
    is_self_issued,
    load_certificate,
    load_certificates,
    public_key_sha256,
)
from rdptrust.pki.pinning import KnownHosts, check_pin
from rdptrust.pki.problems import judge_chain
from rdptrust.pki.tbs import TbsParts, tbs_parts
from rdptrust.pki.trust import TrustAnchors, build_path
from rdptrust.protocol import der

OPENSSL = shutil.which("openssl")


def full_host() -> x509.Certificate:
    return issue(
        "WIN-LAB01",
        dns=["win-lab01.example.test", "*.rdp.example.test"],
        ips=["127.0.0.1", "::1"],
        eku=[SERVER_AUTH, RDP_EKU],
        crl_urls=["http://127.0.0.1:8080/ca.crl"],
        ocsp_urls=["http://127.0.0.1:8080/ocsp"],
        ca_issuers_urls=["http://127.0.0.1:8080/ca.cer"],
        serial=0x0A1B2C,
    ).cert


def openssl_x509(tmp_path: Path, cert: x509.Certificate, *options: str) -> dict[str, str]:
    if OPENSSL is None:
        pytest.skip("openssl is not installed (Debian package openssl)")
    path = tmp_path / "cert.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    out = subprocess.run(
        [OPENSSL, "x509", "-in", str(path), "-noout", *options],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout
    fields = {}
    for line in out.splitlines():
        key, _, value = line.partition("=")
        fields[key.strip().lower()] = value.strip()
    return fields


def openssl_date(text: str) -> dt.datetime:
    # e.g. "May 31 12:00:00 2026 GMT"
    return dt.datetime.strptime(" ".join(text.split()), "%b %d %H:%M:%S %Y %Z").replace(
        tzinfo=dt.UTC
    )


@pytest.mark.peer
def test_fingerprints_dates_and_serial_match_openssl(tmp_path: Path) -> None:
    # Given a certificate made here
    cert = full_host()
    # When openssl and rdptrust read it
    facts = certificate_facts(cert, now=NOW)
    sha256 = openssl_x509(tmp_path, cert, "-fingerprint", "-sha256")
    sha1 = openssl_x509(tmp_path, cert, "-fingerprint", "-sha1")
    dates = openssl_x509(tmp_path, cert, "-dates")
    serial = openssl_x509(tmp_path, cert, "-serial")
    # Then both agree
    assert facts.sha256 == sha256["sha256 fingerprint"].replace(":", "").lower()
    assert facts.sha1 == sha1["sha1 fingerprint"].replace(":", "").lower()
    assert facts.not_before == openssl_date(dates["notbefore"])
    assert facts.not_after == openssl_date(dates["notafter"])
    assert facts.serial == serial["serial"].lower()


@pytest.mark.peer
def test_random_serial_matches_openssl(tmp_path: Path) -> None:
    cert = issue("serial-check").cert
    serial = openssl_x509(tmp_path, cert, "-serial")["serial"]
    assert certificate_facts(cert).serial == serial.lower()
    assert int(serial, 16) == cert.serial_number


def test_facts_of_an_rdp_host_certificate() -> None:
    cert = full_host()
    facts = certificate_facts(cert, now=NOW)
    assert facts.subject == "CN=WIN-LAB01"
    assert facts.issuer == "CN=WIN-LAB01"
    assert facts.common_name == "WIN-LAB01"
    assert facts.self_signed is True
    assert facts.serial == "0a1b2c"
    assert facts.not_before == NOW - dt.timedelta(days=1)
    assert facts.not_before.tzinfo is not None
    assert facts.days_left == 179
    der = cert.public_bytes(serialization.Encoding.DER)
    assert facts.sha256 == hashlib.sha256(der).hexdigest() == fingerprint_sha256(cert)
    assert facts.sha1 == hashlib.sha1(der).hexdigest() == fingerprint_sha1(cert)
    assert facts.san == (
        "DNS:win-lab01.example.test",
        "DNS:*.rdp.example.test",
        "IP:127.0.0.1",
        "IP:::1",
    )
    assert facts.eku == ("1.3.6.1.5.5.7.3.1", "1.3.6.1.4.1.311.54.1.2")
    assert facts.eku_names == ("serverAuth", "Remote Desktop Authentication")
    assert (facts.key_type, facts.key_bits) == ("RSA", 2048)
    assert facts.signature_algorithm == "sha256WithRSAEncryption"
    assert facts.signature_hash == "sha256"
    assert facts.crl_urls == ("http://127.0.0.1:8080/ca.crl",)
    assert facts.ocsp_urls == ("http://127.0.0.1:8080/ocsp",)
    assert facts.ca_issuers_urls == ("http://127.0.0.1:8080/ca.cer",)
    assert facts.is_ca is False
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert facts.public_key_sha256 == hashlib.sha256(spki).hexdigest() == public_key_sha256(cert)
    assert facts.parse_warnings == ()


def test_days_left_counts_from_the_given_moment() -> None:
    cert = issue("x", not_before=NOW - dt.timedelta(days=10), days=20).cert
    assert certificate_facts(cert, now=NOW).days_left == 10
    assert certificate_facts(cert, now=NOW + dt.timedelta(days=10, hours=1)).days_left == -1
    # A naive datetime is taken as UTC.
    assert certificate_facts(cert, now=NOW.replace(tzinfo=None)).days_left == 10


def test_same_names_but_foreign_signature_is_not_self_signed() -> None:
    # Given a certificate whose issuer equals its subject but signed by another key
    impostor = issue("WIN-LAB01", key=rsa_key(2048, 1))
    forged = issue("WIN-LAB01", issuer=impostor, key=rsa_key(2048, 2)).cert
    # Then it is not self-signed: the names alone do not make it so
    facts = certificate_facts(forged, now=NOW)
    assert facts.subject == facts.issuer
    assert facts.self_signed is False


def test_ca_issued_leaf_and_ca_flags() -> None:
    chain = hierarchy()
    leaf = certificate_facts(chain.leaf.cert, now=NOW)
    assert leaf.self_signed is False
    assert leaf.issuer == "CN=Test Issuing CA 0"
    assert leaf.is_ca is False
    assert certificate_facts(chain.intermediate.cert, now=NOW).is_ca is True
    assert certificate_facts(chain.root.cert, now=NOW).self_signed is True


@pytest.mark.parametrize(
    ("key", "key_type", "bits", "algorithm", "hash_name"),
    [
        (lambda: rsa_key(1024), "RSA", 1024, "sha256WithRSAEncryption", "sha256"),
        (ec_key, "EC", 256, "ecdsa-with-SHA256", "sha256"),
        (ed25519_key, "Ed25519", 256, "ed25519", None),
    ],
)
def test_key_types(key, key_type, bits, algorithm, hash_name) -> None:  # type: ignore[no-untyped-def]
    facts = certificate_facts(issue("k", key=key()).cert, now=NOW)
    assert (facts.key_type, facts.key_bits) == (key_type, bits)
    assert facts.signature_algorithm == algorithm
    assert facts.signature_hash == hash_name
    assert facts.self_signed is True


def test_sha384_signature() -> None:
    facts = certificate_facts(issue("h", hash_algorithm=hashes.SHA384()).cert, now=NOW)
    assert facts.signature_algorithm == "sha384WithRSAEncryption"
    assert facts.signature_hash == "sha384"


@pytest.mark.parametrize(
    ("hash_name", "algorithm"), [("sha1", "sha1WithRSAEncryption"), ("md5", "md5WithRSAEncryption")]
)
def test_legacy_self_signed_hosts(hash_name: str, algorithm: str) -> None:
    # Given an old-style self-signed host certificate signed with SHA-1 or MD5
    original = issue("WIN-OLD")
    old = resign_rsa(original.cert, original.key, hash_name)  # type: ignore[arg-type]
    # Then it is recognised as self-signed (its own key verifies it) and the hash is named
    facts = certificate_facts(old, now=NOW)
    assert facts.signature_algorithm == algorithm
    assert facts.signature_hash == hash_name
    assert facts.self_signed is True
    # And a foreign key does not verify it
    foreign = resign_rsa(original.cert, rsa_key(2048, 1), hash_name)
    assert certificate_facts(foreign, now=NOW).self_signed is False


def test_a_signature_labelled_with_another_algorithm_does_not_verify() -> None:
    # Given an RSA PKCS#1 v1.5 signature that the certificate labels ecdsa-with-SHA256
    original = issue("WIN-LABEL")
    relabelled = resign_rsa(
        original.cert,
        original.key,  # type: ignore[arg-type]
        "sha256",
        label=ECDSA_WITH_SHA256_LABEL,
    )
    assert relabelled.signature_algorithm_oid.dotted_string == "1.2.840.10045.4.3.2"
    # Then the RSA key does not verify it: the label names the algorithm, as CryptoAPI reads it
    assert certificate_facts(relabelled, now=NOW).self_signed is False
    # And the same signature labelled as what it is verifies
    honest = resign_rsa(original.cert, original.key, "sha256")  # type: ignore[arg-type]
    assert certificate_facts(honest, now=NOW).self_signed is True


def test_no_eku_no_cn_other_eku_names() -> None:
    no_eku = certificate_facts(issue("x", eku=None).cert, now=NOW)
    assert no_eku.eku == ()
    assert no_eku.eku_names == ()
    client = certificate_facts(issue("x", eku=[CLIENT_AUTH]).cert, now=NOW)
    assert client.eku_names == ("clientAuth",)
    odd = certificate_facts(issue("x", eku=[x509.ObjectIdentifier("1.2.3.4")]).cert, now=NOW)
    assert odd.eku_names == ("1.2.3.4",)
    no_cn = issue(
        "ignored", subject=x509.Name([x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "Org")])
    )
    facts = certificate_facts(no_cn.cert, now=NOW)
    assert facts.common_name is None
    assert facts.subject == "O=Org"
    assert certificate_facts(issue("n", subject=name("n", "Org")).cert).subject == "CN=n,O=Org"


def test_load_der_pem_and_bundles() -> None:
    first = issue("first")
    second = issue("second", key=rsa_key(2048, 1))
    assert load_certificate(first.der) == first.cert
    assert load_certificate(first.pem) == first.cert
    assert load_certificate(b"junk before\n" + first.pem) == first.cert
    assert load_certificates(first.pem + second.pem) == [first.cert, second.cert]
    assert load_certificates(first.der) == [first.cert]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello",
        b"\x30\x03\x02\x01\x01",
        b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    ],
)
def test_garbage_is_a_pki_error(data: bytes) -> None:
    with pytest.raises(PkiError, match="certificate"):
        load_certificate(data)


def test_malformed_extension_does_not_sink_the_facts() -> None:
    # Given a certificate whose SAN extension holds bytes that are not a SAN
    key = rsa_key()
    subject = name("broken-san")
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=30))
        .add_extension(
            x509.UnrecognizedExtension(x509.oid.ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x04\x01"),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    # When its facts are read
    facts = certificate_facts(load_certificate(cert.public_bytes(serialization.Encoding.DER)))
    # Then the rest is there and the warning says what was unreadable
    assert facts.common_name == "broken-san"
    assert facts.san == ()
    assert facts.self_signed is True
    assert len(facts.parse_warnings) == 1
    assert "extensions" in facts.parse_warnings[0]


def test_undecodable_names_do_not_sink_the_facts() -> None:
    # Given a certificate whose subject and issuer CN hold invalid UTF-8
    der = issue("fuzzname").der
    assert der.count(b"fuzzname") == 2
    cert = load_certificate(der.replace(b"fuzzname", b"fuzz\xffame"))
    # Then the facts say so instead of failing, and path building copes
    facts = certificate_facts(cert, now=NOW)
    assert facts.subject == facts.issuer == UNDECODABLE_NAME
    assert facts.common_name is None
    assert facts.self_signed is False
    assert "the subject name could not be decoded" in facts.parse_warnings
    assert facts.sha256 == hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    path = build_path([cert], TrustAnchors((), ()))
    assert path.certificates == (cert,)
    assert path.missing_issuer is None
    assert not path.complete


def test_unknown_public_key_algorithm() -> None:
    # Given a certificate whose key algorithm OID is one nobody knows
    der = issue("odd-key").der
    rsa_oid = bytes.fromhex("06092a864886f70d010101")
    assert der.count(rsa_oid) == 1
    odd = load_certificate(der.replace(rsa_oid, bytes.fromhex("06092a864886f70d010163")))
    # Then the facts name the OID and have no size, and nothing else breaks
    facts = certificate_facts(odd, now=NOW)
    assert facts.key_type == "1.2.840.113549.1.1.99"
    assert facts.key_bits is None
    assert facts.self_signed is False
    assert len(facts.public_key_sha256) == 64


SAMPLE_DER = issue("fuzz", dns=["fuzz.example.test"], ca_issuers_urls=["http://x/y"]).der


STORE = KnownHosts(Path("/nonexistent/known_hosts.json"))
FUZZ_TARGET = Target("fuzz.example.test")


def _facts_or_pki_error(data: bytes) -> None:
    try:
        cert = load_certificate(data)
    except PkiError:
        return
    # Whatever loads goes through the whole judgement without any other exception
    certificate_facts(cert)
    path = build_path([cert], TrustAnchors((cert,), ("self",)))
    judge_chain(FUZZ_TARGET, [cert], path, check_pin(STORE, FUZZ_TARGET, cert))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_random_bytes_raise_only_pki_error(data: bytes) -> None:
    _facts_or_pki_error(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, len(SAMPLE_DER) - 1), st.integers(0, 255)),
        min_size=1,
        max_size=6,
    ),
    st.integers(1, len(SAMPLE_DER)),
)
def test_mutated_der_raises_only_pki_error(changes: list[tuple[int, int]], keep: int) -> None:
    data = bytearray(SAMPLE_DER)
    for index, value in changes:
        data[index] = value
    _facts_or_pki_error(bytes(data[:keep]) if keep % 3 == 0 else bytes(data))


def _resigned(cert: x509.Certificate, key: object, tbs: bytes) -> x509.Certificate:
    """*cert* with its TBSCertificate replaced by *tbs*, signed again (RSA, SHA-256)."""
    algorithm = bytes.fromhex("300d06092a864886f70d01010b0500")
    signature = key.sign(tbs, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[attr-defined]
    bit_string = b"\x03" + _der_length(len(signature) + 1) + b"\x00" + signature
    body = tbs + algorithm + bit_string
    return load_certificate(b"\x30" + _der_length(len(body)) + body)


def test_names_encoded_differently_are_compared_decoded() -> None:
    # Given a self-signed certificate whose issuer CN is a PrintableString and whose
    # subject CN is a UTF8String, with the same text (the encodings differ)
    key = rsa_key()
    printable = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "WIN-ODD", _type=_ASN1Type.PrintableString)]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("WIN-ODD"))
        .issuer_name(printable)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=10))
        .sign(key, hashes.SHA256())
    )
    parts = tbs_parts(cert)
    assert isinstance(parts, TbsParts)
    assert parts.issuer != parts.subject
    # Then it names itself as issuer and is self-signed, as the decoded names say
    assert is_self_issued(cert)
    facts = certificate_facts(cert, now=NOW)
    assert facts.self_signed is True
    assert facts.issuer == facts.subject == "CN=WIN-ODD"
    path = build_path([cert], TrustAnchors((), ()))
    assert path.complete
    assert path.root_self_signed_untrusted


def test_signed_undecodable_names_are_not_self_signed() -> None:
    # Given a certificate whose subject and issuer hold the same invalid UTF-8, signed
    # again after the change so that its own key verifies it
    issued = issue("fuzzname")
    tbs = issued.cert.tbs_certificate_bytes
    assert tbs.count(b"fuzzname") == 2
    cert = _resigned(issued.cert, issued.key, tbs.replace(b"fuzzname", b"fuzz\xffame"))
    # Then names that cannot be decoded match nothing, not even each other
    assert is_self_issued(cert) is False
    facts = certificate_facts(cert, now=NOW)
    assert facts.self_signed is False
    assert facts.subject == facts.issuer == UNDECODABLE_NAME
    assert not build_path([cert], TrustAnchors((), ())).complete


def test_key_hash_of_a_version_1_certificate() -> None:
    # Given a version 1 certificate (no version field, no extensions)
    issued = issue("WIN-V1", eku=None)
    tbs = issued.cert.tbs_certificate_bytes
    outer = der.read_element(tbs, 0, len(tbs))
    fields = list(der.children(tbs, outer.start, outer.end))
    assert fields[0].tag == der.CONTEXT_CONSTRUCTED  # [0] version
    assert fields[-1].tag == 0xA3  # [3] extensions
    body = b"".join(f.encoding(tbs) for f in fields[1:-1])
    cert = _resigned(issued.cert, issued.key, b"\x30" + _der_length(len(body)) + body)
    assert cert.version == x509.Version.v1
    # Then its key hash is the SHA-256 of its SubjectPublicKeyInfo, and it is self-signed
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert public_key_sha256(cert) == hashlib.sha256(spki).hexdigest()
    assert certificate_facts(cert, now=NOW).self_signed is True
