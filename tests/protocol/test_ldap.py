"""The anonymous LDAP search rdptrust sends and the answers it reads (RFC 4511)."""

from __future__ import annotations

import pytest

from rdptrust.errors import RemoteProtocolError
from rdptrust.protocol import der
from rdptrust.protocol.ldap import (
    SEARCH_RESULT_DONE,
    SEARCH_RESULT_ENTRY,
    read_search_answer,
    search_request,
    unbind_request,
)

WANTED = ("certificateRevocationList;binary",)


def _message(message_id: int, op: bytes) -> bytes:
    return der.sequence(der.integer(message_id), op)


def _entry(dn: bytes, attrs: list[tuple[bytes, list[bytes]]]) -> bytes:
    parts = [
        der.sequence(
            der.octet_string(name), der.tlv(0x31, b"".join(der.octet_string(v) for v in values))
        )
        for name, values in attrs
    ]
    return der.tlv(SEARCH_RESULT_ENTRY, der.octet_string(dn) + der.sequence(*parts))


def _done(code: int, text: bytes = b"") -> bytes:
    return der.tlv(
        SEARCH_RESULT_DONE,
        der.tlv(der.Tag.ENUMERATED, bytes([code])) + der.octet_string(b"") + der.octet_string(text),
    )


def test_search_request_bytes() -> None:
    # Given the request for one attribute of cn=x with (objectClass=*)
    got = search_request(1, "cn=x", ("cACertificate;binary",))
    # Then it is a baseObject search: no bind, no name or password anywhere
    assert got == bytes.fromhex(
        "303f020101633a0404636e3d780a01000a0100020101020100010100870b6f626a656374436c617373"
        "30160414634143657274696669636174653b62696e617279"
    )
    equality = search_request(7, "cn=x", (), filter_equality=("objectClass", "pkiCA"))
    assert b"\xa3\x14\x04\x0bobjectClass\x04\x05pkiCA" in equality
    assert unbind_request(2) == bytes.fromhex("30050201024200")
    with pytest.raises(ValueError, match="message id"):
        search_request(0, "cn=x", ())


def test_answer_whole_byte_by_byte_and_with_trailing_bytes() -> None:
    stream = _message(
        1,
        _entry(
            b"cn=x",
            [
                (b"objectClass", [b"pkiCA"]),
                (b"certificateRevocationList;binary", [b"CRL1", b"CRL2"]),
            ],
        ),
    ) + _message(1, _done(0))
    answer = read_search_answer(stream, 1, WANTED, limit=1 << 20)
    assert answer is not None
    found, consumed = answer
    assert found.values == (b"CRL1", b"CRL2")
    assert found.result_code == 0
    assert consumed == len(stream)
    for cut in range(len(stream)):
        assert read_search_answer(stream[:cut], 1, WANTED, limit=1 << 20) is None
    again = read_search_answer(stream + b"\x30\x03", 1, WANTED, limit=1 << 20)
    assert again is not None
    assert again[1] == len(stream)


def test_error_result_and_stray_messages() -> None:
    stream = _message(0, _done(52, b"unavailable")) + _message(1, _done(32, b"no such object"))
    answer = read_search_answer(stream, 1, WANTED, limit=1 << 20)
    assert answer is not None
    assert answer[0].result_code == 32
    assert answer[0].message == "no such object"
    assert answer[0].values == ()


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"HTTP/1.1 200 OK\r\n\r\n", r"not an LDAP"),
        (_message(1, der.tlv(0x61, b"")), "unexpected LDAP operation"),
        (b"\x30\x84\x10\x00\x00\x00", "more than"),
    ],
)
def test_not_ldap(data: bytes, match: str) -> None:
    with pytest.raises(RemoteProtocolError, match=match):
        read_search_answer(data, 1, WANTED, limit=1 << 20)


def test_bytes_needed_points_past_the_next_message() -> None:
    from rdptrust.protocol.ldap import bytes_needed

    first = _message(1, _entry(b"cn=x", [(b"certificateRevocationList;binary", [b"C" * 300])]))
    done = _message(1, _done(0))
    stream = first + done
    assert bytes_needed(b"", limit=1 << 20) == 1
    assert bytes_needed(stream[:1], limit=1 << 20) == 2  # the length octets are not there yet
    assert bytes_needed(stream[:10], limit=1 << 20) == len(first)
    assert bytes_needed(stream[: len(first) + 1], limit=1 << 20) == len(first) + 2
    assert bytes_needed(stream[: len(first) + 3], limit=1 << 20) == len(stream)
