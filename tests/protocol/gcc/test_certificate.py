"""SERVER_CERTIFICATE (rdptrust.protocol.gcc.certificate): proprietary round trip, bad
RSA magic with its offset, a certificate that is neither kind."""

from __future__ import annotations

import pytest

from fixtures.vectors import load_hex
from rdptrust.errors import LocalProtocolError, RemoteProtocolError
from rdptrust.protocol.gcc import (
    CertificateChainVersion,
    ProprietaryCertificate,
    ServerCertificate,
    parse_server_certificate,
    parse_server_connect_response,
)

RESPONSE = "mcs/connect_response_spec.hex"


def test_proprietary_from_rsa_round_trip() -> None:
    modulus = (1 << 2047) | 12345
    cert = ServerCertificate(proprietary=ProprietaryCertificate.from_rsa(65537, modulus, bytes(72)))
    parsed = parse_server_certificate(cert.to_bytes())
    assert parsed == cert
    assert parsed.proprietary is not None
    assert parsed.proprietary.modulus_int == modulus
    assert parsed.proprietary.key_bits == 2048


def test_x509_chain_round_trip_with_temporary_bit() -> None:
    cert = ServerCertificate(x509_chain=(b"\x30\x03\x02\x01\x01",), temporary=True)
    parsed = parse_server_certificate(cert.to_bytes(), base=40)
    assert parsed == cert
    assert parsed.chain_version == CertificateChainVersion.X509
    with pytest.raises(RemoteProtocolError, match="non-zero padding"):
        parse_server_certificate(cert.to_bytes()[:-1] + b"\x01")


def test_bad_rsa_magic_is_an_error() -> None:
    data = bytearray(load_hex(RESPONSE))
    at = bytes(data).index(b"RSA1")
    data[at : at + 4] = b"RSA2"
    with pytest.raises(RemoteProtocolError, match="magic is not RSA1") as excinfo:
        parse_server_connect_response(bytes(data))
    assert excinfo.value.offset == at


def test_a_certificate_is_one_kind_or_the_other() -> None:
    with pytest.raises(LocalProtocolError):
        ServerCertificate()
