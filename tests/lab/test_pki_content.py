"""What the lab's PKI responder serves, without sockets: paths, modes, cabinets, OCSP."""

from __future__ import annotations

import struct

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from rdptrust.lab.certs import CertKind, LabCa, make_host_credentials
from rdptrust.lab.pki.content import (
    AIA_INTERMEDIATE_PATH,
    AIA_ROOT_PATH,
    CRL_INTERMEDIATE_PATH,
    CRL_ROOT_PATH,
    DISALLOWED_LIST_PATH,
    GARBAGE,
    OCSP_PATH,
    ROOT_LIST_DIRECTORY,
    ROOT_LIST_PATH,
    answer,
    build_cabinet,
    cab_checksum,
    purpose_of,
    root_list_cabinets,
)
from rdptrust.lab.pki.modes import OK, ResponderMode


@pytest.fixture(scope="module")
def ca() -> LabCa:
    return LabCa.generate()


@pytest.mark.parametrize(
    ("path", "purpose"),
    [
        (ROOT_LIST_PATH, "root_list"),
        (DISALLOWED_LIST_PATH, "root_list"),
        (ROOT_LIST_DIRECTORY + "anything.cab", "root_list"),
        (AIA_INTERMEDIATE_PATH, "aia"),
        (AIA_ROOT_PATH, "aia"),
        (CRL_INTERMEDIATE_PATH, "crl"),
        (CRL_ROOT_PATH, "crl"),
        (OCSP_PATH, "ocsp"),
        (OCSP_PATH + "/MEow", "ocsp"),
        ("/ocspx", None),
        ("/aia/other.crt", None),
        ("/", None),
    ],
)
def test_purpose_of(path: str, purpose: str | None) -> None:
    assert purpose_of(path) == purpose


def test_answers_in_ok_mode(ca: LabCa) -> None:
    cabinets = root_list_cabinets()
    listed = answer(ca, cabinets, "root_list", OK, "GET", ROOT_LIST_PATH, b"")
    status, content_type, content = listed
    assert (status, content_type) == (200, "application/vnd.ms-cab-compressed")
    assert content == cabinets[ROOT_LIST_PATH]
    unknown_list = ROOT_LIST_DIRECTORY + "x.cab"
    assert answer(ca, cabinets, "root_list", OK, "GET", unknown_list, b"")[0] == 404
    status, _, content = answer(ca, cabinets, "aia", OK, "GET", AIA_ROOT_PATH + "?q", b"")
    assert x509.load_der_x509_certificate(content) == ca.root
    _, _, content = answer(ca, cabinets, "crl", OK, "HEAD", CRL_INTERMEDIATE_PATH, b"")
    assert x509.load_der_x509_crl(content).issuer == ca.intermediate.subject
    host = make_host_credentials(CertKind.CA, ca=ca)
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(host.leaf, ca.intermediate, hashes.SHA1())
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    _, content_type, content = answer(ca, cabinets, "ocsp", OK, "POST", OCSP_PATH, request)
    assert content_type == "application/ocsp-response"
    assert ocsp.load_der_ocsp_response(content).certificate_status is ocsp.OCSPCertStatus.GOOD
    # An OCSP GET without a request, or with one that is no base64, is malformed.
    for path in (OCSP_PATH, OCSP_PATH + "/%%%"):
        _, _, content = answer(ca, cabinets, "ocsp", OK, "GET", path, b"")
        malformed = ocsp.load_der_ocsp_response(content)
        assert malformed.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_404_garbage_methods_and_no_ca(ca: LabCa) -> None:
    cabinets = root_list_cabinets()
    assert answer(ca, cabinets, None, OK, "GET", "/nothing", b"")[0] == 404
    assert answer(ca, cabinets, "crl", ResponderMode("404"), "GET", CRL_ROOT_PATH, b"")[0] == 404
    garbage = answer(ca, cabinets, "aia", ResponderMode("garbage"), "GET", AIA_ROOT_PATH, b"")
    assert garbage == (200, "application/pkix-cert", GARBAGE)
    assert answer(ca, cabinets, "crl", OK, "POST", CRL_ROOT_PATH, b"x")[0] == 405
    assert answer(ca, cabinets, "ocsp", OK, "PUT", OCSP_PATH, b"x")[0] == 405
    # Without a CA only the root lists exist.
    assert answer(None, cabinets, "root_list", OK, "GET", ROOT_LIST_PATH, b"")[0] == 200
    for purpose, path in (("aia", AIA_ROOT_PATH), ("crl", CRL_ROOT_PATH), ("ocsp", OCSP_PATH)):
        assert answer(None, cabinets, purpose, OK, "GET", path, b"")[0] == 404  # type: ignore[arg-type]


def test_cab_checksum_folds_words_and_tail() -> None:
    assert cab_checksum(b"") == 0
    assert cab_checksum(struct.pack("<II", 0x01020304, 0x10203040)) == 0x11223344
    assert cab_checksum(b"\x01\x02\x03") == 0x010203
    assert cab_checksum(b"\xff\xff\xff\xff", seed=0xFFFFFFFF) == 0


@pytest.mark.parametrize("size", [0, 1, 32768, 32769])
def test_cabinet_header_counts_its_size_files_and_blocks(size: int) -> None:
    cabinet = build_cabinet("x.bin", b"a" * size)
    assert cabinet[:4] == b"MSCF"
    assert int.from_bytes(cabinet[8:12], "little") == len(cabinet)
    (files,) = struct.unpack_from("<H", cabinet, 28)
    assert files == 1
    blocks = struct.unpack_from("<H", cabinet, 36 + 4)[0]
    assert blocks == max(1, -(-size // 32768))
    assert cabinet.endswith(b"a" * min(size, 32768) if size <= 32768 else b"a" * (size - 32768))
