"""GCC Conference Create and the RDP settings blocks (MS-RDPBCGR 2.2.1.3, 2.2.1.4).

Standard RDP Security is negotiated here: the client lists the encryption methods it
accepts in CS_SECURITY, and the server answers in SC_SECURITY with the method it chose,
its encryption level, a server random and its server certificate (a proprietary RSA
blob or an X.509 chain). SC_CORE carries the server's RDP version.

The GCC part (T.124 ConnectData, aligned PER) is fixed in practice: every client and
server writes the same prefix. We check the parts that identify the PDU and read the
lengths; the length of the Connect-Response's connectPDU is written wrongly by Windows
itself (MS-RDPBCGR 4.1.4 has 0x2a), so it is kept but not trusted.

Sans-I/O: builders return bytes, parsers take bytes and return ``(value, consumed)`` or
``None`` when more data is needed; bad input raises
:class:`~rdptrust.errors.RemoteProtocolError` with the offset in the packet.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from typing import Protocol, TypeVar

from rdptrust.errors import LocalProtocolError, RemoteProtocolError
from rdptrust.protocol.mcs import (
    ConnectInitial,
    ConnectResponse,
    ConnectResult,
    parse_connect_initial,
    parse_connect_response,
)
from rdptrust.protocol.reader import PacketReader
from rdptrust.protocol.tpkt import TPKT_HEADER_LENGTH, build_tpkt, parse_tpkt

#: X.224 Data TPDU header (MS-RDPBCGR 2.2.1.3: x224Data).
_X224_DATA_HEADER = b"\x02\xf0\x80"
#: Where the MCS PDU starts in a TPKT packet: TPKT header + X.224 Data header.
MCS_OFFSET = TPKT_HEADER_LENGTH + len(_X224_DATA_HEADER)

# T.124 ConnectData: Key CHOICE object (0), OID length 5, OID 0.0.20.124.0.1 (BER body).
_T124_KEY = b"\x00\x05\x00\x14\x7c\x00\x01"
_CLIENT_H221_KEY = b"Duca"
_SERVER_H221_KEY = b"McDn"
#: ConnectGCCPDU conferenceCreateRequest with the userData bit of its optional fields,
#: conferenceName "1" (NumericString, length 1 - 1 = 0, digit packed 0x10), and the
#: zero bits of lockedConference/listedConference/conductibleConference/terminationMethod.
_CREATE_REQUEST_HEAD = b"\x00\x08\x00\x10\x00"
#: ConnectGCCPDU conferenceCreateResponse with the userData bit set.
_CREATE_RESPONSE_CHOICE = 0x14
#: userData: one set, h221NonStandard choice with value present.
_USER_DATA_SET = b"\x01\xc0"
#: MS-RDPBCGR 2.2.1.4: the nodeID Windows sends (0x79F3 = 1001 + 0x760A).
DEFAULT_NODE_ID = 0x79F3
_NODE_ID_BASE = 1001
#: The connectPDU length Windows writes in every Connect-Response (MS-RDPBCGR 4.1.4),
#: whatever the true length; clients that read the blocks at a fixed offset (nmap's
#: rdp.lua) depend on it being one octet.
WINDOWS_CONNECT_PDU_LENGTH = 0x2A
#: A PER length determinant of two octets holds at most 14 bits.
_PER_MAX_LENGTH = 0x3FFF


class UserDataType(IntEnum):
    """TS_UD_HEADER types (MS-RDPBCGR 2.2.1.3.1)."""

    CS_CORE = 0xC001
    CS_SECURITY = 0xC002
    CS_NET = 0xC003
    CS_CLUSTER = 0xC004
    CS_MONITOR = 0xC005
    CS_MCS_MSGCHANNEL = 0xC006
    CS_MONITOR_EX = 0xC008
    CS_MULTITRANSPORT = 0xC00A
    SC_CORE = 0x0C01
    SC_SECURITY = 0x0C02
    SC_NET = 0x0C03
    SC_MCS_MSGCHANNEL = 0x0C04
    SC_MULTITRANSPORT = 0x0C08


class EncryptionMethod(IntFlag):
    """encryptionMethods / encryptionMethod (MS-RDPBCGR 2.2.1.3.3, 2.2.1.4.3)."""

    NONE = 0x00000000
    BIT_40 = 0x00000001
    BIT_128 = 0x00000002
    BIT_56 = 0x00000008
    FIPS = 0x00000010


#: Names used in results and JSON, in the order we try them.
ENCRYPTION_METHOD_NAMES: dict[EncryptionMethod, str] = {
    EncryptionMethod.BIT_40: "40BIT",
    EncryptionMethod.BIT_128: "128BIT",
    EncryptionMethod.BIT_56: "56BIT",
    EncryptionMethod.FIPS: "FIPS",
}


class EncryptionLevel(IntEnum):
    """encryptionLevel (MS-RDPBCGR 2.2.1.4.3)."""

    NONE = 0
    LOW = 1
    CLIENT_COMPATIBLE = 2
    HIGH = 3
    FIPS = 4


def encryption_level_name(level: int) -> str:
    try:
        return EncryptionLevel(level).name
    except ValueError:
        return f"UNKNOWN_{level}"


#: SC_CORE version values (MS-RDPBCGR 2.2.1.4.2).
RDP_VERSIONS: dict[int, str] = {
    0x00080001: "RDP 4.0",
    0x00080004: "RDP 5.0 to 8.1",
    0x00080005: "RDP 10.0",
    0x00080006: "RDP 10.1",
    0x00080007: "RDP 10.2",
    0x00080008: "RDP 10.3",
    0x00080009: "RDP 10.4",
    0x0008000A: "RDP 10.5",
    0x0008000B: "RDP 10.6",
    0x0008000C: "RDP 10.7",
    0x0008000D: "RDP 10.8",
    0x0008000E: "RDP 10.9",
    0x0008000F: "RDP 10.10",
    0x00080010: "RDP 10.11",
    0x00080011: "RDP 10.12",
}


def rdp_version_name(version: int) -> str:
    return RDP_VERSIONS.get(version, f"unknown (0x{version:08x})")


class CertificateChainVersion(IntEnum):
    """dwVersion of SERVER_CERTIFICATE without the temporary bit (MS-RDPBCGR 2.2.1.4.3.1)."""

    PROPRIETARY = 1
    X509 = 2


_CERT_TEMPORARY = 0x80000000
_RSA1_MAGIC = 0x31415352
_BB_RSA_KEY_BLOB = 0x0006
_BB_RSA_SIGNATURE_BLOB = 0x0008
_SIGNATURE_ALG_RSA = 1
_KEY_EXCHANGE_ALG_RSA = 1
#: More certificates than this in one chain is not an RDP server (MS-RDPELE 2.2.1.4.2).
MAX_X509_CERTIFICATES = 16
MAX_CHANNELS = 31


def _u32(name: str, value: int) -> None:
    if not 0 <= value <= 0xFFFFFFFF:
        raise LocalProtocolError(f"{name}={value} does not fit 32 bits")


class _Reader(PacketReader):
    """Little-endian, bounds-checked reading with offsets relative to the packet."""

    def u8(self, name: str) -> int:
        return self.take(1, name)[0]

    def u16(self, name: str) -> int:
        return int(struct.unpack("<H", self.take(2, name))[0])

    def u32(self, name: str) -> int:
        return int(struct.unpack("<I", self.take(4, name))[0])

    def end(self) -> None:
        if self.remaining:
            raise self.error(f"{self.remaining} unexpected bytes at the end")


# --- settings blocks ------------------------------------------------------------------


@dataclass(frozen=True)
class UserDataBlock:
    """One settings block: TS_UD_HEADER type and the body after the 4-byte header."""

    type: int
    body: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.type <= 0xFFFF:
            raise LocalProtocolError(f"block type {self.type} does not fit 16 bits")
        if len(self.body) + 4 > 0xFFFF:
            raise LocalProtocolError("settings block too long")

    @property
    def type_name(self) -> str:
        try:
            return UserDataType(self.type).name
        except ValueError:
            return f"0x{self.type:04x}"

    def to_bytes(self) -> bytes:
        return struct.pack("<HH", self.type, len(self.body) + 4) + self.body


def parse_user_data_blocks(data: bytes, base: int = 0) -> tuple[UserDataBlock, ...]:
    """Split concatenated settings blocks; each length must fit what remains."""
    blocks: list[UserDataBlock] = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 4:
            raise RemoteProtocolError("settings block header truncated", base + pos)
        type_, length = struct.unpack_from("<HH", data, pos)
        if length < 4 or length > len(data) - pos:
            raise RemoteProtocolError(
                f"settings block 0x{type_:04x} announces {length} bytes, {len(data) - pos} remain",
                base + pos + 2,
            )
        blocks.append(UserDataBlock(type_, bytes(data[pos + 4 : pos + length])))
        pos += length
    return tuple(blocks)


def _find(blocks: Sequence[UserDataBlock], type_: UserDataType) -> UserDataBlock | None:
    return next((b for b in blocks if b.type == type_), None)


def _utf16_field(text: str, size: int, name: str) -> bytes:
    raw = text.encode("utf-16-le")
    if len(raw) > size - 2:
        raise LocalProtocolError(f"{name} {text!r} is too long for {size // 2 - 1} characters")
    return raw + bytes(size - len(raw))


def _utf16_text(raw: bytes) -> str:
    for i in range(0, len(raw) - 1, 2):
        if raw[i] == 0 and raw[i + 1] == 0:
            raw = raw[:i]
            break
    return raw.decode("utf-16-le", errors="replace")


_CORE_FIXED = struct.Struct("<IHHHHII32sIII64s")
#: Offset of serverSelectedProtocol in the optional part of CS_CORE.
_CORE_SELECTED_PROTOCOL_AT = 80


@dataclass(frozen=True)
class ClientCoreData:
    """TS_UD_CS_CORE (MS-RDPBCGR 2.2.1.3.2).

    The fixed fields are typed; the optional fields after ``ime_file_name`` are kept as
    ``optional`` bytes exactly as sent (``server_selected_protocol`` reads one of them;
    ``None`` when the client did not send it).
    """

    version: int = 0x00080004
    desktop_width: int = 1024
    desktop_height: int = 768
    color_depth: int = 0xCA01
    sas_sequence: int = 0xAA03
    keyboard_layout: int = 0x409
    client_build: int = 2600
    client_name: str = "rdptrust"
    keyboard_type: int = 4
    keyboard_sub_type: int = 0
    keyboard_function_key: int = 12
    ime_file_name: str = ""
    optional: bytes = field(default=b"", repr=False)

    @classmethod
    def default(
        cls, client_name: str = "rdptrust", server_selected_protocol: int = 0
    ) -> ClientCoreData:
        """What a plain client sends, optional fields up to serverSelectedProtocol."""
        optional = (
            struct.pack("<HHIHHH", 0xCA01, 1, 0, 24, 0x0007, 0x0001)
            + bytes(64)
            + b"\x00\x00"
            + struct.pack("<I", server_selected_protocol)
        )
        return cls(client_name=client_name, optional=optional)

    @property
    def server_selected_protocol(self) -> int | None:
        at = _CORE_SELECTED_PROTOCOL_AT
        if len(self.optional) < at + 4:
            return None
        return int(struct.unpack_from("<I", self.optional, at)[0])

    def to_block(self) -> UserDataBlock:
        body = _CORE_FIXED.pack(
            self.version,
            self.desktop_width,
            self.desktop_height,
            self.color_depth,
            self.sas_sequence,
            self.keyboard_layout,
            self.client_build,
            _utf16_field(self.client_name, 32, "client_name"),
            self.keyboard_type,
            self.keyboard_sub_type,
            self.keyboard_function_key,
            _utf16_field(self.ime_file_name, 64, "ime_file_name"),
        )
        return UserDataBlock(UserDataType.CS_CORE, body + self.optional)

    @classmethod
    def from_block(cls, block: UserDataBlock, base: int = 0) -> ClientCoreData:
        if len(block.body) < _CORE_FIXED.size:
            raise RemoteProtocolError(
                f"CS_CORE has {len(block.body)} bytes, at least {_CORE_FIXED.size} needed", base
            )
        f = _CORE_FIXED.unpack_from(block.body)
        return cls(
            version=f[0],
            desktop_width=f[1],
            desktop_height=f[2],
            color_depth=f[3],
            sas_sequence=f[4],
            keyboard_layout=f[5],
            client_build=f[6],
            client_name=_utf16_text(f[7]),
            keyboard_type=f[8],
            keyboard_sub_type=f[9],
            keyboard_function_key=f[10],
            ime_file_name=_utf16_text(f[11]),
            optional=block.body[_CORE_FIXED.size :],
        )


@dataclass(frozen=True)
class ClientSecurityData:
    """TS_UD_CS_SEC (MS-RDPBCGR 2.2.1.3.3): the methods the client accepts.

    ``ext_encryption_methods`` is used only by French-locale clients.
    """

    encryption_methods: EncryptionMethod
    ext_encryption_methods: int = 0

    def __post_init__(self) -> None:
        _u32("encryption_methods", int(self.encryption_methods))
        _u32("ext_encryption_methods", self.ext_encryption_methods)

    def to_block(self) -> UserDataBlock:
        body = struct.pack("<II", self.encryption_methods, self.ext_encryption_methods)
        return UserDataBlock(UserDataType.CS_SECURITY, body)

    @classmethod
    def from_block(cls, block: UserDataBlock, base: int = 0) -> ClientSecurityData:
        reader = _Reader(block.body, base, "CS_SECURITY")
        methods = reader.u32("encryptionMethods")
        ext = reader.u32("extEncryptionMethods")
        reader.end()
        return cls(EncryptionMethod(methods), ext)


@dataclass(frozen=True)
class ChannelDef:
    """CHANNEL_DEF (MS-RDPBCGR 2.2.1.3.4.1): a static virtual channel name and options."""

    name: str
    options: int

    def __post_init__(self) -> None:
        if not self.name.isascii() or len(self.name) > 7 or "\0" in self.name:
            raise LocalProtocolError(f"channel name {self.name!r} is not 1-7 ASCII characters")
        _u32("options", self.options)


@dataclass(frozen=True)
class ClientNetworkData:
    """TS_UD_CS_NET (MS-RDPBCGR 2.2.1.3.4)."""

    channels: tuple[ChannelDef, ...] = ()

    def __post_init__(self) -> None:
        if len(self.channels) > MAX_CHANNELS:
            raise LocalProtocolError(f"at most {MAX_CHANNELS} static channels")

    def to_block(self) -> UserDataBlock:
        body = struct.pack("<I", len(self.channels)) + b"".join(
            c.name.encode("ascii").ljust(8, b"\0") + struct.pack("<I", c.options)
            for c in self.channels
        )
        return UserDataBlock(UserDataType.CS_NET, body)

    @classmethod
    def from_block(cls, block: UserDataBlock, base: int = 0) -> ClientNetworkData:
        reader = _Reader(block.body, base, "CS_NET")
        count = reader.u32("channelCount")
        if count > MAX_CHANNELS:
            raise reader.error(f"channelCount {count} is over {MAX_CHANNELS}", 0)
        channels = []
        for _ in range(count):
            raw = reader.take(8, "CHANNEL_DEF name")
            name = raw.split(b"\0", 1)[0]
            if not name.isascii() or not 0 < len(name) < 8:
                raise reader.error("channel name is not 1-7 ASCII characters", reader.pos - 8)
            channels.append(ChannelDef(name.decode("ascii"), reader.u32("CHANNEL_DEF options")))
        reader.end()
        return cls(tuple(channels))


@dataclass(frozen=True)
class ServerCoreData:
    """TS_UD_SC_CORE (MS-RDPBCGR 2.2.1.4.2).

    ``client_requested_protocols`` and ``early_capability_flags`` are optional fields:
    ``None`` when the server did not send them (RDP 4.0 and 5.x servers).
    """

    version: int
    client_requested_protocols: int | None = None
    early_capability_flags: int | None = None

    def __post_init__(self) -> None:
        _u32("version", self.version)
        if self.early_capability_flags is not None and self.client_requested_protocols is None:
            raise LocalProtocolError("earlyCapabilityFlags needs clientRequestedProtocols")

    @property
    def version_name(self) -> str:
        return rdp_version_name(self.version)

    def to_block(self) -> UserDataBlock:
        body = struct.pack("<I", self.version)
        if self.client_requested_protocols is not None:
            body += struct.pack("<I", self.client_requested_protocols)
        if self.early_capability_flags is not None:
            body += struct.pack("<I", self.early_capability_flags)
        return UserDataBlock(UserDataType.SC_CORE, body)

    @classmethod
    def from_block(cls, block: UserDataBlock, base: int = 0) -> ServerCoreData:
        reader = _Reader(block.body, base, "SC_CORE")
        version = reader.u32("version")
        requested = reader.u32("clientRequestedProtocols") if reader.remaining else None
        flags = reader.u32("earlyCapabilityFlags") if reader.remaining else None
        reader.end()
        return cls(version, requested, flags)


@dataclass(frozen=True)
class ServerNetworkData:
    """TS_UD_SC_NET (MS-RDPBCGR 2.2.1.4.4): the I/O channel and one id per static channel."""

    mcs_channel_id: int = 1003
    channel_ids: tuple[int, ...] = ()

    def to_block(self) -> UserDataBlock:
        body = struct.pack("<HH", self.mcs_channel_id, len(self.channel_ids))
        body += b"".join(struct.pack("<H", c) for c in self.channel_ids)
        if len(self.channel_ids) % 2:
            body += b"\0\0"
        return UserDataBlock(UserDataType.SC_NET, body)

    @classmethod
    def from_block(cls, block: UserDataBlock, base: int = 0) -> ServerNetworkData:
        reader = _Reader(block.body, base, "SC_NET")
        io_channel = reader.u16("MCSChannelId")
        count = reader.u16("channelCount")
        if count > MAX_CHANNELS:
            raise reader.error(f"channelCount {count} is over {MAX_CHANNELS}", 2)
        ids = tuple(reader.u16("channelIdArray") for _ in range(count))
        if count % 2 and reader.remaining:
            reader.take(2, "Pad")
        reader.end()
        return cls(io_channel, ids)


@dataclass(frozen=True)
class ProprietaryCertificate:
    """PROPRIETARYSERVERCERTIFICATE (MS-RDPBCGR 2.2.1.4.3.1.1) with its RSA_PUBLIC_KEY.

    ``modulus`` is little-endian as on the wire, including the 8 zero bytes of padding
    that ``keylen`` counts.
    """

    public_exponent: int
    modulus: bytes = field(repr=False)
    bit_length: int
    signature: bytes = field(repr=False)
    data_length: int | None = None
    sig_alg_id: int = _SIGNATURE_ALG_RSA
    key_alg_id: int = _KEY_EXCHANGE_ALG_RSA

    @classmethod
    def from_rsa(
        cls, public_exponent: int, modulus: int, signature: bytes
    ) -> ProprietaryCertificate:
        bits = ((modulus.bit_length() + 7) // 8) * 8
        raw = modulus.to_bytes(bits // 8, "little") + bytes(8)
        return cls(public_exponent, raw, bits, signature, bits // 8 - 1)

    @property
    def key_bits(self) -> int:
        return self.bit_length

    @property
    def modulus_int(self) -> int:
        return int.from_bytes(self.modulus, "little")

    def to_bytes(self) -> bytes:
        datalen = self.bit_length // 8 - 1 if self.data_length is None else self.data_length
        key = (
            struct.pack(
                "<IIIII",
                _RSA1_MAGIC,
                len(self.modulus),
                self.bit_length,
                datalen,
                self.public_exponent,
            )
            + self.modulus
        )
        return (
            struct.pack("<IIHH", self.sig_alg_id, self.key_alg_id, _BB_RSA_KEY_BLOB, len(key))
            + key
            + struct.pack("<HH", _BB_RSA_SIGNATURE_BLOB, len(self.signature))
            + self.signature
        )


@dataclass(frozen=True)
class ServerCertificate:
    """SERVER_CERTIFICATE (MS-RDPBCGR 2.2.1.4.3.1).

    Exactly one of ``proprietary`` (chain version 1) and ``x509_chain`` (version 2, DER
    certificates in the order sent: MS-RDPELE puts the server's own certificate last)
    is set. ``temporary`` is the t bit: the certificate is not permanent.
    """

    proprietary: ProprietaryCertificate | None = None
    x509_chain: tuple[bytes, ...] = ()
    temporary: bool = False

    def __post_init__(self) -> None:
        if (self.proprietary is None) == (not self.x509_chain):
            raise LocalProtocolError("a server certificate is proprietary or an X.509 chain")
        if len(self.x509_chain) > MAX_X509_CERTIFICATES:
            raise LocalProtocolError(f"at most {MAX_X509_CERTIFICATES} certificates")

    @property
    def chain_version(self) -> CertificateChainVersion:
        if self.proprietary is not None:
            return CertificateChainVersion.PROPRIETARY
        return CertificateChainVersion.X509

    @property
    def type_name(self) -> str:
        """``proprietary`` or ``x509``."""
        return "proprietary" if self.proprietary is not None else "x509"

    def to_bytes(self) -> bytes:
        version = int(self.chain_version) | (_CERT_TEMPORARY if self.temporary else 0)
        out = struct.pack("<I", version)
        if self.proprietary is not None:
            return out + self.proprietary.to_bytes()
        out += struct.pack("<I", len(self.x509_chain))
        for der in self.x509_chain:
            out += struct.pack("<I", len(der)) + der
        # MS-RDPELE 2.2.1.4.2: 8 + 4 * NumCertBlobs bytes of padding.
        return out + bytes(8 + 4 * len(self.x509_chain))


def parse_server_certificate(data: bytes, base: int = 0) -> ServerCertificate:
    """Parse SERVER_CERTIFICATE; *base* is its offset in the packet."""
    reader = _Reader(data, base, "server certificate")
    version = reader.u32("dwVersion")
    temporary = bool(version & _CERT_TEMPORARY)
    chain_version = version & ~_CERT_TEMPORARY
    if chain_version == CertificateChainVersion.PROPRIETARY:
        sig_alg = reader.u32("dwSigAlgId")
        key_alg = reader.u32("dwKeyAlgId")
        if reader.u16("wPublicKeyBlobType") != _BB_RSA_KEY_BLOB:
            raise reader.error("wPublicKeyBlobType is not BB_RSA_KEY_BLOB", reader.pos - 2)
        blob_len = reader.u16("wPublicKeyBlobLen")
        key = _Reader(
            reader.take(blob_len, "PublicKeyBlob"), base + reader.pos - blob_len, "RSA_PUBLIC_KEY"
        )
        if key.u32("magic") != _RSA1_MAGIC:
            raise key.error("magic is not RSA1", 0)
        keylen = key.u32("keylen")
        bitlen = key.u32("bitlen")
        datalen = key.u32("datalen")
        exponent = key.u32("pubExp")
        modulus = key.take(keylen, "modulus")
        key.end()
        if bitlen == 0 or bitlen > 8 * keylen:
            raise key.error(f"bitlen {bitlen} does not fit keylen {keylen}", 8)
        if reader.u16("wSignatureBlobType") != _BB_RSA_SIGNATURE_BLOB:
            raise reader.error("wSignatureBlobType is not BB_RSA_SIGNATURE_BLOB", reader.pos - 2)
        sig_len = reader.u16("wSignatureBlobLen")
        signature = reader.take(sig_len, "SignatureBlob")
        reader.end()
        cert = ProprietaryCertificate(
            exponent, modulus, bitlen, signature, datalen, sig_alg, key_alg
        )
        return ServerCertificate(proprietary=cert, temporary=temporary)
    if chain_version == CertificateChainVersion.X509:
        count = reader.u32("NumCertBlobs")
        if not 0 < count <= MAX_X509_CERTIFICATES:
            raise reader.error(f"NumCertBlobs {count} is not 1-{MAX_X509_CERTIFICATES}", 4)
        chain = []
        for _ in range(count):
            size = reader.u32("cbCert")
            chain.append(reader.take(size, "abCert"))
        padding = reader.take(reader.remaining, "Padding")
        if any(padding):
            raise reader.error("non-zero padding after the certificates", reader.pos - len(padding))
        return ServerCertificate(x509_chain=tuple(chain), temporary=temporary)
    raise reader.error(f"unknown certificate chain version {chain_version}", 0)


@dataclass(frozen=True)
class ServerSecurityData:
    """TS_UD_SC_SEC1 (MS-RDPBCGR 2.2.1.4.3).

    With method and level both zero the server sends neither random nor certificate:
    ``server_random`` is then empty and ``certificate`` ``None``.
    """

    encryption_method: int
    encryption_level: int
    server_random: bytes = field(default=b"", repr=False)
    certificate: ServerCertificate | None = None

    def __post_init__(self) -> None:
        _u32("encryption_method", self.encryption_method)
        _u32("encryption_level", self.encryption_level)

    @property
    def level_name(self) -> str:
        return encryption_level_name(self.encryption_level)

    def to_block(self) -> UserDataBlock:
        body = struct.pack("<II", self.encryption_method, self.encryption_level)
        if self.server_random or self.certificate is not None:
            cert = self.certificate.to_bytes() if self.certificate else b""
            body += struct.pack("<II", len(self.server_random), len(cert))
            body += self.server_random + cert
        return UserDataBlock(UserDataType.SC_SECURITY, body)

    @classmethod
    def from_block(cls, block: UserDataBlock, base: int = 0) -> ServerSecurityData:
        reader = _Reader(block.body, base, "SC_SECURITY")
        method = reader.u32("encryptionMethod")
        level = reader.u32("encryptionLevel")
        if not reader.remaining:
            return cls(method, level)
        random_len = reader.u32("serverRandomLen")
        cert_len = reader.u32("serverCertLen")
        server_random = reader.take(random_len, "serverRandom")
        cert_at = base + reader.pos
        raw_cert = reader.take(cert_len, "serverCertificate")
        reader.end()
        cert = parse_server_certificate(raw_cert, cert_at) if raw_cert else None
        return cls(method, level, server_random, cert)


# --- GCC Conference Create (T.124, aligned PER) ----------------------------------------


def per_length(length: int) -> bytes:
    """A PER length determinant: one octet below 128, else two with the top bit set."""
    if length < 0x80:
        return bytes([length])
    if length > _PER_MAX_LENGTH:
        raise LocalProtocolError(f"PER length {length} needs fragmentation")
    return struct.pack(">H", 0x8000 | length)


def _read_per_length(data: bytes, pos: int, base: int, what: str) -> tuple[int, int]:
    if pos >= len(data):
        raise RemoteProtocolError(f"{what}: PER length missing", base + pos)
    first = data[pos]
    if first < 0x80:
        return first, pos + 1
    if first & 0x40:
        raise RemoteProtocolError(f"{what}: fragmented PER length is not supported", base + pos)
    if pos + 1 >= len(data):
        raise RemoteProtocolError(f"{what}: PER length truncated", base + pos)
    return ((first & 0x3F) << 8) | data[pos + 1], pos + 2


def _expect(data: bytes, pos: int, expected: bytes, base: int, what: str) -> int:
    got = data[pos : pos + len(expected)]
    if got != expected:
        raise RemoteProtocolError(
            f"{what}: expected {expected.hex(' ')}, got {got.hex(' ') or 'nothing'}", base + pos
        )
    return pos + len(expected)


def _user_data_set(key: bytes, user_data: bytes) -> bytes:
    # h221NonStandard OCTET STRING (SIZE (4..255)): length - 4, then the key.
    return _USER_DATA_SET + bytes([len(key) - 4]) + key + per_length(len(user_data)) + user_data


def _read_user_data_set(data: bytes, pos: int, key: bytes, base: int, what: str) -> bytes:
    pos = _expect(data, pos, _USER_DATA_SET, base, what)
    if pos >= len(data):
        raise RemoteProtocolError(f"{what}: H.221 key missing", base + pos)
    key_len = data[pos] + 4
    if key_len != len(key):
        raise RemoteProtocolError(f"{what}: H.221 key of {key_len} bytes, expected 4", base + pos)
    pos = _expect(data, pos + 1, key, base, what)
    length, pos = _read_per_length(data, pos, base, what)
    if length != len(data) - pos:
        raise RemoteProtocolError(
            f"{what}: user data announces {length} bytes, {len(data) - pos} follow", base + pos
        )
    return bytes(data[pos:])


@dataclass(frozen=True)
class ConferenceCreateRequest:
    """GCC ConnectData with a Conference Create Request carrying the client blocks."""

    blocks: tuple[UserDataBlock, ...]

    def to_bytes(self) -> bytes:
        user_data = b"".join(b.to_bytes() for b in self.blocks)
        pdu = _CREATE_REQUEST_HEAD + _user_data_set(_CLIENT_H221_KEY, user_data)
        return _T124_KEY + per_length(len(pdu)) + pdu

    @property
    def core(self) -> ClientCoreData | None:
        block = _find(self.blocks, UserDataType.CS_CORE)
        return ClientCoreData.from_block(block) if block else None

    @property
    def security(self) -> ClientSecurityData | None:
        block = _find(self.blocks, UserDataType.CS_SECURITY)
        return ClientSecurityData.from_block(block) if block else None

    @property
    def network(self) -> ClientNetworkData | None:
        block = _find(self.blocks, UserDataType.CS_NET)
        return ClientNetworkData.from_block(block) if block else None


@dataclass(frozen=True)
class ConferenceCreateResponse:
    """GCC ConnectData with a Conference Create Response carrying the server blocks.

    ``connect_pdu_length`` is the length the server wrote before the PDU (``None``:
    the true length); Windows writes a wrong one, so it is never used to read.
    """

    blocks: tuple[UserDataBlock, ...]
    node_id: int = DEFAULT_NODE_ID
    tag: int = 1
    result: int = 0
    connect_pdu_length: int | None = None

    def __post_init__(self) -> None:
        if not _NODE_ID_BASE <= self.node_id <= _NODE_ID_BASE + 0xFFFF:
            raise LocalProtocolError(f"node_id {self.node_id} out of range")
        if not 0 <= self.tag <= 0xFFFFFFFF:
            raise LocalProtocolError(f"tag {self.tag} out of range")

    def to_bytes(self) -> bytes:
        user_data = b"".join(b.to_bytes() for b in self.blocks)
        tag_octets = self.tag.to_bytes(max(1, (self.tag.bit_length() + 7) // 8), "big")
        pdu = (
            bytes([_CREATE_RESPONSE_CHOICE])
            + struct.pack(">H", self.node_id - _NODE_ID_BASE)
            + bytes([len(tag_octets)])
            + tag_octets
            + bytes([self.result])
            + _user_data_set(_SERVER_H221_KEY, user_data)
        )
        declared = len(pdu) if self.connect_pdu_length is None else self.connect_pdu_length
        return _T124_KEY + per_length(declared) + pdu

    @property
    def core(self) -> ServerCoreData | None:
        block = _find(self.blocks, UserDataType.SC_CORE)
        return ServerCoreData.from_block(block) if block else None

    @property
    def security(self) -> ServerSecurityData | None:
        block = _find(self.blocks, UserDataType.SC_SECURITY)
        return ServerSecurityData.from_block(block) if block else None

    @property
    def network(self) -> ServerNetworkData | None:
        block = _find(self.blocks, UserDataType.SC_NET)
        return ServerNetworkData.from_block(block) if block else None


def _check_blocks(blocks: tuple[UserDataBlock, ...], base: int) -> None:
    """Decode the typed blocks once so that bad ones fail here, with their offsets."""
    pos = 0
    decoders: dict[int, Callable[[UserDataBlock, int], object]] = {
        UserDataType.CS_CORE: ClientCoreData.from_block,
        UserDataType.CS_SECURITY: ClientSecurityData.from_block,
        UserDataType.CS_NET: ClientNetworkData.from_block,
        UserDataType.SC_CORE: ServerCoreData.from_block,
        UserDataType.SC_SECURITY: ServerSecurityData.from_block,
        UserDataType.SC_NET: ServerNetworkData.from_block,
    }
    for block in blocks:
        decoder = decoders.get(block.type)
        if decoder is not None:
            decoder(block, base + pos + 4)
        pos += len(block.body) + 4


def parse_conference_create_request(data: bytes, base: int = 0) -> ConferenceCreateRequest:
    """Parse the GCC ConnectData of a Connect-Initial's userData (all of *data*)."""
    what = "GCC Conference Create Request"
    pos = _expect(data, 0, _T124_KEY, base, what)
    length, pos = _read_per_length(data, pos, base, what)
    if length != len(data) - pos:
        raise RemoteProtocolError(
            f"{what}: connectPDU announces {length} bytes, {len(data) - pos} follow", base + pos
        )
    pos = _expect(data, pos, _CREATE_REQUEST_HEAD, base, what)
    user_data = _read_user_data_set(data, pos, _CLIENT_H221_KEY, base, what)
    user_at = base + len(data) - len(user_data)
    blocks = parse_user_data_blocks(user_data, user_at)
    _check_blocks(blocks, user_at)
    return ConferenceCreateRequest(blocks)


def parse_conference_create_response(data: bytes, base: int = 0) -> ConferenceCreateResponse:
    """Parse the GCC ConnectData of a Connect-Response's userData (all of *data*)."""
    what = "GCC Conference Create Response"
    pos = _expect(data, 0, _T124_KEY, base, what)
    declared, pos = _read_per_length(data, pos, base, what)
    if pos + 5 > len(data):
        raise RemoteProtocolError(f"{what}: truncated", base + len(data))
    if data[pos] != _CREATE_RESPONSE_CHOICE:
        raise RemoteProtocolError(
            f"{what}: expected conferenceCreateResponse (0x14), got 0x{data[pos]:02x}",
            base + pos,
        )
    node_id = _NODE_ID_BASE + struct.unpack_from(">H", data, pos + 1)[0]
    tag_len = data[pos + 3]
    pos += 4
    if not 1 <= tag_len <= 4 or pos + tag_len + 1 > len(data):
        raise RemoteProtocolError(f"{what}: bad tag length {tag_len}", base + pos - 1)
    tag = int.from_bytes(data[pos : pos + tag_len], "big")
    pos += tag_len
    result = data[pos]
    pos += 1
    user_data = _read_user_data_set(data, pos, _SERVER_H221_KEY, base, what)
    user_at = base + len(data) - len(user_data)
    blocks = parse_user_data_blocks(user_data, user_at)
    _check_blocks(blocks, user_at)
    return ConferenceCreateResponse(blocks, node_id, tag, result, declared)


# --- whole PDUs: TPKT + X.224 Data + MCS + GCC -----------------------------------------


@dataclass(frozen=True)
class ClientConnectInitial:
    """Client MCS Connect Initial PDU with GCC Conference Create Request (2.2.1.3)."""

    mcs: ConnectInitial
    conference: ConferenceCreateRequest

    @classmethod
    def build(
        cls,
        security: ClientSecurityData,
        *,
        core: ClientCoreData | None = None,
        network: ClientNetworkData | None = None,
    ) -> ClientConnectInitial:
        """CS_CORE, CS_SECURITY and CS_NET in the order Windows sends them."""
        blocks = (
            (core or ClientCoreData.default()).to_block(),
            security.to_block(),
            (network or ClientNetworkData()).to_block(),
        )
        conference = ConferenceCreateRequest(blocks)
        return cls(ConnectInitial(conference.to_bytes()), conference)

    def to_bytes(self) -> bytes:
        return build_tpkt(_X224_DATA_HEADER + self.mcs.to_bytes())


@dataclass(frozen=True)
class ServerConnectResponse:
    """Server MCS Connect Response PDU with GCC Conference Create Response (2.2.1.4).

    ``conference`` is ``None`` when the server refused with a bare MCS result.
    """

    mcs: ConnectResponse
    conference: ConferenceCreateResponse | None

    @classmethod
    def build(
        cls,
        core: ServerCoreData,
        security: ServerSecurityData,
        network: ServerNetworkData | None = None,
        *,
        connect_pdu_length: int | None = None,
    ) -> ServerConnectResponse:
        """SC_CORE, SC_NET and SC_SECURITY in the order Windows sends them (4.1.4).

        *connect_pdu_length* overrides the GCC connectPDU length (``None``: the true one);
        :data:`WINDOWS_CONNECT_PDU_LENGTH` writes what Windows writes.
        """
        blocks = (core.to_block(), (network or ServerNetworkData()).to_block(), security.to_block())
        conference = ConferenceCreateResponse(blocks, connect_pdu_length=connect_pdu_length)
        return cls(ConnectResponse(user_data=conference.to_bytes()), conference)

    @classmethod
    def refusal(cls, result: int = ConnectResult.RT_UNSPECIFIED_FAILURE) -> ServerConnectResponse:
        return cls(ConnectResponse(result, 0, None, b""), None)

    def to_bytes(self) -> bytes:
        return build_tpkt(_X224_DATA_HEADER + self.mcs.to_bytes())


def _mcs_payload(data: bytes, what: str) -> tuple[bytes, int] | None:
    framed = parse_tpkt(data)
    if framed is None:
        return None
    payload, consumed = framed
    if payload[:3] != _X224_DATA_HEADER:
        raise RemoteProtocolError(
            f"{what}: expected an X.224 Data TPDU (02 f0 80), got {payload[:3].hex(' ')}",
            TPKT_HEADER_LENGTH,
        )
    return bytes(payload[3:]), consumed


class _McsPdu(Protocol):
    @property
    def user_data(self) -> bytes: ...


_Pdu = TypeVar("_Pdu", bound=_McsPdu)


def _parse_whole(
    data: bytes, what: str, parse: Callable[[bytes, int], tuple[_Pdu, int] | None]
) -> tuple[_Pdu, int, int] | None:
    """One MCS PDU filling its TPKT packet: (pdu, offset of its user data, consumed)."""
    framed = _mcs_payload(data, what)
    if framed is None:
        return None
    payload, consumed = framed
    parsed = parse(payload, MCS_OFFSET)
    if parsed is None:
        raise RemoteProtocolError(f"{what}: truncated inside its TPKT packet", MCS_OFFSET)
    mcs, used = parsed
    if used != len(payload):
        raise RemoteProtocolError(
            f"{what}: {len(payload) - used} bytes after the PDU", MCS_OFFSET + used
        )
    return mcs, MCS_OFFSET + used - len(mcs.user_data), consumed


def parse_client_connect_initial(data: bytes) -> tuple[ClientConnectInitial, int] | None:
    """Parse a whole Client MCS Connect Initial PDU at the start of *data*."""
    whole = _parse_whole(data, "MCS Connect-Initial", parse_connect_initial)
    if whole is None:
        return None
    mcs, user_at, consumed = whole
    return ClientConnectInitial(
        mcs, parse_conference_create_request(mcs.user_data, user_at)
    ), consumed


def parse_server_connect_response(data: bytes) -> tuple[ServerConnectResponse, int] | None:
    """Parse a whole Server MCS Connect Response PDU at the start of *data*."""
    whole = _parse_whole(data, "MCS Connect-Response", parse_connect_response)
    if whole is None:
        return None
    mcs, user_at, consumed = whole
    if mcs.domain_parameters is None:
        return ServerConnectResponse(mcs, None), consumed
    return (
        ServerConnectResponse(mcs, parse_conference_create_response(mcs.user_data, user_at)),
        consumed,
    )
