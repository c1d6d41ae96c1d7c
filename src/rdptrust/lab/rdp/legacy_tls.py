"""A TLS 1.0 server as RDP hosts that predate RFC 5746 run it (RFC 2246).

Windows Server 2008 R2 before MS10-049 answers a ClientHello with a ServerHello that has
no extensions at all, TLS 1.0 and TLS_RSA_WITH_AES_128_CBC_SHA, in one record with its
Certificate and ServerHelloDone (as recorded in ``tests/vectors/tls``). OpenSSL cannot
be made to leave renegotiation_info out once a client signals RFC 5746, so the lab
writes this one handshake itself: RSA key exchange, the TLS 1.0 PRF (MD5 and SHA-1),
AES-128-CBC with the IV chained from record to record, HMAC-SHA1. It never
renegotiates: a second ClientHello ends the connection. It is a lab peer for tests and
never meant to protect anything.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import Encoding

from rdptrust.errors import UsageError
from rdptrust.lab.rdp.tls_modes import MAX_HANDSHAKE_BYTES, TlsServer, TlsSession

TLS10 = b"\x03\x01"
TLS_RSA_WITH_AES_128_CBC_SHA = 0x002F
_HANDSHAKE, _CCS, _ALERT, _APPDATA = 22, 20, 21, 23
_CLIENT_HELLO, _SERVER_HELLO, _CERTIFICATE, _HELLO_DONE = 1, 2, 11, 14
_CLIENT_KEY_EXCHANGE, _FINISHED = 16, 20
_MAC_LENGTH, _KEY_LENGTH, _BLOCK = 20, 16, 16
#: RFC 5746 3.3: the signalling cipher suite value a client may send instead.
_SCSV = 0x00FF


def _p_hash(name: str, secret: bytes, seed: bytes, length: int) -> bytes:
    out, a = b"", seed
    while len(out) < length:
        a = hmac.new(secret, a, name).digest()
        out += hmac.new(secret, a + seed, name).digest()
    return out[:length]


def prf10(secret: bytes, label: bytes, seed: bytes, length: int) -> bytes:
    """The TLS 1.0 PRF (RFC 2246 5): P_MD5 over the first half XOR P_SHA1 over the second."""
    half = (len(secret) + 1) // 2
    md5 = _p_hash("md5", secret[:half], label + seed, length)
    sha = _p_hash("sha1", secret[-half:], label + seed, length)
    return bytes(x ^ y for x, y in zip(md5, sha, strict=True))


def _handshake(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + len(body).to_bytes(3, "big") + body


def _record(kind: int, fragment: bytes) -> bytes:
    return bytes([kind]) + TLS10 + len(fragment).to_bytes(2, "big") + fragment


class _Records:
    """Reads whole TLS records from the TCP stream, bounded."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader
        self.received = 0

    async def next(self) -> tuple[int, bytes]:
        header = await self._reader.readexactly(5)
        length = int.from_bytes(header[3:5], "big")
        if length > (1 << 14) + 2048:
            raise ConnectionResetError(f"a TLS record of {length} bytes")
        self.received += 5 + length
        if self.received > MAX_HANDSHAKE_BYTES:
            raise ConnectionResetError("the client sent too much during the handshake")
        return header[0], await self._reader.readexactly(length)


def _client_hello(body: bytes) -> tuple[bytes, list[int], list[int]]:
    """The client random, offered suites and extension types of a ClientHello body."""
    random = body[2:34]
    offset = 35 + body[34]
    count = int.from_bytes(body[offset : offset + 2], "big")
    suites = [
        int.from_bytes(body[offset + 2 + i : offset + 4 + i], "big") for i in range(0, count, 2)
    ]
    offset += 2 + count
    offset += 1 + body[offset]
    extensions: list[int] = []
    if offset + 2 <= len(body):
        end = offset + 2 + int.from_bytes(body[offset : offset + 2], "big")
        offset += 2
        while offset + 4 <= end:
            extensions.append(int.from_bytes(body[offset : offset + 2], "big"))
            offset += 4 + int.from_bytes(body[offset + 2 : offset + 4], "big")
    return random, suites, extensions


class _Direction:
    """One direction's record protection: AES-128-CBC, chained IV, HMAC-SHA1 (TLS 1.0)."""

    def __init__(self, mac_key: bytes, key: bytes, iv: bytes) -> None:
        self._mac_key, self._key, self._iv = mac_key, key, iv
        self._sequence = 0

    def _mac(self, kind: int, content: bytes) -> bytes:
        header = self._sequence.to_bytes(8, "big") + bytes([kind]) + TLS10
        self._sequence += 1
        return hmac.new(
            self._mac_key, header + len(content).to_bytes(2, "big") + content, "sha1"
        ).digest()

    def seal(self, kind: int, content: bytes) -> bytes:
        data = content + self._mac(kind, content)
        pad = _BLOCK - 1 - len(data) % _BLOCK
        data += bytes([pad]) * (pad + 1)
        encryptor = Cipher(algorithms.AES(self._key), modes.CBC(self._iv)).encryptor()
        sealed = encryptor.update(data) + encryptor.finalize()
        self._iv = sealed[-_BLOCK:]
        return _record(kind, sealed)

    def open(self, kind: int, fragment: bytes) -> bytes:
        if not fragment or len(fragment) % _BLOCK:
            raise ConnectionResetError("an encrypted record that is not whole blocks")
        decryptor = Cipher(algorithms.AES(self._key), modes.CBC(self._iv)).decryptor()
        data = decryptor.update(fragment) + decryptor.finalize()
        self._iv = fragment[-_BLOCK:]
        pad = data[-1]
        if pad + 1 + _MAC_LENGTH > len(data):
            raise ConnectionResetError("bad record padding")
        content, mac = data[: -pad - 1 - _MAC_LENGTH], data[-pad - 1 - _MAC_LENGTH : -pad - 1]
        if not hmac.compare_digest(mac, self._mac(kind, content)):
            raise ConnectionResetError("bad record MAC")
        return content


class LegacyTlsServer(TlsServer):
    """The pre-RFC 5746 TLS 1.0 host, serving *chain* (an RSA leaf) with *key*."""

    def __init__(self, chain: Sequence[x509.Certificate], key: object) -> None:
        if not chain or not isinstance(key, rsa.RSAPrivateKey):
            raise UsageError("the legacy TLS host needs an RSA certificate and key")
        self._chain = [cert.public_bytes(Encoding.DER) for cert in chain]
        self._key = key
        #: The extension types of the last ClientHello (the renegotiation signal shows).
        self.client_extensions: list[int] = []
        self.client_signalled_rfc5746 = False
        #: Why the last handshake that failed stopped (``None``: none failed yet).
        self.last_failure: str | None = None

    async def accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float
    ) -> TlsSession:
        try:
            async with asyncio.timeout(timeout):
                return await self._handshake(reader, writer)
        except ConnectionResetError as exc:
            self.last_failure = str(exc)
            raise

    async def _handshake(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> TlsSession:
        records = _Records(reader)
        messages = await _handshake_messages(records, 1)
        hello = messages[0]
        if hello[0] != _CLIENT_HELLO:
            raise ConnectionResetError("the first handshake message is not a ClientHello")
        client_random, suites, extensions = _client_hello(hello[4:])
        self.client_extensions = extensions
        self.client_signalled_rfc5746 = 0xFF01 in extensions or _SCSV in suites
        if TLS_RSA_WITH_AES_128_CBC_SHA not in suites:
            writer.write(_record(_ALERT, b"\x02\x28"))  # handshake_failure
            await writer.drain()
            raise ConnectionResetError("the client does not offer TLS_RSA_WITH_AES_128_CBC_SHA")
        server_random = os.urandom(32)
        server_hello = _handshake(
            _SERVER_HELLO,
            TLS10 + server_random + b"\x20" + os.urandom(32) + b"\x00\x2f\x00",
        )
        certs = b"".join(len(der).to_bytes(3, "big") + der for der in self._chain)
        certificate = _handshake(_CERTIFICATE, len(certs).to_bytes(3, "big") + certs)
        flight = server_hello + certificate + _handshake(_HELLO_DONE, b"")
        writer.write(_record(_HANDSHAKE, flight))
        await writer.drain()
        transcript = hello + flight
        (key_exchange,) = await _handshake_messages(records, 1)
        if key_exchange[0] != _CLIENT_KEY_EXCHANGE:
            raise ConnectionResetError("expected a ClientKeyExchange")
        transcript += key_exchange
        encrypted = key_exchange[6:]  # TLS 1.0 keeps the two-byte length (RFC 2246 7.4.7.1)
        try:
            premaster = self._key.decrypt(encrypted, padding.PKCS1v15())
        except ValueError:
            premaster = os.urandom(48)  # RFC 5246 7.4.7.1: go on; Finished will fail
        master = prf10(premaster, b"master secret", client_random + server_random, 48)
        block = prf10(master, b"key expansion", server_random + client_random, 104)
        mac_c, mac_s = block[:20], block[20:40]
        key_c, key_s, iv_c, iv_s = block[40:56], block[56:72], block[72:88], block[88:104]
        inbound, outbound = _Direction(mac_c, key_c, iv_c), _Direction(mac_s, key_s, iv_s)
        kind, fragment = await records.next()
        if kind != _CCS:
            raise ConnectionResetError("expected the client's ChangeCipherSpec")
        kind, fragment = await records.next()
        finished = inbound.open(kind, fragment)
        expected = prf10(master, b"client finished", _hashes(transcript), 12)
        if kind != _HANDSHAKE or finished != _handshake(_FINISHED, expected):
            raise ConnectionResetError("the client's Finished does not match")
        transcript += finished
        verify = prf10(master, b"server finished", _hashes(transcript), 12)
        writer.write(
            _record(_CCS, b"\x01") + outbound.seal(_HANDSHAKE, _handshake(_FINISHED, verify))
        )
        await writer.drain()
        plain = asyncio.StreamReader()

        async def send(data: bytes) -> None:
            for start in range(0, len(data), 1 << 14):
                writer.write(outbound.seal(_APPDATA, data[start : start + (1 << 14)]))
            await writer.drain()

        pump = asyncio.create_task(_pump(reader, inbound, plain))
        return TlsSession(
            plain,
            send,
            pump,
            details={"client_signalled_rfc5746": self.client_signalled_rfc5746},
        )


def _hashes(transcript: bytes) -> bytes:
    return hashlib.md5(transcript).digest() + hashlib.sha1(transcript).digest()


async def _handshake_messages(records: _Records, count: int) -> list[bytes]:
    """The next *count* whole handshake messages (header included), across records."""
    buffer = b""
    found: list[bytes] = []
    while len(found) < count:
        kind, fragment = await records.next()
        if kind == _ALERT and len(fragment) == 2:
            raise ConnectionResetError(f"the client sent alert {fragment[0]}.{fragment[1]}")
        if kind != _HANDSHAKE:
            raise ConnectionResetError(f"expected a handshake record, got type {kind}")
        buffer += fragment
        while len(buffer) >= 4 and len(buffer) >= 4 + int.from_bytes(buffer[1:4], "big"):
            size = 4 + int.from_bytes(buffer[1:4], "big")
            found.append(buffer[:size])
            buffer = buffer[size:]
    return found


async def _pump(
    reader: asyncio.StreamReader, inbound: _Direction, plain: asyncio.StreamReader
) -> None:
    """Decrypt application data into *plain*; a renegotiation attempt ends the session."""
    records = _Records(reader)
    try:
        while True:
            records.received = 0
            kind, fragment = await records.next()
            content = inbound.open(kind, fragment)
            if kind == _APPDATA:
                plain.feed_data(content)
            elif kind != _ALERT:
                break  # a ClientHello inside the session: this host does not renegotiate
    except (asyncio.IncompleteReadError, ConnectionResetError, OSError):
        pass
    finally:
        plain.feed_eof()
