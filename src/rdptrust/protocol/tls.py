"""The server's first TLS flight, read as it arrives (RFC 5246 6.2, 7.4; RFC 8446 4).

TLS itself runs in OpenSSL; this reader only watches the plaintext records the server
sends before ChangeCipherSpec: the ServerHello (version, cipher suite, which extensions,
so whether RFC 5746 secure renegotiation is signalled), the Certificate message and a
CertificateStatus (a stapled OCSP answer, RFC 6066 8). With TLS 1.0 to 1.2 these are in
clear, so the chain a host sent is known even when the handshake cannot finish (a host
that aborts after its certificate, or recorded bytes replayed). With TLS 1.3 everything
after the ServerHello is encrypted and the reader stops there.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from rdptrust.errors import RemoteProtocolError

RECORD_HEADER_LENGTH = 5
#: RFC 5246 6.2.1: a plaintext fragment is at most 2^14 bytes (RFC 8446 5.1 too).
MAX_FRAGMENT = 1 << 14
#: A handshake message we keep is at most this long (a chain of a dozen certificates).
MAX_HANDSHAKE_MESSAGE = 1 << 18
#: RFC 5746 3.2: the renegotiation_info extension.
RENEGOTIATION_INFO = 0xFF01


class ContentType(IntEnum):
    """TLS record content types (RFC 5246 6.2.1)."""

    CHANGE_CIPHER_SPEC = 20
    ALERT = 21
    HANDSHAKE = 22
    APPLICATION_DATA = 23


class HandshakeType(IntEnum):
    """The handshake messages the reader looks at (RFC 5246 7.4, RFC 6066 8)."""

    HELLO_REQUEST = 0
    SERVER_HELLO = 2
    CERTIFICATE = 11
    SERVER_HELLO_DONE = 14
    CERTIFICATE_STATUS = 22


@dataclass(frozen=True)
class ServerHello:
    """What a ServerHello says: ``version`` is the legacy field (0x0303 for TLS 1.3)."""

    version: int
    cipher_suite: int
    extensions: tuple[int, ...]

    @property
    def secure_renegotiation(self) -> bool:
        """True when the host signals RFC 5746 (a host that predates it does not)."""
        return RENEGOTIATION_INFO in self.extensions


def _u16(data: bytes | bytearray, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 2], "big")


def _u24(data: bytes | bytearray, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 3], "big")


def parse_server_hello(body: bytes) -> ServerHello:
    """Parse a ServerHello body (after the 4-byte handshake header)."""
    if len(body) < 38:
        raise RemoteProtocolError(f"ServerHello of {len(body)} bytes is too short", 0)
    version = _u16(body, 0)
    session_id_length = body[34]
    if session_id_length > 32:
        raise RemoteProtocolError(f"ServerHello session id of {session_id_length} bytes", 34)
    offset = 35 + session_id_length
    if len(body) < offset + 3:
        raise RemoteProtocolError("ServerHello ends before its cipher suite", offset)
    suite = _u16(body, offset)
    offset += 3  # cipher suite, compression method
    extensions: list[int] = []
    if len(body) > offset:
        # RFC 5246 7.4.1.4: an extensions block may follow; old hosts send none.
        if len(body) < offset + 2:
            raise RemoteProtocolError("ServerHello extensions length truncated", offset)
        end = offset + 2 + _u16(body, offset)
        if end != len(body):
            raise RemoteProtocolError("ServerHello extensions length does not match", offset)
        offset += 2
        while offset < end:
            if offset + 4 > end:
                raise RemoteProtocolError("ServerHello extension header truncated", offset)
            extensions.append(_u16(body, offset))
            offset += 4 + _u16(body, offset + 2)
        if offset != end:
            raise RemoteProtocolError("ServerHello extension overruns the message", offset)
    return ServerHello(version, suite, tuple(extensions))


def parse_certificate_message(body: bytes) -> tuple[bytes, ...]:
    """The DER certificates of a TLS 1.0-1.2 Certificate message, leaf first."""
    if len(body) < 3:
        raise RemoteProtocolError("Certificate message truncated", 0)
    total = _u24(body, 0)
    if total != len(body) - 3:
        raise RemoteProtocolError("Certificate list length does not match", 0)
    certs: list[bytes] = []
    offset = 3
    while offset < len(body):
        if offset + 3 > len(body):
            raise RemoteProtocolError("certificate length truncated", offset)
        length = _u24(body, offset)
        if offset + 3 + length > len(body):
            raise RemoteProtocolError("certificate overruns the message", offset)
        certs.append(bytes(body[offset + 3 : offset + 3 + length]))
        offset += 3 + length
    return tuple(certs)


def parse_certificate_status(body: bytes) -> bytes | None:
    """The OCSP response DER of a CertificateStatus message (RFC 6066 8), if OCSP."""
    if len(body) < 4:
        raise RemoteProtocolError("CertificateStatus truncated", 0)
    if body[0] != 1:  # status_type ocsp(1); anything else is not ours to read
        return None
    length = _u24(body, 1)
    if length != len(body) - 4:
        raise RemoteProtocolError("CertificateStatus length does not match", 1)
    return bytes(body[4:])


class ServerFlightReader:
    """Feed it every byte the server sends during the handshake; it keeps what it saw.

    It stops reading (``finished`` true) at the server's ChangeCipherSpec, its first
    encrypted record, or ServerHelloDone; what follows is OpenSSL's business alone.
    A malformed plaintext record raises :class:`RemoteProtocolError`.
    """

    def __init__(self) -> None:
        self._records = bytearray()
        self._handshake = bytearray()
        self.server_hello: ServerHello | None = None
        self.certificates: tuple[bytes, ...] | None = None
        self.ocsp_response: bytes | None = None
        self.hello_request = False
        self.finished = False

    def feed(self, data: bytes) -> None:
        if self.finished:
            return
        self._records += data
        while not self.finished and len(self._records) >= RECORD_HEADER_LENGTH:
            kind = self._records[0]
            length = _u16(self._records, 3)
            if length > MAX_FRAGMENT + 2048:
                raise RemoteProtocolError(f"TLS record of {length} bytes", 3)
            if len(self._records) < RECORD_HEADER_LENGTH + length:
                return
            fragment = bytes(self._records[RECORD_HEADER_LENGTH : RECORD_HEADER_LENGTH + length])
            del self._records[: RECORD_HEADER_LENGTH + length]
            if kind == ContentType.HANDSHAKE:
                self._handshake += fragment
                self._messages()
            elif kind in (ContentType.CHANGE_CIPHER_SPEC, ContentType.APPLICATION_DATA):
                self.finished = True
            elif kind != ContentType.ALERT:
                raise RemoteProtocolError(f"TLS record of unknown type {kind}", 0)

    def _messages(self) -> None:
        while len(self._handshake) >= 4 and not self.finished:
            kind = self._handshake[0]
            length = _u24(self._handshake, 1)
            if length > MAX_HANDSHAKE_MESSAGE:
                raise RemoteProtocolError(f"TLS handshake message of {length} bytes", 1)
            if len(self._handshake) < 4 + length:
                return
            body = bytes(self._handshake[4 : 4 + length])
            del self._handshake[: 4 + length]
            if kind == HandshakeType.SERVER_HELLO:
                self.server_hello = parse_server_hello(body)
                # TLS 1.3 (supported_versions, RFC 8446 4.2.1): the rest is encrypted.
                if 43 in self.server_hello.extensions:
                    self.finished = True
            elif kind == HandshakeType.CERTIFICATE:
                self.certificates = parse_certificate_message(body)
            elif kind == HandshakeType.CERTIFICATE_STATUS:
                self.ocsp_response = parse_certificate_status(body)
            elif kind == HandshakeType.HELLO_REQUEST:
                self.hello_request = True
            elif kind == HandshakeType.SERVER_HELLO_DONE:
                self.finished = True
