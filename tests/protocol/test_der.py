"""The one DER reader (rdptrust.protocol.der): vectors whole, one byte at a time and with
trailing bytes; bad lengths and tags with their offsets; builders; build-parse round trips."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fixtures.vectors import load_hex
from rdptrust.errors import LocalProtocolError, RemoteProtocolError
from rdptrust.protocol import der
from rdptrust.protocol.der import CONTEXT_CONSTRUCTED, Element, Tag

# (encoding, tag, content): short form, every long form, a non-minimal long form as BER
# senders write it, constructed elements, and a whole CredSSP TSRequest.
VECTORS = [
    ("0500", Tag.NULL, ""),
    ("020100", Tag.INTEGER, "00"),
    ("0403616263", Tag.OCTET_STRING, "616263"),
    ("04817f" + "ab" * 127, Tag.OCTET_STRING, "ab" * 127),
    ("048180" + "cd" * 128, Tag.OCTET_STRING, "cd" * 128),
    ("04820100" + "ef" * 256, Tag.OCTET_STRING, "ef" * 256),
    ("0483000101" + "01" * 257, Tag.OCTET_STRING, "01" * 257),
    ("04840000000100", Tag.OCTET_STRING, "00"),
    ("04810161", Tag.OCTET_STRING, "61"),  # 0x81 0x01 where DER says 0x01
    ("3006020101020102", Tag.SEQUENCE, "020101020102"),
    ("a003020106", CONTEXT_CONSTRUCTED, "020106"),
    ("300d06092a864886f70d01010b0500", Tag.SEQUENCE, "06092a864886f70d01010b0500"),
]
IDS = [encoding[:12] for encoding, _, _ in VECTORS]


@pytest.mark.parametrize(("encoding", "tag", "content"), VECTORS, ids=IDS)
def test_vector_whole(encoding: str, tag: int, content: str) -> None:
    data = bytes.fromhex(encoding)
    element, consumed = der.parse_element(data) or pytest.fail("need more data")
    assert consumed == len(data)
    assert element.tag == tag
    assert element.content(data).hex() == content
    assert element.encoding(data) == data
    assert der.read_element(data, 0, len(data)) == element
    assert der.expect(data, 0, len(data), tag) == element


@pytest.mark.parametrize(("encoding", "tag", "content"), VECTORS, ids=IDS)
def test_vector_one_byte_at_a_time(encoding: str, tag: int, content: str) -> None:
    data = bytes.fromhex(encoding)
    for end in range(len(data)):
        assert der.parse_element(data[:end]) is None, end
    assert der.parse_element(data) is not None


@pytest.mark.parametrize(("encoding", "tag", "content"), VECTORS, ids=IDS)
def test_vector_with_trailing_bytes(encoding: str, tag: int, content: str) -> None:
    data = bytes.fromhex(encoding)
    element, consumed = der.parse_element(data + b"\x30\x82\xff") or pytest.fail("need more")
    assert consumed == len(data)
    assert (element.tag, element.end) == (tag, len(data))
    # At an offset inside a bigger buffer, offsets stay the buffer's own.
    shifted, used = der.parse_element(b"\x00\x00" + data + b"\x00", 2) or pytest.fail("need more")
    assert used == len(data)
    assert shifted == Element(tag, 2, element.start + 2, element.end + 2)


def test_tsrequest_vector_whole_and_by_children() -> None:
    data = load_hex("credssp/tsrequest_nmap_negotiate.hex")
    request, consumed = der.parse_element(data) or pytest.fail("need more data")
    assert consumed == len(data) == 57
    fields = list(der.children(data, request.start, request.end))
    assert [f.tag for f in fields] == [0xA0, 0xA1]
    version = der.expect(data, fields[0].start, fields[0].end, Tag.INTEGER)
    assert der.read_integer(data, version, max_octets=5) == 0x60


@pytest.mark.parametrize(
    ("data", "words", "offset"),
    [
        ("3080", "indefinite", 1),
        ("0480", "indefinite", 1),
        ("30850000000001", "5 octets is too long", 1),
        ("30ff", "127 octets is too long", 1),
        ("1f8101", "multi-byte", 0),
        ("3f00", "multi-byte", 0),
    ],
)
def test_bad_header_names_its_offset(data: str, words: str, offset: int) -> None:
    raw = bytes.fromhex(data)
    for parse in (
        lambda: der.parse_element(raw, base=100),
        lambda: der.read_element(raw, 0, len(raw), base=100),
    ):
        with pytest.raises(RemoteProtocolError, match=words) as excinfo:
            parse()
        assert excinfo.value.offset == 100 + offset


def test_oversized_length_is_refused_from_the_header() -> None:
    # A 4 GiB announcement is refused before a byte of content is there.
    header = bytes.fromhex("3084ffffffff")
    with pytest.raises(RemoteProtocolError, match="more than 65536") as excinfo:
        der.parse_element(header, what="TSRequest", limit=65536, base=7)
    assert excinfo.value.offset == 8
    assert der.parse_element(header) is None  # no limit: wait for the content
    with pytest.raises(RemoteProtocolError, match="3 octets is too long") as excinfo:
        der.read_length(bytes.fromhex("83010000"), 0, 4, max_octets=2, base=3)
    assert excinfo.value.offset == 3


@pytest.mark.parametrize(("encoding", "tag", "content"), VECTORS, ids=IDS)
def test_truncated_inside_a_parent(encoding: str, tag: int, content: str) -> None:
    data = bytes.fromhex(encoding)
    for end in range(len(data)):
        with pytest.raises(RemoteProtocolError, match=r"runs past|announces") as excinfo:
            der.read_element(data, 0, end, what="field", base=50)
        assert excinfo.value.offset == 50
        assert str(excinfo.value).startswith("field: ")


def test_child_running_past_its_parent_names_the_child() -> None:
    data = bytes.fromhex("3007 020101 020501 0000")
    parent = der.read_element(data, 0, 9)
    children = der.children(data, parent.start, parent.end, what="item", base=10)
    assert next(children).tag == Tag.INTEGER
    with pytest.raises(RemoteProtocolError, match="announces 5 bytes, its parent holds 2") as ei:
        next(children)
    assert ei.value.offset == 15


def test_expect_and_read_integer_refusals() -> None:
    data = bytes.fromhex("0400 0200 0206000000000001")
    with pytest.raises(RemoteProtocolError, match="expected tag 0x02, got 0x04") as excinfo:
        der.expect(data, 0, len(data), Tag.INTEGER, base=1)
    assert excinfo.value.offset == 1
    empty = der.expect(data, 2, len(data), Tag.INTEGER)
    with pytest.raises(RemoteProtocolError, match="INTEGER of 0 bytes") as excinfo:
        der.read_integer(data, empty, max_octets=5)
    assert excinfo.value.offset == 2
    wide = der.expect(data, 4, len(data), Tag.INTEGER)
    with pytest.raises(RemoteProtocolError, match="INTEGER of 6 bytes"):
        der.read_integer(data, wide, max_octets=5)
    assert der.read_integer(data, wide, max_octets=6) == 1


@pytest.mark.parametrize(
    ("value", "encoded"),
    [(0, "020100"), (127, "02017f"), (128, "02020080"), (-128, "020180"), (-129, "0202ff7f")],
)
def test_der_integer(value: int, encoded: str) -> None:
    assert der.integer(value).hex() == encoded


def test_lengths_and_the_integers_mcs_writes() -> None:
    assert der.encode_length(5) == b"\x05"
    assert der.encode_length(0x194) == b"\x82\x01\x94"
    assert der.encode_length(0x7F) == b"\x7f"
    assert der.encode_length(0x80) == b"\x81\x80"
    assert der.encode_length(0xFFFFFFFF) == b"\x84\xff\xff\xff\xff"
    assert der.integer(65535, unsigned=True) == b"\x02\x02\xff\xff"
    assert der.integer(65528, unsigned=False) == b"\x02\x03\x00\xff\xf8"
    assert der.integer(0, unsigned=True) == b"\x02\x01\x00"


def test_other_builders() -> None:
    assert der.boolean(True) == b"\x01\x01\xff"
    assert der.boolean(False) == b"\x01\x01\x00"
    assert der.NULL == b"\x05\x00"
    assert der.bit_string(b"\xab") == b"\x03\x02\x00\xab"
    assert der.explicit(3, der.octet_string(b"")) == b"\xa3\x02\x04\x00"
    assert der.sequence() == b"\x30\x00"
    # sha256WithRSAEncryption and sha1WithRSAEncryption AlgorithmIdentifiers (RFC 4055).
    sha256 = der.sequence(der.object_identifier("1.2.840.113549.1.1.11"), der.NULL)
    assert sha256.hex() == "300d06092a864886f70d01010b0500"
    assert der.object_identifier("1.2.840.113549.1.1.5").hex() == "06092a864886f70d010105"
    assert der.object_identifier("2.999.3").hex() == "0603883703"
    assert der.object_identifier("0.0.20.124.0.1").hex() == "060500147c0001"  # T.124


@pytest.mark.parametrize(
    "build",
    [
        lambda: der.encode_length(-1),
        lambda: der.encode_length(1 << 32),
        lambda: der.tlv(0x1F, b""),
        lambda: der.tlv(0x100, b""),
        lambda: der.integer(-1, unsigned=True),
        lambda: der.explicit(31, b""),
        lambda: der.object_identifier("1"),
        lambda: der.object_identifier("3.1"),
        lambda: der.object_identifier("1.40"),
        lambda: der.object_identifier("1.2.x"),
    ],
)
def test_builders_refuse_what_der_cannot_say(build: object) -> None:
    with pytest.raises(LocalProtocolError):
        build()  # type: ignore[operator]


# -- round trips -------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    tag: int
    content: bytes = b""
    children: tuple[Node, ...] | None = None  # None: primitive

    def build(self) -> bytes:
        if self.children is None:
            return der.tlv(self.tag, self.content)
        return der.tlv(self.tag, b"".join(child.build() for child in self.children))


def _parse(data: bytes, element: Element) -> Node:
    if not element.tag & 0x20:
        return Node(element.tag, element.content(data))
    children = der.children(data, element.start, element.end)
    return Node(element.tag, children=tuple(_parse(data, child) for child in children))


PRIMITIVE_TAGS = st.sampled_from([Tag.BOOLEAN, Tag.INTEGER, Tag.OCTET_STRING, Tag.NULL, 0x80])
CONSTRUCTED_TAGS = st.sampled_from([Tag.SEQUENCE, 0x31, 0xA0, 0xA5, 0x7E])
TREES = st.recursive(
    st.builds(Node, PRIMITIVE_TAGS, st.binary(max_size=300)),
    lambda inner: st.builds(
        Node, CONSTRUCTED_TAGS, st.just(b""), st.lists(inner, max_size=4).map(tuple)
    ),
    max_leaves=12,
)


@given(TREES)
def test_round_trip_build_parse(tree: Node) -> None:
    data = tree.build()
    element, consumed = der.parse_element(data + b"\x00") or pytest.fail("need more data")
    assert consumed == len(data)
    assert _parse(data, element) == tree
    assert der.parse_element(data[:-1]) is None


@given(st.integers(-(2**70), 2**70))
def test_integer_round_trip(value: int) -> None:
    data = der.integer(value)
    element = der.expect(data, 0, len(data), Tag.INTEGER)
    assert der.read_integer(data, element, max_octets=10) == value


@given(st.integers(0, 2**64))
def test_unsigned_integer_round_trip(value: int) -> None:
    data = der.integer(value, unsigned=True)
    element = der.expect(data, 0, len(data), Tag.INTEGER)
    assert der.read_integer(data, element, max_octets=9, signed=False) == value


@given(st.binary(max_size=64))
def test_arbitrary_bytes_parse_or_raise_remote_protocol_error(data: bytes) -> None:
    try:
        parsed = der.parse_element(data)
    except RemoteProtocolError as exc:
        offset = exc.offset
        assert offset is not None
        assert 0 <= offset < len(data)
        return
    if parsed is not None:
        element, consumed = parsed
        assert element.end == consumed <= len(data)


# --- spans: the top-level fields of a structure, as (tag, offset, end) -------------------


@pytest.mark.parametrize(("encoding", "tag", "content"), VECTORS)
def test_spans_reads_what_children_reads(encoding: str, tag: int, content: str) -> None:
    # Given the vector twice in a row, then a NULL
    data = bytes.fromhex(encoding) * 2 + bytes.fromhex("0500")
    expected = [(e.tag, e.offset, e.end) for e in der.children(data, 0, len(data))]
    assert der.spans(data, 0, len(data), 10) == expected
    # and at most count of them
    assert der.spans(data, 0, len(data), 2) == expected[:2]


@given(st.lists(st.binary(max_size=300), max_size=6), st.integers(0, 7))
def test_spans_agree_with_children_on_any_content(values: list[bytes], count: int) -> None:
    data = b"".join(der.octet_string(v) for v in values)
    expected = [(e.tag, e.offset, e.end) for e in der.children(data, 0, len(data))][:count]
    assert der.spans(data, 0, len(data), count) == expected


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("0403616263", "parent holds"),  # runs past the end given (4 bytes of it)
        ("0480", "indefinite length"),
        ("048500000000010000", "too long"),
        ("1f0100", "multi-byte form"),
        ("04", "past the end"),
        ("0482", "past the end"),
    ],
)
def test_spans_refuse_what_read_element_refuses(data: str, message: str) -> None:
    raw = bytes.fromhex(data)
    end = 4 if data == "0403616263" else len(raw)
    with pytest.raises(RemoteProtocolError, match=message):
        der.spans(raw, 0, end, 3)
