"""NTLM NEGOTIATE and CHALLENGE messages (MS-NLMP 2.2.1.1, 2.2.1.2, 2.2.2).

Sans-I/O. An NTLM message is not self-delimiting (its payload is found through offsets
in the header), so parsers take one whole message, as carried in a CredSSP
``negoToken``, and return the value; bytes after the last field are ignored. Every
offset and length is checked against the message before anything is sliced, and bad
input raises :class:`~rdptrust.errors.RemoteProtocolError` naming the offset.

Only what a host says about itself without credentials is modelled: no AUTHENTICATE
message, no keys, no session security.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum, IntFlag

from rdptrust.errors import LocalProtocolError, RemoteProtocolError

SIGNATURE = b"NTLMSSP\x00"
#: NTLMSSP_REVISION_W2K3, the only revision in use (MS-NLMP 2.2.2.10).
NTLMSSP_REVISION_W2K3 = 0x0F
#: Largest NTLM message accepted or built: the security buffers have 16-bit lengths.
MAX_MESSAGE_LENGTH = 0xFFFF

_NEGOTIATE_HEADER = 32  # without Version
_CHALLENGE_HEADER = 48  # without Version
_VERSION_LENGTH = 8


class MessageType(IntEnum):
    """MessageType (MS-NLMP 2.2.1)."""

    NEGOTIATE = 1
    CHALLENGE = 2
    AUTHENTICATE = 3


class NegotiateFlags(IntFlag):
    """NEGOTIATE flags (MS-NLMP 2.2.2.5)."""

    UNICODE = 0x00000001
    OEM = 0x00000002
    REQUEST_TARGET = 0x00000004
    SIGN = 0x00000010
    SEAL = 0x00000020
    DATAGRAM = 0x00000040
    LM_KEY = 0x00000080
    NTLM = 0x00000200
    ANONYMOUS = 0x00000800
    OEM_DOMAIN_SUPPLIED = 0x00001000
    OEM_WORKSTATION_SUPPLIED = 0x00002000
    ALWAYS_SIGN = 0x00008000
    TARGET_TYPE_DOMAIN = 0x00010000
    TARGET_TYPE_SERVER = 0x00020000
    EXTENDED_SESSIONSECURITY = 0x00080000
    IDENTIFY = 0x00100000
    REQUEST_NON_NT_SESSION_KEY = 0x00400000
    TARGET_INFO = 0x00800000
    VERSION = 0x02000000
    NEGOTIATE_128 = 0x20000000
    KEY_EXCH = 0x40000000
    NEGOTIATE_56 = 0x80000000


#: What an anonymous RDP client sends (PROTOCOL.md §2): 0xE20882B7.
CLIENT_NEGOTIATE_FLAGS = NegotiateFlags(0xE20882B7)
#: What a Windows RDP host answers with in its CHALLENGE (domain-less host): 0xE28A8235.
SERVER_CHALLENGE_FLAGS = (
    NegotiateFlags.UNICODE
    | NegotiateFlags.REQUEST_TARGET
    | NegotiateFlags.SEAL
    | NegotiateFlags.SIGN
    | NegotiateFlags.NTLM
    | NegotiateFlags.ALWAYS_SIGN
    | NegotiateFlags.TARGET_TYPE_DOMAIN
    | NegotiateFlags.EXTENDED_SESSIONSECURITY
    | NegotiateFlags.TARGET_INFO
    | NegotiateFlags.VERSION
    | NegotiateFlags.NEGOTIATE_128
    | NegotiateFlags.KEY_EXCH
    | NegotiateFlags.NEGOTIATE_56
)


class AvId(IntEnum):
    """AV_PAIR AvId values (MS-NLMP 2.2.2.1)."""

    EOL = 0
    NB_COMPUTER_NAME = 1
    NB_DOMAIN_NAME = 2
    DNS_COMPUTER_NAME = 3
    DNS_DOMAIN_NAME = 4
    DNS_TREE_NAME = 5
    FLAGS = 6
    TIMESTAMP = 7
    SINGLE_HOST = 8
    TARGET_NAME = 9
    CHANNEL_BINDINGS = 10


_TEXT_AV_IDS = frozenset(
    {
        AvId.NB_COMPUTER_NAME,
        AvId.NB_DOMAIN_NAME,
        AvId.DNS_COMPUTER_NAME,
        AvId.DNS_DOMAIN_NAME,
        AvId.DNS_TREE_NAME,
        AvId.TARGET_NAME,
    }
)


@dataclass(frozen=True)
class Version:
    """VERSION (MS-NLMP 2.2.2.10): the Windows version and build of the sender."""

    major: int
    minor: int
    build: int
    ntlm_revision: int = NTLMSSP_REVISION_W2K3

    def __post_init__(self) -> None:
        for name, value, limit in (
            ("major", self.major, 0xFF),
            ("minor", self.minor, 0xFF),
            ("build", self.build, 0xFFFF),
            ("ntlm_revision", self.ntlm_revision, 0xFF),
        ):
            if not 0 <= value <= limit:
                raise LocalProtocolError(f"NTLM version {name}={value} is out of range")

    @classmethod
    def parse_text(cls, text: str) -> Version:
        """Parse ``MAJOR.MINOR.BUILD`` such as ``10.0.20348``."""
        parts = text.strip().split(".")
        if len(parts) != 3 or not all(part.isdigit() for part in parts):
            raise LocalProtocolError(f"{text!r} is not a version like 10.0.20348")
        return cls(int(parts[0]), int(parts[1]), int(parts[2]))

    def to_bytes(self) -> bytes:
        return struct.pack("<BBH3xB", self.major, self.minor, self.build, self.ntlm_revision)

    def __iter__(self) -> Iterator[int]:
        """``(major, minor, build, ntlm_revision)``, for unpacking."""
        return iter((self.major, self.minor, self.build, self.ntlm_revision))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.build}"


@dataclass(frozen=True)
class AvPair:
    """One AV_PAIR (MS-NLMP 2.2.2.1); ``av_id`` keeps unknown ids as ints."""

    av_id: int
    value: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.av_id <= 0xFFFF:
            raise LocalProtocolError(f"AvId {self.av_id} does not fit 16 bits")
        if self.av_id == AvId.EOL:
            raise LocalProtocolError("MsvAvEOL is added by the encoder, not given as a pair")
        if len(self.value) > 0xFFFF:
            raise LocalProtocolError("AV_PAIR value longer than 65535 bytes")

    def to_bytes(self) -> bytes:
        return struct.pack("<HH", self.av_id, len(self.value)) + self.value


@dataclass(frozen=True)
class TargetInfo:
    """The TargetInfo AV_PAIR list of a CHALLENGE (MS-NLMP 2.2.2.1), without MsvAvEOL.

    The name properties are ``None`` when the pair is absent; ``timestamp`` is the raw
    FILETIME (100 ns ticks since 1601-01-01 UTC) or ``None`` when absent.
    """

    pairs: tuple[AvPair, ...] = ()

    @classmethod
    def from_names(
        cls,
        *,
        netbios_computer_name: str | None = None,
        netbios_domain_name: str | None = None,
        dns_computer_name: str | None = None,
        dns_domain_name: str | None = None,
        dns_tree_name: str | None = None,
        timestamp: int | None = None,
    ) -> TargetInfo:
        """The pairs in the order Windows sends them; ``None`` leaves a pair out."""
        pairs: list[AvPair] = []
        for av_id, text in (
            (AvId.NB_DOMAIN_NAME, netbios_domain_name),
            (AvId.NB_COMPUTER_NAME, netbios_computer_name),
            (AvId.DNS_DOMAIN_NAME, dns_domain_name),
            (AvId.DNS_COMPUTER_NAME, dns_computer_name),
            (AvId.DNS_TREE_NAME, dns_tree_name),
        ):
            if text is not None:
                pairs.append(AvPair(av_id, text.encode("utf-16-le")))
        if timestamp is not None:
            if not 0 <= timestamp <= 0xFFFFFFFFFFFFFFFF:
                raise LocalProtocolError("timestamp does not fit a FILETIME")
            pairs.append(AvPair(AvId.TIMESTAMP, struct.pack("<Q", timestamp)))
        return cls(tuple(pairs))

    def get(self, av_id: int) -> bytes | None:
        """The value of the first pair with *av_id*; ``None`` when there is none."""
        return next((pair.value for pair in self.pairs if pair.av_id == av_id), None)

    def _text(self, av_id: AvId) -> str | None:
        value = self.get(av_id)
        return None if value is None else value.decode("utf-16-le", "replace")

    @property
    def netbios_computer_name(self) -> str | None:
        return self._text(AvId.NB_COMPUTER_NAME)

    @property
    def netbios_domain_name(self) -> str | None:
        return self._text(AvId.NB_DOMAIN_NAME)

    @property
    def dns_computer_name(self) -> str | None:
        return self._text(AvId.DNS_COMPUTER_NAME)

    @property
    def dns_domain_name(self) -> str | None:
        return self._text(AvId.DNS_DOMAIN_NAME)

    @property
    def dns_tree_name(self) -> str | None:
        return self._text(AvId.DNS_TREE_NAME)

    @property
    def timestamp(self) -> int | None:
        value = self.get(AvId.TIMESTAMP)
        return None if value is None else int(struct.unpack("<Q", value)[0])

    def to_bytes(self) -> bytes:
        return b"".join(pair.to_bytes() for pair in self.pairs) + struct.pack("<HH", AvId.EOL, 0)


@dataclass(frozen=True)
class NegotiateMessage:
    """NEGOTIATE_MESSAGE (MS-NLMP 2.2.1.1).

    ``domain_name`` and ``workstation`` (OEM text) are ``None`` when empty; ``version``
    is ``None`` when NTLMSSP_NEGOTIATE_VERSION is not set.
    """

    flags: NegotiateFlags = CLIENT_NEGOTIATE_FLAGS
    domain_name: str | None = None
    workstation: str | None = None
    version: Version | None = None

    def __post_init__(self) -> None:
        if not 0 <= int(self.flags) <= 0xFFFFFFFF:
            raise LocalProtocolError("NTLM flags do not fit 32 bits")
        if (self.version is not None) != bool(self.flags & NegotiateFlags.VERSION):
            raise LocalProtocolError("a VERSION is sent exactly when NEGOTIATE_VERSION is set")
        for name, text in (("domain_name", self.domain_name), ("workstation", self.workstation)):
            if text is not None and not text.isascii():
                raise LocalProtocolError(f"{name} must be ASCII (OEM) text")

    def to_bytes(self) -> bytes:
        header = _NEGOTIATE_HEADER + (_VERSION_LENGTH if self.version else 0)
        payload = _Payload(header)
        domain = payload.add((self.domain_name or "").encode("ascii"))
        workstation = payload.add((self.workstation or "").encode("ascii"))
        out = SIGNATURE + struct.pack("<II", MessageType.NEGOTIATE, self.flags)
        out += domain + workstation
        if self.version is not None:
            out += self.version.to_bytes()
        return payload.finish(out)


@dataclass(frozen=True)
class ChallengeMessage:
    """CHALLENGE_MESSAGE (MS-NLMP 2.2.1.2).

    ``target_name`` is ``None`` when its field is empty; ``target_info`` is ``None``
    when the message carries no TargetInfo; ``version`` is ``None`` when
    NTLMSSP_NEGOTIATE_VERSION is not set.
    """

    server_challenge: bytes
    flags: NegotiateFlags = SERVER_CHALLENGE_FLAGS
    target_name: str | None = None
    target_info: TargetInfo | None = None
    version: Version | None = None

    def __post_init__(self) -> None:
        if len(self.server_challenge) != 8:
            raise LocalProtocolError("the server challenge is exactly 8 bytes")
        if not 0 <= int(self.flags) <= 0xFFFFFFFF:
            raise LocalProtocolError("NTLM flags do not fit 32 bits")
        if (self.version is not None) != bool(self.flags & NegotiateFlags.VERSION):
            raise LocalProtocolError("a VERSION is sent exactly when NEGOTIATE_VERSION is set")

    # Names a caller looks for, taken from TargetInfo; None when absent.
    @property
    def netbios_computer_name(self) -> str | None:
        return self.target_info.netbios_computer_name if self.target_info else None

    @property
    def netbios_domain_name(self) -> str | None:
        return self.target_info.netbios_domain_name if self.target_info else None

    @property
    def dns_computer_name(self) -> str | None:
        return self.target_info.dns_computer_name if self.target_info else None

    @property
    def dns_domain_name(self) -> str | None:
        return self.target_info.dns_domain_name if self.target_info else None

    @property
    def dns_tree_name(self) -> str | None:
        return self.target_info.dns_tree_name if self.target_info else None

    @property
    def timestamp(self) -> int | None:
        """The MsvAvTimestamp FILETIME; ``None`` when TargetInfo has none."""
        return self.target_info.timestamp if self.target_info else None

    def to_bytes(self) -> bytes:
        header = _CHALLENGE_HEADER + (_VERSION_LENGTH if self.version else 0)
        payload = _Payload(header)
        unicode = bool(self.flags & NegotiateFlags.UNICODE)
        name = self.target_name or ""
        name_fields = payload.add(name.encode("utf-16-le" if unicode else "ascii"))
        info_fields = (
            payload.add(self.target_info.to_bytes()) if self.target_info is not None else bytes(8)
        )
        out = SIGNATURE + struct.pack("<I", MessageType.CHALLENGE) + name_fields
        out += struct.pack("<I", self.flags) + self.server_challenge + bytes(8) + info_fields
        if self.version is not None:
            out += self.version.to_bytes()
        return payload.finish(out)


class _Payload:
    """Lays out variable fields after a fixed header; returns their 8-byte field headers."""

    def __init__(self, start: int) -> None:
        self._start = start
        self._data = b""

    def add(self, value: bytes) -> bytes:
        offset = self._start + len(self._data)
        if len(value) > 0xFFFF or offset + len(value) > MAX_MESSAGE_LENGTH:
            raise LocalProtocolError("NTLM message field too long")
        self._data += value
        return struct.pack("<HHI", len(value), len(value), offset)

    def finish(self, header: bytes) -> bytes:
        assert len(header) == self._start
        return header + self._data


def _check_header(data: bytes, expected: MessageType, minimum: int, flags_at: int) -> int:
    """Check length, signature and type; return the flags found at *flags_at*."""
    if len(data) > MAX_MESSAGE_LENGTH:
        raise RemoteProtocolError(
            f"NTLM message of {len(data)} bytes is longer than {MAX_MESSAGE_LENGTH}", 0
        )
    if len(data) < min(len(SIGNATURE), minimum) or not data.startswith(SIGNATURE):
        raise RemoteProtocolError(
            f"not an NTLM message: expected signature 'NTLMSSP\\0', got {data[:8].hex(' ')}", 0
        )
    if len(data) < minimum:
        raise RemoteProtocolError(
            f"NTLM {expected.name} truncated: {len(data)} bytes, the header alone needs {minimum}",
            len(data),
        )
    (message_type,) = struct.unpack_from("<I", data, 8)
    if message_type != expected:
        raise RemoteProtocolError(
            f"expected NTLM {expected.name} (type {int(expected)}), got type {message_type}", 8
        )
    return int(struct.unpack_from("<I", data, flags_at)[0])


def _field(data: bytes, at: int, what: str) -> tuple[bytes, int]:
    """Read the security buffer (len, maxlen, offset) at *at*; return (value, offset)."""
    length, _max_length, offset = struct.unpack_from("<HHI", data, at)
    if length == 0:
        return b"", offset
    if offset > len(data) or length > len(data) - offset:
        raise RemoteProtocolError(
            f"{what} field points at bytes {offset}-{offset + length} of a"
            f" {len(data)}-byte message",
            at,
        )
    return bytes(data[offset : offset + length]), offset


def _version(data: bytes, flags: int, header: int, payload_offsets: list[int]) -> Version | None:
    if not flags & NegotiateFlags.VERSION:
        return None
    # A payload that starts right after the fixed header leaves no room for VERSION.
    end = header + _VERSION_LENGTH
    if len(data) < end or any(offset < end for offset in payload_offsets):
        raise RemoteProtocolError("NEGOTIATE_VERSION is set but the message has no VERSION", header)
    major, minor, build, revision = struct.unpack_from("<BBH3xB", data, header)
    return Version(major, minor, build, revision)


def _oem_text(value: bytes) -> str | None:
    """OEM text read as ASCII; a byte of another code page is shown as ``?``."""
    return value.decode("ascii", "replace").replace("\ufffd", "?") if value else None


def parse_negotiate(data: bytes) -> NegotiateMessage:
    """Parse one whole NEGOTIATE_MESSAGE."""
    flags = _check_header(data, MessageType.NEGOTIATE, _NEGOTIATE_HEADER, 12)
    domain, domain_at = _field(data, 16, "DomainName")
    workstation, workstation_at = _field(data, 24, "Workstation")
    offsets = [o for o, v in ((domain_at, domain), (workstation_at, workstation)) if v]
    version = _version(data, flags, _NEGOTIATE_HEADER, offsets)
    return NegotiateMessage(
        flags=NegotiateFlags(flags),
        domain_name=_oem_text(domain),
        workstation=_oem_text(workstation),
        version=version,
    )


def parse_av_pairs(data: bytes, base: int = 0) -> TargetInfo:
    """Parse an AV_PAIR list ending with MsvAvEOL; *base* is its offset for errors."""
    pairs: list[AvPair] = []
    pos = 0
    while True:
        if len(data) - pos < 4:
            raise RemoteProtocolError("TargetInfo ends without MsvAvEOL", base + pos)
        av_id, av_len = struct.unpack_from("<HH", data, pos)
        if av_id == AvId.EOL:
            if av_len != 0:
                raise RemoteProtocolError(f"MsvAvEOL with length {av_len}", base + pos + 2)
            return TargetInfo(tuple(pairs))
        if av_len > len(data) - pos - 4:
            raise RemoteProtocolError(
                f"AV_PAIR {av_id} announces {av_len} bytes, {len(data) - pos - 4} remain",
                base + pos + 2,
            )
        value = bytes(data[pos + 4 : pos + 4 + av_len])
        if av_id in _TEXT_AV_IDS and av_len % 2:
            raise RemoteProtocolError(
                f"AV_PAIR {AvId(av_id).name} has an odd length {av_len} for UTF-16 text",
                base + pos + 2,
            )
        if av_id == AvId.TIMESTAMP and av_len != 8:
            raise RemoteProtocolError(
                f"MsvAvTimestamp must be 8 bytes, got {av_len}", base + pos + 2
            )
        pairs.append(AvPair(av_id, value))
        pos += 4 + av_len


def parse_challenge(data: bytes) -> ChallengeMessage:
    """Parse one whole CHALLENGE_MESSAGE."""
    flags = _check_header(data, MessageType.CHALLENGE, _CHALLENGE_HEADER, 20)
    name, name_at = _field(data, 12, "TargetName")
    info, info_at = _field(data, 40, "TargetInfo")
    offsets = [o for o, v in ((name_at, name), (info_at, info)) if v]
    version = _version(data, flags, _CHALLENGE_HEADER, offsets)
    target_name: str | None = None
    if name:
        if flags & NegotiateFlags.UNICODE:
            if len(name) % 2:
                raise RemoteProtocolError(
                    f"TargetName has an odd length {len(name)} for UTF-16 text", 12
                )
            target_name = name.decode("utf-16-le", "replace")
        else:
            target_name = _oem_text(name)
    target_info = parse_av_pairs(info, info_at) if info else None
    return ChallengeMessage(
        server_challenge=bytes(data[24:32]),
        flags=NegotiateFlags(flags),
        target_name=target_name,
        target_info=target_info,
        version=version,
    )
