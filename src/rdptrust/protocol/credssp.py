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

The DER is read and written by :mod:`rdptrust.protocol.der`.
"""

from __future__ import annotations

from dataclasses import dataclass

from rdptrust.errors import LocalProtocolError, RemoteProtocolError
from rdptrust.protocol import der
from rdptrust.protocol.der import CONTEXT_CONSTRUCTED, Element, Tag
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

#: Longest INTEGER content accepted: a 32-bit value may need a leading zero byte.
_MAX_INTEGER_BYTES = 5


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
        fields = [der.explicit(0, der.integer(self.version))]
        if self.nego_tokens:
            items = (der.sequence(der.explicit(0, der.octet_string(t))) for t in self.nego_tokens)
            fields.append(der.explicit(1, der.sequence(*items)))
        if self.auth_info is not None:
            fields.append(der.explicit(2, der.octet_string(self.auth_info)))
        if self.pub_key_auth is not None:
            fields.append(der.explicit(3, der.octet_string(self.pub_key_auth)))
        if self.error_code is not None:
            signed = self.error_code - ((self.error_code & 0x80000000) << 1)
            fields.append(der.explicit(4, der.integer(signed)))
        if self.client_nonce is not None:
            fields.append(der.explicit(5, der.octet_string(self.client_nonce)))
        out = der.sequence(*fields)
        if len(out) > MAX_TS_REQUEST_LENGTH:
            raise LocalProtocolError(f"TSRequest of {len(out)} bytes is too long")
        return out


def _single(data: bytes, field: Element, tag: int, what: str) -> Element:
    """The one element with *tag* that fills the content of the explicit *field*."""
    inner = der.expect(data, field.start, field.end, tag, what=what)
    if inner.end != field.end:
        raise RemoteProtocolError(f"bytes after {what}", inner.end)
    return inner


def _nego_tokens(data: bytes, field: Element) -> tuple[bytes, ...]:
    nego_data = der.expect(data, field.start, field.end, Tag.SEQUENCE, what="negoTokens")
    if nego_data.end != field.end:
        raise RemoteProtocolError("bytes after the NegoData SEQUENCE", nego_data.end)
    tokens: list[bytes] = []
    pos = nego_data.start
    while pos < nego_data.end:
        item = der.expect(data, pos, nego_data.end, Tag.SEQUENCE, what="NegoData item")
        wrapper = der.expect(data, item.start, item.end, CONTEXT_CONSTRUCTED, what="negoToken")
        token = der.expect(data, wrapper.start, wrapper.end, Tag.OCTET_STRING, what="negoToken")
        if token.end != wrapper.end or wrapper.end != item.end:
            raise RemoteProtocolError("bytes after a negoToken", token.end)
        tokens.append(token.content(data))
        pos = item.end
    return tuple(tokens)


def parse_ts_request(data: bytes) -> tuple[TSRequest, int] | None:
    """Parse one TSRequest from the start of *data*; ``None`` when more bytes are needed."""
    if data and data[0] != Tag.SEQUENCE:
        raise RemoteProtocolError(f"TSRequest must start with 0x30, got 0x{data[0]:02x}", 0)
    parsed = der.parse_element(data, what="TSRequest", limit=MAX_TS_REQUEST_LENGTH)
    if parsed is None:
        return None
    request, consumed = parsed
    fields: dict[int, Element] = {}
    last = -1
    for field in der.children(data, request.start, request.end, what="TSRequest field"):
        number = field.tag - CONTEXT_CONSTRUCTED
        if not 0 <= number <= 5:
            raise RemoteProtocolError(
                f"unknown TSRequest field tag 0x{field.tag:02x}", field.offset
            )
        if number <= last:
            raise RemoteProtocolError(f"TSRequest field [{number}] out of order", field.offset)
        last = number
        fields[number] = field
    if 0 not in fields:
        raise RemoteProtocolError("TSRequest has no version", request.start)

    def octets(number: int, what: str) -> bytes | None:
        if number not in fields:
            return None
        return _single(data, fields[number], Tag.OCTET_STRING, what).content(data)

    def integer(number: int, what: str) -> int | None:
        if number not in fields:
            return None
        element = _single(data, fields[number], Tag.INTEGER, what)
        return der.read_integer(data, element, what=what, max_octets=_MAX_INTEGER_BYTES)

    version = integer(0, "version")
    assert version is not None
    if version < 0:
        raise RemoteProtocolError(f"negative TSRequest version {version}", fields[0].start)
    if version > 0x7FFFFFFF:  # MS-CSSP 2.2.1: a 32-bit INTEGER
        raise RemoteProtocolError(f"TSRequest version {version} is out of range", fields[0].start)
    error_code = integer(4, "errorCode")
    if error_code is not None:
        error_code &= 0xFFFFFFFF
    nonce = octets(5, "clientNonce")
    if nonce is not None and len(nonce) != 32:
        raise RemoteProtocolError(f"clientNonce of {len(nonce)} bytes, not 32", fields[5].start)
    tokens = _nego_tokens(data, fields[1]) if 1 in fields else ()
    return (
        TSRequest(
            version=version,
            nego_tokens=tokens,
            auth_info=octets(2, "authInfo"),
            pub_key_auth=octets(3, "pubKeyAuth"),
            error_code=error_code,
            client_nonce=nonce,
        ),
        consumed,
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
