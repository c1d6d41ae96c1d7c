"""The RDP settings blocks of the MCS connect PDUs (MS-RDPBCGR 2.2.1.3.1-2.2.1.4.4).

The client sends CS_CORE, CS_SECURITY and CS_NET in its Conference Create Request; the
server answers with SC_CORE (its RDP version), SC_NET and SC_SECURITY: the encryption
method it chose for Standard RDP Security, its encryption level, a server random and
its server certificate (:mod:`rdptrust.protocol.gcc.certificate`).

Each block is a TS_UD_HEADER (type, length) and a little-endian body; ``from_block``
parsers raise :class:`~rdptrust.errors.RemoteProtocolError` with the offset in the
packet (``base`` is the body's offset).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag

from rdptrust.errors import LocalProtocolError, RemoteProtocolError
from rdptrust.protocol.gcc.certificate import ServerCertificate, parse_server_certificate
from rdptrust.protocol.reader import LittleEndianReader


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


#: Static virtual channels a client may list in CS_NET (MS-RDPBCGR 2.2.1.3.4).
MAX_CHANNELS = 31
#: The MCS I/O channel id Windows hands out; static channels follow it (MS-RDPBCGR 4.1.4).
IO_CHANNEL_ID = 1003


def _u32(name: str, value: int) -> None:
    if not 0 <= value <= 0xFFFFFFFF:
        raise LocalProtocolError(f"{name}={value} does not fit 32 bits")


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


def find_block(blocks: Sequence[UserDataBlock], type_: UserDataType) -> UserDataBlock | None:
    """The first block of *type_*, or ``None``."""
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
        reader = LittleEndianReader(block.body, base, "CS_SECURITY")
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
        reader = LittleEndianReader(block.body, base, "CS_NET")
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
        reader = LittleEndianReader(block.body, base, "SC_CORE")
        version = reader.u32("version")
        requested = reader.u32("clientRequestedProtocols") if reader.remaining else None
        flags = reader.u32("earlyCapabilityFlags") if reader.remaining else None
        reader.end()
        return cls(version, requested, flags)


@dataclass(frozen=True)
class ServerNetworkData:
    """TS_UD_SC_NET (MS-RDPBCGR 2.2.1.4.4): the I/O channel and one id per static channel."""

    mcs_channel_id: int = IO_CHANNEL_ID
    channel_ids: tuple[int, ...] = ()

    def to_block(self) -> UserDataBlock:
        body = struct.pack("<HH", self.mcs_channel_id, len(self.channel_ids))
        body += b"".join(struct.pack("<H", c) for c in self.channel_ids)
        if len(self.channel_ids) % 2:
            body += b"\0\0"
        return UserDataBlock(UserDataType.SC_NET, body)

    @classmethod
    def from_block(cls, block: UserDataBlock, base: int = 0) -> ServerNetworkData:
        reader = LittleEndianReader(block.body, base, "SC_NET")
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
        reader = LittleEndianReader(block.body, base, "SC_SECURITY")
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


def check_blocks(blocks: tuple[UserDataBlock, ...], base: int) -> None:
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
