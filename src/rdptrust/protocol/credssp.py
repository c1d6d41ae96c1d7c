"""CredSSP TSRequest (MS-CSSP 2.2.1) in DER, and the anonymous NTLM exchange it carries.

Sans-I/O. Inside TLS, CredSSP messages are raw DER with no framing of their own, so
:func:`parse_ts_request` reads one TSRequest from the start of a buffer and returns
``(value, consumed)``, or ``None`` while the bytes announced by its header have not all
arrived. The announced length is checked against :data:`MAX_TS_REQUEST_LENGTH` as soon
as the header is complete, before any waiting or copying.

::

    TSRequest ::= SEQUENCE {
        version     [0] INTEGER,
        negoTokens  [1] NegoData  OPTIONAL,
        authInfo    [2] OCTET STRING OPTIONAL,
        pubKeyAuth  [3] OCTET STRING OPTIONAL,
        errorCode   [4] INTEGER OPTIONAL,
        clientNonce [5] OCTET STRING OPTIONAL }
    NegoData ::= SEQUENCE OF SEQUENCE { negoToken [0] OCTET STRING }

The DER reader here is small and strict about structure (definite lengths only, every
length inside its parent) but accepts a long-form length where a short one would do,
as BER senders produce.
"""

from __future__ import annotations

from dataclasses import dataclass

from rdptrust.errors import LocalProtocolError, RemoteProtocolError
from rdptrust.protocol.ntlm import (
    ChallengeMessage,
    NegotiateMessage,
    Version,
    parse_challenge,
)

#: The TSRequest version we send: 6 (MS-CSSP 2.2.1, the newest; 2-6 are valid).
TS_REQUEST_VERSION = 6
#: Largest TSRequest accepted: an NTLM exchange needs a few hundred bytes, Kerberos a few KiB.
MAX_TS_REQUEST_LENGTH = 64 * 1024
#: NTSTATUS STATUS_LOGON_FAILURE, what a host answers when authentication fails.
STATUS_LOGON_FAILURE = 0xC000006D

_SEQUENCE = 0x30
_INTEGER = 0x02
_OCTET_STRING = 0x04
#: Longest INTEGER content accepted: a 32-bit value may need a leading zero byte.
_MAX_INTEGER_BYTES = 5


# -- DER -----------------------------------------------------------------------------------


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def der_element(tag: int, content: bytes) -> bytes:
    """One DER TLV with a single-byte *tag*."""
    return bytes([tag]) + _der_length(len(content)) + content


def der_integer(value: int) -> bytes:
    """A DER INTEGER (two's complement, minimal)."""
    size = max(1, (value + (value < 0)).bit_length() // 8 + 1)
    return der_element(_INTEGER, value.to_bytes(size, "big", signed=True))


def _explicit(number: int, inner: bytes) -> bytes:
    return der_element(0xA0 | number, inner)


def read_header(data: bytes, offset: int, end: int) -> tuple[int, int, int] | None:
    """Read the TLV header at *offset*; return ``(tag, content_start, content_length)``.

    ``None`` means the header is not complete before *end*. Multi-byte tags, indefinite
    lengths and lengths wider than 4 bytes raise :class:`RemoteProtocolError`.
    """
    if end - offset < 2:
        return None
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise RemoteProtocolError(f"DER tag 0x{tag:02x} uses the multi-byte form", offset)
    first = data[offset + 1]
    if first < 0x80:
        return tag, offset + 2, first
    count = first & 0x7F
    if count == 0:
        raise RemoteProtocolError("indefinite length is not DER", offset + 1)
    if count > 4:
        raise RemoteProtocolError(f"DER length of {count} bytes is too long", offset + 1)
    if end - offset < 2 + count:
        return None
    length = int.from_bytes(data[offset + 2 : offset + 2 + count], "big")
    return tag, offset + 2 + count, length


def _element(data: bytes, offset: int, end: int, what: str) -> tuple[int, int, int]:
    """A whole element inside ``[offset, end)``: ``(tag, content_start, content_end)``."""
    header = read_header(data, offset, end)
    if header is None:
        raise RemoteProtocolError(f"{what}: header runs past the end of its parent", offset)
    tag, start, length = header
    if length > end - start:
        raise RemoteProtocolError(
            f"{what}: announces {length} bytes, its parent holds {end - start}", offset
        )
    return tag, start, start + length


def _expect(data: bytes, offset: int, end: int, tag: int, what: str) -> tuple[int, int]:
    got, start, stop = _element(data, offset, end, what)
    if got != tag:
        raise RemoteProtocolError(f"{what}: expected tag 0x{tag:02x}, got 0x{got:02x}", offset)
    return start, stop


def _integer(data: bytes, offset: int, end: int, what: str) -> tuple[int, int]:
    start, stop = _expect(data, offset, end, _INTEGER, what)
    if not 0 < stop - start <= _MAX_INTEGER_BYTES:
        raise RemoteProtocolError(f"{what}: INTEGER of {stop - start} bytes", offset)
    return int.from_bytes(data[start:stop], "big", signed=True), stop


def _octets(data: bytes, offset: int, end: int, what: str) -> tuple[bytes, int]:
    start, stop = _expect(data, offset, end, _OCTET_STRING, what)
    return bytes(data[start:stop]), stop


# -- TSRequest -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TSRequest:
    """TSRequest (MS-CSSP 2.2.1). Each optional field is ``None`` (or empty) when absent.

    ``error_code`` is the NTSTATUS as an unsigned 32-bit value (on the wire it is a
    signed INTEGER).
    """

    version: int = TS_REQUEST_VERSION
    nego_tokens: tuple[bytes, ...] = ()
    auth_info: bytes | None = None
    pub_key_auth: bytes | None = None
    error_code: int | None = None
    client_nonce: bytes | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.version <= 0x7FFFFFFF:
            raise LocalProtocolError(f"TSRequest version {self.version} is out of range")
        if self.error_code is not None and not 0 <= self.error_code <= 0xFFFFFFFF:
            raise LocalProtocolError(f"errorCode {self.error_code:#x} does not fit 32 bits")
        if self.client_nonce is not None and len(self.client_nonce) != 32:
            raise LocalProtocolError("clientNonce is exactly 32 bytes")

    def to_bytes(self) -> bytes:
        body = _explicit(0, der_integer(self.version))
        if self.nego_tokens:
            items = b"".join(
                der_element(_SEQUENCE, _explicit(0, der_element(_OCTET_STRING, token)))
                for token in self.nego_tokens
            )
            body += _explicit(1, der_element(_SEQUENCE, items))
        if self.auth_info is not None:
            body += _explicit(2, der_element(_OCTET_STRING, self.auth_info))
        if self.pub_key_auth is not None:
            body += _explicit(3, der_element(_OCTET_STRING, self.pub_key_auth))
        if self.error_code is not None:
            signed = self.error_code - ((self.error_code & 0x80000000) << 1)
            body += _explicit(4, der_integer(signed))
        if self.client_nonce is not None:
            body += _explicit(5, der_element(_OCTET_STRING, self.client_nonce))
        out = der_element(_SEQUENCE, body)
        if len(out) > MAX_TS_REQUEST_LENGTH:
            raise LocalProtocolError(f"TSRequest of {len(out)} bytes is too long")
        return out


def _nego_tokens(data: bytes, start: int, end: int) -> tuple[bytes, ...]:
    seq_start, seq_end = _expect(data, start, end, _SEQUENCE, "negoTokens")
    if seq_end != end:
        raise RemoteProtocolError("bytes after the NegoData SEQUENCE", seq_end)
    tokens: list[bytes] = []
    pos = seq_start
    while pos < seq_end:
        item_start, item_end = _expect(data, pos, seq_end, _SEQUENCE, "NegoData item")
        inner_start, inner_end = _expect(data, item_start, item_end, 0xA0, "negoToken")
        token, after = _octets(data, inner_start, inner_end, "negoToken")
        if after != inner_end or inner_end != item_end:
            raise RemoteProtocolError("bytes after a negoToken", after)
        tokens.append(token)
        pos = item_end
    return tuple(tokens)


def parse_ts_request(data: bytes) -> tuple[TSRequest, int] | None:
    """Parse one TSRequest from the start of *data*; ``None`` when more bytes are needed."""
    header = read_header(data, 0, len(data))
    if header is None:
        if data and data[0] != _SEQUENCE:
            raise RemoteProtocolError(f"TSRequest must start with 0x30, got 0x{data[0]:02x}", 0)
        return None
    tag, start, length = header
    if tag != _SEQUENCE:
        raise RemoteProtocolError(f"TSRequest must start with 0x30, got 0x{tag:02x}", 0)
    if start + length > MAX_TS_REQUEST_LENGTH:
        raise RemoteProtocolError(
            f"TSRequest announces {length} bytes, more than {MAX_TS_REQUEST_LENGTH}", 1
        )
    end = start + length
    if len(data) < end:
        return None
    fields: dict[int, tuple[int, int]] = {}
    pos = start
    last = -1
    while pos < end:
        field_tag, field_start, field_end = _element(data, pos, end, "TSRequest field")
        number = field_tag - 0xA0
        if not 0 <= number <= 5:
            raise RemoteProtocolError(f"unknown TSRequest field tag 0x{field_tag:02x}", pos)
        if number <= last:
            raise RemoteProtocolError(f"TSRequest field [{number}] out of order", pos)
        last = number
        fields[number] = (field_start, field_end)
        pos = field_end
    if 0 not in fields:
        raise RemoteProtocolError("TSRequest has no version", start)

    def octets(number: int, what: str) -> bytes | None:
        if number not in fields:
            return None
        lo, hi = fields[number]
        value, after = _octets(data, lo, hi, what)
        if after != hi:
            raise RemoteProtocolError(f"bytes after {what}", after)
        return value

    def integer(number: int, what: str) -> int | None:
        if number not in fields:
            return None
        lo, hi = fields[number]
        value, after = _integer(data, lo, hi, what)
        if after != hi:
            raise RemoteProtocolError(f"bytes after {what}", after)
        return value

    version = integer(0, "version")
    assert version is not None
    if version < 0:
        raise RemoteProtocolError(f"negative TSRequest version {version}", fields[0][0])
    error_code = integer(4, "errorCode")
    if error_code is not None:
        error_code &= 0xFFFFFFFF
    nonce = octets(5, "clientNonce")
    if nonce is not None and len(nonce) != 32:
        raise RemoteProtocolError(f"clientNonce of {len(nonce)} bytes, not 32", fields[5][0])
    tokens = _nego_tokens(data, *fields[1]) if 1 in fields else ()
    return (
        TSRequest(
            version=version,
            nego_tokens=tokens,
            auth_info=octets(2, "authInfo"),
            pub_key_auth=octets(3, "pubKeyAuth"),
            error_code=error_code,
            client_nonce=nonce,
        ),
        end,
    )


# -- the anonymous NTLM exchange ------------------------------------------------------------

#: The VERSION an anonymous client puts in its NEGOTIATE (any valid one will do).
CLIENT_VERSION = Version(10, 0, 20348)


def negotiate_request(version: int = TS_REQUEST_VERSION) -> bytes:
    """A TSRequest carrying an anonymous NTLM NEGOTIATE (PROTOCOL.md §2)."""
    token = NegotiateMessage(version=CLIENT_VERSION).to_bytes()
    return TSRequest(version=version, nego_tokens=(token,)).to_bytes()


def parse_challenge_reply(data: bytes) -> ChallengeMessage | None:
    """The NTLM CHALLENGE in the host's TSRequest; ``None`` when more bytes are needed.

    A TSRequest with an errorCode and no token, or with no token at all, raises
    :class:`RemoteProtocolError`.
    """
    parsed = parse_ts_request(data)
    if parsed is None:
        return None
    request, consumed = parsed
    if consumed != len(data):
        raise RemoteProtocolError(
            f"{len(data) - consumed} unexpected bytes after the TSRequest", consumed
        )
    if not request.nego_tokens:
        if request.error_code is not None:
            raise RemoteProtocolError(
                f"the host answered with errorCode 0x{request.error_code:08x} instead of an"
                " NTLM CHALLENGE"
            )
        raise RemoteProtocolError("the host's TSRequest carries no negoToken")
    return parse_challenge(request.nego_tokens[0])
