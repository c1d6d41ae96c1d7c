"""LDAPv3 anonymous search, sans-I/O: the one request rdptrust sends and its answers.

rdptrust reads a CRL or CA certificate from an ``ldap://`` URL as the Windows client
does, but never binds: an LDAPv3 search without a Bind is anonymous (RFC 4511 4.2.1,
4.5.1), so no name or password is ever sent. Only what that needs is here: a
``searchRequest`` for one entry (scope baseObject), an ``unbindRequest``, and a reader
for ``searchResEntry`` / ``searchResDone`` (RFC 4511 4.5.2). BER as X.690, read with
:mod:`rdptrust.protocol.der`.
"""

from __future__ import annotations

from dataclasses import dataclass

from rdptrust.errors import RemoteProtocolError
from rdptrust.protocol import der

#: RFC 4511 4.2-4.5: [APPLICATION n] tags, constructed unless noted.
SEARCH_REQUEST = 0x63
SEARCH_RESULT_ENTRY = 0x64
SEARCH_RESULT_DONE = 0x65
SEARCH_RESULT_REFERENCE = 0x73
#: [APPLICATION 2] NULL, primitive.
UNBIND_REQUEST = 0x42
#: Filter choices (RFC 4511 4.5.1.7): equalityMatch [3] (constructed), present [7].
_FILTER_EQUALITY = 0xA3
_FILTER_PRESENT = 0x87
_SET = 0x31
#: resultCode success (RFC 4511 4.1.9).
SUCCESS = 0


def _string(value: str) -> bytes:
    return der.octet_string(value.encode("utf-8"))


def _enumerated(value: int) -> bytes:
    return der.tlv(der.Tag.ENUMERATED, bytes([value]))


def search_request(
    message_id: int,
    base_dn: str,
    attributes: tuple[str, ...],
    *,
    filter_equality: tuple[str, str] | None = None,
    time_limit_s: int = 0,
) -> bytes:
    """An LDAPMessage carrying a baseObject ``searchRequest`` for *base_dn*.

    The filter is ``(attr=value)`` for *filter_equality*, else ``(objectClass=*)``;
    sizeLimit 1, derefAliases never, typesOnly false (RFC 4511 4.5.1).
    """
    if not 0 < message_id < 2**31:
        raise ValueError("message id must be 1 to 2**31-1")
    if filter_equality is not None:
        attr, value = filter_equality
        ldap_filter = der.tlv(_FILTER_EQUALITY, _string(attr) + _string(value))
    else:
        ldap_filter = der.tlv(_FILTER_PRESENT, b"objectClass")
    body = b"".join(
        (
            _string(base_dn),
            _enumerated(0),  # scope: baseObject
            _enumerated(0),  # derefAliases: neverDerefAliases
            der.integer(1),  # sizeLimit
            der.integer(max(0, time_limit_s)),
            der.boolean(False),  # typesOnly
            ldap_filter,
            der.sequence(*(_string(a) for a in attributes)),
        )
    )
    return der.sequence(der.integer(message_id), der.tlv(SEARCH_REQUEST, body))


def unbind_request(message_id: int) -> bytes:
    """An LDAPMessage carrying ``unbindRequest`` (RFC 4511 4.3)."""
    return der.sequence(der.integer(message_id), bytes([UNBIND_REQUEST, 0]))


@dataclass(frozen=True)
class SearchAnswer:
    """What one search brought: the values of the requested attributes (in the order
    the server sent them) and the ``searchResDone`` result code and message."""

    values: tuple[bytes, ...]
    result_code: int
    message: str


def _entry_values(data: bytes, op: der.Element, wanted: tuple[str, ...]) -> list[bytes]:
    what = "LDAP searchResEntry"
    name = der.expect(data, op.start, op.end, der.Tag.OCTET_STRING, what=what)
    attrs = der.expect(data, name.end, op.end, der.Tag.SEQUENCE, what=what)
    names = {w.lower().partition(";")[0] for w in wanted}
    values: list[bytes] = []
    for attribute in der.children(data, attrs.start, attrs.end, what=what):
        kind = der.expect(data, attribute.start, attribute.end, der.Tag.OCTET_STRING, what=what)
        vals = der.expect(data, kind.end, attribute.end, _SET, what=what)
        described = kind.content(data).decode("utf-8", "replace").lower().partition(";")[0]
        if names and described not in names:
            continue
        for value in der.children(data, vals.start, vals.end, what=what):
            values.append(value.content(data))
    return values


def read_search_answer(
    data: bytes, message_id: int, wanted: tuple[str, ...], *, limit: int
) -> tuple[SearchAnswer, int] | None:
    """Read the answer to search *message_id* from a stream: ``(answer, consumed)``.

    ``None`` while ``searchResDone`` has not arrived whole. Messages larger than *limit*
    bytes, and anything that is not LDAP, raise :class:`RemoteProtocolError`.
    """
    offset = 0
    values: list[bytes] = []
    while True:
        if offset < len(data) and data[offset] != der.Tag.SEQUENCE:
            # refused at once, not after waiting for the length a stray byte announces
            raise RemoteProtocolError(f"not an LDAP message (byte 0x{data[offset]:02x})", offset)
        parsed = der.parse_element(data, offset, what="LDAPMessage", limit=limit)
        if parsed is None:
            return None
        message, consumed = parsed
        number = der.expect(
            data, message.start, message.end, der.Tag.INTEGER, what="LDAP messageID"
        )
        got = der.read_integer(data, number, what="LDAP messageID", max_octets=4)
        op = der.read_element(data, number.end, message.end, what="LDAP protocolOp")
        offset += consumed
        if got != message_id:
            continue  # a notice of disconnection (id 0) or a stray message
        if op.tag == SEARCH_RESULT_ENTRY:
            values.extend(_entry_values(data, op, wanted))
        elif op.tag == SEARCH_RESULT_DONE:
            code_el = der.expect(data, op.start, op.end, der.Tag.ENUMERATED, what="LDAPResult")
            code = der.read_integer(data, code_el, what="LDAP resultCode", max_octets=4)
            matched = der.expect(data, code_el.end, op.end, der.Tag.OCTET_STRING, what="LDAPResult")
            text = der.expect(data, matched.end, op.end, der.Tag.OCTET_STRING, what="LDAPResult")
            message_text = text.content(data).decode("utf-8", "replace")
            return SearchAnswer(tuple(values), code, message_text), offset
        elif op.tag != SEARCH_RESULT_REFERENCE:
            raise RemoteProtocolError(
                f"unexpected LDAP operation 0x{op.tag:02x} for a search", op.offset
            )


def bytes_needed(data: bytes, *, limit: int) -> int:
    """How long a stream holding *data* must be before its next LDAP message is whole
    (``len(data) + 1`` while the next header itself is incomplete), so a reader waits
    for that much instead of parsing again after every chunk."""
    offset = 0
    while True:
        parsed = der.parse_element(data, offset, what="LDAPMessage", limit=limit)
        if parsed is None:
            header = der.read_header(data, offset, what="LDAPMessage")
            return len(data) + 1 if header is None else header.end
        offset += parsed[1]
