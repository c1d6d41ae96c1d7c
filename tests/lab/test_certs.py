"""The lab's host certificates: each kind's defining property, PEM files, OpenSSL's verdict."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import shutil
import ssl
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from rdptrust.errors import UsageError
from rdptrust.lab.certs import (
    RDP_AUTHENTICATION_OID,
    CertKind,
    HostCredentials,
    LabCa,
    PkiUrls,
    load_host_credentials,
    make_host_credentials,
)

URLS = PkiUrls(
    crl="http://127.0.0.1:1/crl/intermediate.crl",
    ocsp="http://127.0.0.1:1/ocsp",
    ca_issuers="http://127.0.0.1:1/aia/intermediate.crt",
    issuer_crl="http://127.0.0.1:1/crl/root.crl",
    root_ca_issuers="http://127.0.0.1:1/aia/root.crt",
)
KINDS_ISSUED_BY_A_GIVEN_CA = [kind for kind in CertKind if kind is not CertKind.SELF_SIGNED]
KINDS_SELF_SIGNED_WITHOUT_CA = [kind for kind in CertKind if kind is not CertKind.CA]


@pytest.fixture(scope="module")
def ca() -> LabCa:
    return LabCa.generate(urls=URLS)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def common_name(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def eku(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Check the signature by hand, since cryptography refuses SHA-1 in verify_*."""
    public = issuer.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    assert cert.signature_hash_algorithm is not None
    try:
        public.verify(
            cert.signature,
            cert.tbs_certificate_bytes,
            padding.PKCS1v15(),
            cert.signature_hash_algorithm,
        )
    except InvalidSignature:
        return False
    return cert.issuer == issuer.subject


def key_size(creds: HostCredentials) -> int:
    public = creds.leaf.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    return public.key_size


# -- self-signed, like Windows ------------------------------------------------------------


def test_self_signed_is_shaped_like_the_windows_rdp_certificate() -> None:
    creds = make_host_credentials(CertKind.SELF_SIGNED, computer_name="WIN-HOST7")
    leaf = creds.leaf
    assert creds.chain == (leaf,)
    assert leaf.subject == leaf.issuer
    assert common_name(leaf) == "WIN-HOST7"
    assert signed_by(leaf, leaf)
    assert key_size(creds) == 2048
    assert isinstance(leaf.signature_hash_algorithm, hashes.SHA256)
    assert now() - dt.timedelta(hours=1) < leaf.not_valid_before_utc < now()
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert dt.timedelta(days=180) <= lifetime <= dt.timedelta(days=184)
    assert eku(leaf) == [ExtendedKeyUsageOID.SERVER_AUTH]
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_encipherment
    assert usage.data_encipherment
    assert not usage.digital_signature
    assert not usage.key_cert_sign
    with pytest.raises(x509.ExtensionNotFound):
        leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert creds.sha256 == leaf.fingerprint(hashes.SHA256()).hex()
    assert creds.ca is None


def test_recreated_self_signed_certificate_gets_a_new_key() -> None:
    first = make_host_credentials(CertKind.SELF_SIGNED)
    second = make_host_credentials(CertKind.SELF_SIGNED)
    assert first.leaf.subject == second.leaf.subject
    assert first.sha256 != second.sha256
    assert first.leaf.public_key() != second.leaf.public_key()


# -- CA-issued -----------------------------------------------------------------------------


def test_ca_issued_certificate_names_eku_and_urls(ca: LabCa) -> None:
    creds = make_host_credentials(CertKind.CA, computer_name="WIN-LAB01", ca=ca)
    leaf = creds.leaf
    assert creds.chain == (leaf, ca.intermediate)
    assert creds.ca is ca
    assert leaf.issuer == ca.intermediate.subject
    leaf.verify_directly_issued_by(ca.intermediate)
    ca.intermediate.verify_directly_issued_by(ca.root)
    assert common_name(leaf) == "WIN-LAB01"
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["WIN-LAB01", "win-lab01.lab.test"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert eku(leaf) == [ExtendedKeyUsageOID.SERVER_AUTH, RDP_AUTHENTICATION_OID]
    cdp = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [n.value for n in cdp[0].full_name or []] == [URLS.crl]
    aia = leaf.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert {(d.access_method.dotted_string, d.access_location.value) for d in aia} == {
        ("1.3.6.1.5.5.7.48.1", URLS.ocsp),
        ("1.3.6.1.5.5.7.48.2", URLS.ca_issuers),
    }
    # The intermediate carries the root's CRL and caIssuers.
    cdp = ca.intermediate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [n.value for n in cdp[0].full_name or []] == [URLS.issuer_crl]
    up = ca.intermediate.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
    assert [d.access_location.value for d in up.value] == [URLS.root_ca_issuers]
    assert ca.issuer_of(leaf.serial_number) == "intermediate"


def test_ca_kind_without_a_ca_makes_one() -> None:
    creds = make_host_credentials(CertKind.CA, urls=URLS)
    assert creds.ca is not None
    creds.leaf.verify_directly_issued_by(creds.ca.intermediate)
    assert creds.ca.urls == URLS


def test_urls_given_to_make_override_the_cas(ca: LabCa) -> None:
    creds = make_host_credentials(CertKind.CA, ca=ca, urls=PkiUrls(crl="http://127.0.0.2/x.crl"))
    cdp = creds.leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [n.value for n in cdp[0].full_name or []] == ["http://127.0.0.2/x.crl"]
    with pytest.raises(x509.ExtensionNotFound):
        creds.leaf.extensions.get_extension_for_class(x509.AuthorityInformationAccess)


def test_omit_intermediate_serves_only_the_leaf(ca: LabCa) -> None:
    creds = make_host_credentials(CertKind.CA, ca=ca, omit_intermediate=True)
    assert len(creds.chain) == 1
    assert creds.leaf.issuer == ca.intermediate.subject


@pytest.mark.parametrize("kind", KINDS_ISSUED_BY_A_GIVEN_CA)
def test_every_kind_but_self_signed_is_ca_issued_when_a_ca_is_given(
    ca: LabCa, kind: CertKind
) -> None:
    creds = make_host_credentials(kind, ca=ca)
    assert signed_by(creds.leaf, ca.intermediate)
    assert creds.chain[1:] == (ca.intermediate,)


@pytest.mark.parametrize("kind", KINDS_SELF_SIGNED_WITHOUT_CA)
def test_every_kind_but_ca_is_self_signed_without_a_ca(kind: CertKind) -> None:
    creds = make_host_credentials(kind)
    assert creds.chain == (creds.leaf,)
    assert signed_by(creds.leaf, creds.leaf)
    assert creds.ca is None


# -- the defining property of each kind, with and without a CA -----------------------------


@pytest.fixture(params=["ca", "self"])
def maybe_ca(request: pytest.FixtureRequest, ca: LabCa) -> LabCa | None:
    return ca if request.param == "ca" else None


def test_expired(maybe_ca: LabCa | None) -> None:
    leaf = make_host_credentials(CertKind.EXPIRED, ca=maybe_ca).leaf
    assert leaf.not_valid_after_utc < now() - dt.timedelta(days=1)
    assert leaf.not_valid_before_utc < leaf.not_valid_after_utc
    assert common_name(leaf) == "WIN-LAB01"


def test_not_yet_valid(maybe_ca: LabCa | None) -> None:
    leaf = make_host_credentials(CertKind.NOT_YET_VALID, ca=maybe_ca).leaf
    assert leaf.not_valid_before_utc > now() + dt.timedelta(days=1)
    assert leaf.not_valid_after_utc > leaf.not_valid_before_utc


def test_wrong_name(maybe_ca: LabCa | None) -> None:
    leaf = make_host_credentials(CertKind.WRONG_NAME, computer_name="WIN-LAB01", ca=maybe_ca).leaf
    names = [common_name(leaf).lower()]
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        pass
    else:
        names += [name.lower() for name in san.get_values_for_type(x509.DNSName)]
        assert san.get_values_for_type(x509.IPAddress) == []
    assert not {"win-lab01", "win-lab01.lab.test", "127.0.0.1"} & set(names)


def test_wrong_name_never_equals_the_computer_name() -> None:
    leaf = make_host_credentials(CertKind.WRONG_NAME, computer_name="WIN-ELSEWHERE").leaf
    assert common_name(leaf).lower() != "win-elsewhere"


def test_sha1(maybe_ca: LabCa | None) -> None:
    creds = make_host_credentials(CertKind.SHA1, ca=maybe_ca)
    leaf = creds.leaf
    assert isinstance(leaf.signature_hash_algorithm, hashes.SHA1)
    assert leaf.signature_algorithm_oid.dotted_string == "1.2.840.113549.1.1.5"
    issuer = maybe_ca.intermediate if maybe_ca else leaf
    assert signed_by(leaf, issuer)
    # The inner algorithm in the TBSCertificate agrees with the outer one (RFC 5280 4.1.1.2).
    assert bytes.fromhex("06092a864886f70d010105") in leaf.tbs_certificate_bytes
    assert bytes.fromhex("06092a864886f70d01010b") not in leaf.tbs_certificate_bytes


def test_weak_key(maybe_ca: LabCa | None) -> None:
    creds = make_host_credentials(CertKind.WEAK_KEY, ca=maybe_ca)
    assert key_size(creds) == 1024
    assert isinstance(creds.key, rsa.RSAPrivateKey)
    assert creds.key.key_size == 1024


def test_rdp_eku_only(maybe_ca: LabCa | None) -> None:
    leaf = make_host_credentials(CertKind.RDP_EKU_ONLY, ca=maybe_ca).leaf
    assert eku(leaf) == [RDP_AUTHENTICATION_OID]
    assert RDP_AUTHENTICATION_OID.dotted_string == "1.3.6.1.4.1.311.54.1.2"


def test_unknown_kind_and_bad_name_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="unknown certificate kind"):
        make_host_credentials("mystery")
    with pytest.raises(UsageError, match="computer name"):
        make_host_credentials(CertKind.SELF_SIGNED, computer_name="bad name; rm -rf")


# -- files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(CertKind))
def test_write_pem_loads_in_ssl_and_round_trips(
    tmp_path: Path, kind: CertKind, maybe_ca: LabCa | None
) -> None:
    creds = make_host_credentials(kind, ca=maybe_ca)
    chain_path, key_path = creds.write_pem(tmp_path)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if kind in (CertKind.WEAK_KEY, CertKind.SHA1):
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.load_cert_chain(chain_path, key_path)
    loaded = load_host_credentials(chain_path, key_path)
    assert loaded.chain == creds.chain
    assert loaded.sha256 == creds.sha256


@pytest.mark.parametrize("omit_intermediate", [False, True])
async def test_tls_server_serves_the_chain_a_client_verifies(
    tmp_path: Path, ca: LabCa, omit_intermediate: bool
) -> None:
    creds = make_host_credentials(CertKind.CA, ca=ca, omit_intermediate=omit_intermediate)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(*creds.write_pem(tmp_path))
    client_ctx = ssl.create_default_context(cafile=ca.write_root_pem(tmp_path / "root.pem"))

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        if omit_intermediate:
            with pytest.raises(ssl.SSLCertVerificationError, match="local issuer"):
                await asyncio.open_connection(
                    "127.0.0.1", port, ssl=client_ctx, server_hostname="win-lab01.lab.test"
                )
            return
        _, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_ctx, server_hostname="win-lab01.lab.test"
        )
        peer = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        assert peer == creds.leaf.public_bytes(serialization.Encoding.DER)
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
    finally:
        server.close()
        await server.wait_closed()


def test_weak_key_is_refused_by_ssl_at_the_default_level(tmp_path: Path) -> None:
    chain_path, key_path = make_host_credentials(CertKind.WEAK_KEY).write_pem(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.set_ciphers("DEFAULT:@SECLEVEL=2")
    with pytest.raises(ssl.SSLError):
        ctx.load_cert_chain(chain_path, key_path)


def test_load_host_credentials_reports_bad_files(tmp_path: Path) -> None:
    creds = make_host_credentials(CertKind.SELF_SIGNED)
    chain_path, key_path = creds.write_pem(tmp_path)
    other_key = tmp_path / "other.pem"
    other_key.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_bytes(
        creds.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    junk = tmp_path / "junk.pem"
    junk.write_text("hello\n")

    with pytest.raises(UsageError, match="cannot read certificate file"):
        load_host_credentials(tmp_path / "missing.pem", key_path)
    with pytest.raises(UsageError, match="no readable PEM certificate"):
        load_host_credentials(junk, key_path)
    with pytest.raises(UsageError, match="no readable PEM private key"):
        load_host_credentials(chain_path, junk)
    with pytest.raises(UsageError, match="encrypted"):
        load_host_credentials(chain_path, encrypted)
    with pytest.raises(UsageError, match="does not belong"):
        load_host_credentials(chain_path, other_key)


# -- a real peer: OpenSSL's verifier -------------------------------------------------------

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")


def openssl_verify(
    tmp_path: Path, ca: LabCa, leaf: x509.Certificate
) -> subprocess.CompletedProcess[str]:
    assert OPENSSL is not None
    root = ca.write_root_pem(tmp_path / "root.pem")
    intermediate = ca.write_intermediate_pem(tmp_path / "intermediate.pem")
    leaf_path = tmp_path / "leaf.pem"
    leaf_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    return subprocess.run(
        [OPENSSL, "verify", "-CAfile", root, "-untrusted", intermediate, leaf_path],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.peer
@needs_openssl
def test_openssl_accepts_a_ca_issued_host_certificate(tmp_path: Path, ca: LabCa) -> None:
    leaf = make_host_credentials(CertKind.CA, ca=ca).leaf
    result = openssl_verify(tmp_path, ca, leaf)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(": OK")


@pytest.mark.peer
@needs_openssl
def test_openssl_rejects_the_expired_host_certificate(tmp_path: Path, ca: LabCa) -> None:
    leaf = make_host_credentials(CertKind.EXPIRED, ca=ca).leaf
    result = openssl_verify(tmp_path, ca, leaf)
    assert result.returncode != 0
    assert "certificate has expired" in result.stdout + result.stderr
