"""What a stapled OCSP answer says, read without sockets."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from rdptrust.pki.stapling import check_stapled_ocsp, stapled_ocsp_status


@pytest.mark.parametrize(
    ("status", "name"),
    [
        (ocsp.OCSPResponseStatus.TRY_LATER, "try_later"),
        (ocsp.OCSPResponseStatus.UNAUTHORIZED, "unauthorized"),
        (ocsp.OCSPResponseStatus.MALFORMED_REQUEST, "malformed_request"),
    ],
)
def test_unsuccessful_answers_name_their_status(status: ocsp.OCSPResponseStatus, name: str) -> None:
    der = ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(Encoding.DER)
    assert stapled_ocsp_status(der) == name


@pytest.mark.parametrize("data", [b"", b"\x30\x03\x02\x01\x00", b"not DER at all"])
def test_bytes_that_are_no_ocsp_response(data: bytes) -> None:
    assert stapled_ocsp_status(data) is None


def test_no_staple_or_no_issuer_is_no_judgement() -> None:
    assert check_stapled_ocsp(None, [b"leaf", b"issuer"]) is None
    assert check_stapled_ocsp(b"staple", [b"leaf"]) is None
    assert check_stapled_ocsp(b"staple", [b"not a certificate", b"nor this"]) is None
