"""DER, and the definite-length BER that MCS and CredSSP peers write (ITU-T X.690 8.1).

The one TLV reader of rdptrust: the CredSSP TSRequest, the BER of MCS Connect-Initial
and Connect-Response, and the TBSCertificate fields ``cryptography`` does not hand out
are all read here; the builders write what rdptrust sends or signs.

Reading is strict about structure: single-octet tags only (the high tag number form
is refused), definite lengths only, at most :data:`MAX_LENGTH_OCTETS` length octets,
every element inside its parent. It is lenient only where BER senders differ from
DER: a long-form length where the short form would do is accepted. Each length is
checked against what holds it before a byte is copied, and every fault raises
:class:`~rdptrust.errors.RemoteProtocolError` naming the offset: the position in the
buffer plus ``base``, the buffer's own position in the whole message.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum

from rdptrust.errors import LocalProtocolError, RemoteProtocolError


class Tag(IntEnum):
    """Universal tags rdptrust reads or writes, as their identifier octet (X.680 8.6)."""

    BOOLEAN = 0x01
    INTEGER = 0x02
    BIT_STRING = 0x03
    OCTET_STRING = 0x04
    NULL = 0x05
    OBJECT_IDENTIFIER = 0x06
    ENUMERATED = 0x0A
    #: SEQUENCE and SEQUENCE OF, with the constructed bit (X.690 8.9).
    SEQUENCE = 0x30


#: Context-specific class with the constructed bit: ``[n] EXPLICIT`` is ``0xA0 | n``.
CONTEXT_CONSTRUCTED = 0xA0
#: Tag number 31 in the first octet: the number follows in more octets (X.690 8.1.2.4).
_HIGH_TAG_NUMBER = 0x1F
#: Most length octets read: 4 (up to 4 GiB), far more than any caller accepts.
MAX_LENGTH_OCTETS = 4
#: The encoding of NULL (X.690 8.8).
NULL = bytes([Tag.NULL, 0])


@dataclass(frozen=True)
class Element:
    """One TLV: its tag, where it starts and where its content starts and ends.

    Offsets index the buffer the element was read from (``base`` is not added). An
    element from :func:`read_header` may end past that buffer; one from
    :func:`read_element`, :func:`expect` or :func:`children` lies inside its parent.
    """

    tag: int
    offset: int
    start: int
    end: int

    @property
    def length(self) -> int:
        """The length the header announces."""
        return self.end - self.start

    def content(self, data: bytes) -> bytes:
        """The content octets, copied out of *data*."""
        return bytes(data[self.start : self.end])

    def encoding(self, data: bytes) -> bytes:
        """The whole element, header included, copied out of *data*."""
        return bytes(data[self.offset : self.end])


# -- reading ----------------------------------------------------------------------------


def read_length(
    data: bytes,
    offset: int,
    end: int,
    *,
    what: str = "DER",
    base: int = 0,
    max_octets: int = MAX_LENGTH_OCTETS,
) -> tuple[int, int] | None:
    """Read the length octets at *offset*: ``(length, offset after them)``.

    ``None`` when they do not all lie before *end*. The indefinite form and a length
    of more than *max_octets* octets raise :class:`RemoteProtocolError`.
    """
    if offset >= end:
        return None
    first = data[offset]
    if first < 0x80:
        return first, offset + 1
    count = first & 0x7F
    if count == 0:
        raise RemoteProtocolError(f"{what}: indefinite length is not DER", base + offset)
    if count > max_octets:
        raise RemoteProtocolError(
            f"{what}: length of {count} octets is too long (at most {max_octets})",
            base + offset,
        )
    if end - offset <= count:
        return None
    return int.from_bytes(data[offset + 1 : offset + 1 + count], "big"), offset + 1 + count


def read_header(
    data: bytes,
    offset: int = 0,
    end: int | None = None,
    *,
    what: str = "DER",
    base: int = 0,
    max_octets: int = MAX_LENGTH_OCTETS,
) -> Element | None:
    """Read the tag and length at *offset*; ``None`` while they are not all before *end*.

    *end* defaults to the end of *data*. The content is not checked: the element may
    run past *end* (:func:`read_element` refuses that, :func:`parse_element` waits).
    """
    stop = len(data) if end is None else end
    if offset >= stop:
        return None
    tag = data[offset]
    if tag & _HIGH_TAG_NUMBER == _HIGH_TAG_NUMBER:
        raise RemoteProtocolError(
            f"{what}: tag 0x{tag:02x} uses the multi-byte form", base + offset
        )
    parsed = read_length(data, offset + 1, stop, what=what, base=base, max_octets=max_octets)
    if parsed is None:
        return None
    length, start = parsed
    return Element(tag, offset, start, start + length)


def parse_element(
    data: bytes, offset: int = 0, *, what: str = "DER", base: int = 0, limit: int | None = None
) -> tuple[Element, int] | None:
    """One whole element at *offset* of a stream: ``(element, consumed)``.

    ``None`` when more bytes are needed. *limit* bounds the whole element, header
    included: a header announcing more raises as soon as it is complete, before any
    waiting for the content. Bytes after the element are left alone.
    """
    header = read_header(data, offset, what=what, base=base)
    if header is None:
        return None
    if limit is not None and header.end - offset > limit:
        raise RemoteProtocolError(
            f"{what}: announces {header.length} bytes, more than {limit}", base + offset + 1
        )
    if header.end > len(data):
        return None
    return header, header.end - offset


def read_element(
    data: bytes,
    offset: int,
    end: int,
    *,
    what: str = "DER",
    base: int = 0,
    max_octets: int = MAX_LENGTH_OCTETS,
) -> Element:
    """The whole element at *offset*, which must lie inside ``[offset, end)``."""
    header = read_header(data, offset, end, what=what, base=base, max_octets=max_octets)
    if header is None:
        raise RemoteProtocolError(f"{what}: header runs past the end of its parent", base + offset)
    if header.end > end:
        raise RemoteProtocolError(
            f"{what}: announces {header.length} bytes, its parent holds {end - header.start}",
            base + offset,
        )
    return header


def expect(
    data: bytes, offset: int, end: int, tag: int, *, what: str = "DER", base: int = 0
) -> Element:
    """The whole element at *offset* inside ``[offset, end)``, which must have *tag*."""
    element = read_element(data, offset, end, what=what, base=base)
    if element.tag != tag:
        raise RemoteProtocolError(
            f"{what}: expected tag 0x{tag:02x}, got 0x{element.tag:02x}", base + offset
        )
    return element


def children(
    data: bytes, start: int, end: int, *, what: str = "DER", base: int = 0
) -> Iterator[Element]:
    """The elements that fill ``[start, end)`` one after another (a constructed content)."""
    pos = start
    while pos < end:
        element = read_element(data, pos, end, what=what, base=base)
        yield element
        pos = element.end


def spans(
    data: bytes, start: int, end: int, count: int, *, what: str = "DER"
) -> list[tuple[int, int, int]]:
    """The first *count* elements filling ``[start, end)``, as ``(tag, offset, end)``.

    What :func:`children` reads, without an :class:`Element` per element: for the few
    top-level fields of a structure read once per certificate. Fewer than *count* when
    the content holds fewer; the same errors as :func:`read_element`.
    """
    found: list[tuple[int, int, int]] = []
    pos = start
    while pos < end and len(found) < count:
        tag = data[pos]
        if tag & _HIGH_TAG_NUMBER == _HIGH_TAG_NUMBER or pos + 1 >= end:
            # the rare and the broken: the full reader says what is wrong
            element = read_element(data, pos, end, what=what)
            found.append((element.tag, pos, element.end))
            pos = element.end
            continue
        first = data[pos + 1]
        if first < 0x80:
            stop = pos + 2 + first
        else:
            count_octets = first & 0x7F
            head = pos + 2 + count_octets
            if count_octets == 0 or count_octets > MAX_LENGTH_OCTETS or head > end:
                element = read_element(data, pos, end, what=what)
                found.append((element.tag, pos, element.end))
                pos = element.end
                continue
            stop = head + int.from_bytes(data[pos + 2 : head], "big")
        if stop > end:
            read_element(data, pos, end, what=what)  # raises: runs past its parent
        found.append((tag, pos, stop))
        pos = stop
    return found


def read_integer(
    data: bytes,
    element: Element,
    *,
    what: str = "DER",
    base: int = 0,
    max_octets: int,
    signed: bool = True,
) -> int:
    """The value of an INTEGER or ENUMERATED *element* of 1 to *max_octets* content octets.

    ``signed=False`` reads the octets as unsigned, as MCS peers write values such as
    65535 (``ff ff``) that DER would read as -1.
    """
    if not 0 < element.length <= max_octets:
        raise RemoteProtocolError(
            f"{what}: INTEGER of {element.length} bytes", base + element.offset
        )
    return int.from_bytes(data[element.start : element.end], "big", signed=signed)


# -- building ---------------------------------------------------------------------------


def encode_length(length: int) -> bytes:
    """A definite length: one octet below 128, else ``0x80 | n`` and the fewest *n* octets."""
    if length < 0:
        raise LocalProtocolError(f"negative length {length}")
    if length < 0x80:
        return bytes([length])
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    if len(octets) > MAX_LENGTH_OCTETS:
        raise LocalProtocolError(f"length {length} needs more than {MAX_LENGTH_OCTETS} octets")
    return bytes([0x80 | len(octets)]) + octets


def tlv(tag: int, content: bytes) -> bytes:
    """One element with the single-octet *tag*."""
    if not 0 <= tag <= 0xFF or tag & _HIGH_TAG_NUMBER == _HIGH_TAG_NUMBER:
        raise LocalProtocolError(f"tag {tag:#x} is not a single-octet tag")
    return bytes([tag]) + encode_length(len(content)) + content


def integer(value: int, *, unsigned: bool = False) -> bytes:
    """An INTEGER: minimal two's complement (DER), or with ``unsigned`` the fewest octets.

    The unsigned form drops the sign octet (65535 as ``02 02 ff ff``): what the Windows
    client writes in MCS Connect-Initial (MS-RDPBCGR 4.1.3), not DER.
    """
    if unsigned:
        if value < 0:
            raise LocalProtocolError(f"an unsigned INTEGER cannot be {value}")
        return tlv(Tag.INTEGER, value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))
    size = (value + (value < 0)).bit_length() // 8 + 1
    return tlv(Tag.INTEGER, value.to_bytes(size, "big", signed=True))


def boolean(value: bool) -> bytes:
    """A BOOLEAN; DER writes TRUE as ``ff`` (X.690 11.1)."""
    return tlv(Tag.BOOLEAN, b"\xff" if value else b"\x00")


def octet_string(value: bytes) -> bytes:
    return tlv(Tag.OCTET_STRING, value)


def bit_string(value: bytes) -> bytes:
    """A BIT STRING of whole octets (no unused bits), as a signature is."""
    return tlv(Tag.BIT_STRING, b"\x00" + value)


def sequence(*items: bytes) -> bytes:
    """A SEQUENCE of the already encoded *items*."""
    return tlv(Tag.SEQUENCE, b"".join(items))


def explicit(number: int, inner: bytes) -> bytes:
    """``[number] EXPLICIT`` around the encoded *inner* element."""
    if not 0 <= number < _HIGH_TAG_NUMBER:
        raise LocalProtocolError(f"context tag [{number}] needs the multi-byte form")
    return tlv(CONTEXT_CONSTRUCTED | number, inner)


def object_identifier(dotted: str) -> bytes:
    """An OBJECT IDENTIFIER from its dotted form, such as ``1.2.840.113549.1.1.5``."""
    try:
        arcs = [int(arc) for arc in dotted.split(".")]
    except ValueError:
        raise LocalProtocolError(f"{dotted!r} is not a dotted object identifier") from None
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] > 39) or min(arcs) < 0:
        raise LocalProtocolError(f"{dotted!r} is not a valid object identifier")
    body = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body += bytes(reversed(chunk))
    return tlv(Tag.OBJECT_IDENTIFIER, bytes(body))
