"""Registry.pol (PReg) files: the registry half of a Group Policy Object (MS-GPREG 2.2.1).

Layout: the header ``50 52 65 67 01 00 00 00`` ("PReg", version 1), then one
instruction per value, all text UTF-16LE::

    [ key NUL ; value-name NUL ; type (u32 LE) ; size (u32 LE) ; data ]

with no separator between instructions.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from rdptrust.errors import LocalProtocolError, RemoteProtocolError

SIGNATURE = b"PReg"
VERSION = 1
HEADER = SIGNATURE + struct.pack("<I", VERSION)
#: MS-GPREG 2.2.1: Value is 1*259 characters, Data at most 65535 octets.
MAX_VALUE_NAME = 259
MAX_DATA = 0xFFFF
#: Registry key paths are limited to 255 characters per key and 32767 in total.
MAX_KEY_PATH = 32767

_OPEN = "[".encode("utf-16-le")
_CLOSE = "]".encode("utf-16-le")
_SEMI = ";".encode("utf-16-le")
_NUL = b"\x00\x00"


class RegType(IntEnum):
    """Registry value types (winnt.h) that MS-GPREG allows."""

    REG_NONE = 0
    REG_SZ = 1
    REG_EXPAND_SZ = 2
    REG_BINARY = 3
    REG_DWORD = 4
    REG_DWORD_BIG_ENDIAN = 5
    REG_LINK = 6
    REG_MULTI_SZ = 7
    REG_QWORD = 11


def type_name(value: int) -> str:
    try:
        return RegType(value).name
    except ValueError:
        return f"UNKNOWN_{value}"


@dataclass(frozen=True)
class PolicyEntry:
    """One ``[key;value;type;size;data]`` instruction. ``key`` has no hive prefix."""

    key: str
    value_name: str
    type: int
    data: bytes

    def __post_init__(self) -> None:
        if not self.key or len(self.key) > MAX_KEY_PATH or "\x00" in self.key:
            raise LocalProtocolError(f"invalid registry key path {self.key!r}")
        if len(self.value_name) > MAX_VALUE_NAME or "\x00" in self.value_name:
            raise LocalProtocolError(f"invalid registry value name {self.value_name!r}")
        if len(self.data) > MAX_DATA:
            raise LocalProtocolError("registry value data is over 65535 bytes")
        if not 0 <= self.type <= 0xFFFFFFFF:
            raise LocalProtocolError(f"registry type {self.type} does not fit 32 bits")

    @classmethod
    def dword(cls, key: str, value_name: str, value: int) -> PolicyEntry:
        if not 0 <= value <= 0xFFFFFFFF:
            raise LocalProtocolError(f"DWORD value {value} out of range")
        return cls(key, value_name, RegType.REG_DWORD, struct.pack("<I", value))

    @classmethod
    def string(cls, key: str, value_name: str, value: str) -> PolicyEntry:
        return cls(key, value_name, RegType.REG_SZ, (value + "\x00").encode("utf-16-le"))

    @property
    def value(self) -> int | str | list[str] | bytes:
        """The data decoded by type; bytes when the type or data is unusual."""
        if self.type == RegType.REG_DWORD and len(self.data) == 4:
            return int(struct.unpack("<I", self.data)[0])
        if self.type == RegType.REG_DWORD_BIG_ENDIAN and len(self.data) == 4:
            return int(struct.unpack(">I", self.data)[0])
        if self.type == RegType.REG_QWORD and len(self.data) == 8:
            return int(struct.unpack("<Q", self.data)[0])
        if self.type in (RegType.REG_SZ, RegType.REG_EXPAND_SZ) and len(self.data) % 2 == 0:
            try:
                return self.data.decode("utf-16-le").rstrip("\x00")
            except UnicodeDecodeError:
                return self.data
        if self.type == RegType.REG_MULTI_SZ and len(self.data) % 2 == 0:
            try:
                text = self.data.decode("utf-16-le")
            except UnicodeDecodeError:
                return self.data
            return [part for part in text.split("\x00") if part]
        return self.data

    def to_bytes(self) -> bytes:
        return b"".join(
            [
                _OPEN,
                (self.key + "\x00").encode("utf-16-le"),
                _SEMI,
                (self.value_name + "\x00").encode("utf-16-le"),
                _SEMI,
                struct.pack("<I", self.type),
                _SEMI,
                struct.pack("<I", len(self.data)),
                _SEMI,
                self.data,
                _CLOSE,
            ]
        )


def build_registry_pol(entries: list[PolicyEntry] | tuple[PolicyEntry, ...]) -> bytes:
    """A whole Registry.pol file holding *entries* in order."""
    return HEADER + b"".join(entry.to_bytes() for entry in entries)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def expect(self, token: bytes, what: str) -> None:
        if self.data[self.pos : self.pos + len(token)] != token:
            raise RemoteProtocolError(f"expected {what}", self.pos)
        self.pos += len(token)

    def text(self, limit: int, what: str) -> str:
        start = self.pos
        end = start
        while True:
            if end + 2 > len(self.data):
                raise RemoteProtocolError(f"{what} is not terminated by NUL", start)
            if self.data[end : end + 2] == _NUL:
                break
            end += 2
            if (end - start) // 2 > limit:
                raise RemoteProtocolError(f"{what} is longer than {limit} characters", start)
        try:
            value = self.data[start:end].decode("utf-16-le")
        except UnicodeDecodeError as exc:
            raise RemoteProtocolError(f"{what} is not valid UTF-16", start) from exc
        self.pos = end + 2
        return value

    def u32(self, what: str) -> int:
        if self.pos + 4 > len(self.data):
            raise RemoteProtocolError(f"{what} truncated", self.pos)
        (value,) = struct.unpack_from("<I", self.data, self.pos)
        self.pos += 4
        return int(value)


def parse_registry_pol(data: bytes) -> tuple[PolicyEntry, ...]:
    """Read every instruction of a Registry.pol file; RemoteProtocolError names the offset."""
    if len(data) < len(HEADER):
        raise RemoteProtocolError("file is shorter than the 8-byte PReg header", 0)
    if data[:4] != SIGNATURE:
        raise RemoteProtocolError("missing the PReg signature (not a Registry.pol file)", 0)
    (version,) = struct.unpack_from("<I", data, 4)
    if version != VERSION:
        raise RemoteProtocolError(f"unsupported Registry.pol version {version}", 4)
    reader = _Reader(data)
    reader.pos = len(HEADER)
    entries: list[PolicyEntry] = []
    while reader.pos < len(data):
        start = reader.pos
        reader.expect(_OPEN, "'[' starting an entry")
        key = reader.text(MAX_KEY_PATH, "key path")
        reader.expect(_SEMI, "';' after the key path")
        name = reader.text(MAX_VALUE_NAME, "value name")
        reader.expect(_SEMI, "';' after the value name")
        type_ = reader.u32("type")
        reader.expect(_SEMI, "';' after the type")
        size = reader.u32("size")
        reader.expect(_SEMI, "';' after the size")
        if size > MAX_DATA or reader.pos + size > len(data):
            raise RemoteProtocolError(
                f"data size {size} runs past the end of the file", reader.pos - 6
            )
        payload = bytes(data[reader.pos : reader.pos + size])
        reader.pos += size
        reader.expect(_CLOSE, "']' closing the entry")
        try:
            entries.append(PolicyEntry(key, name, type_, payload))
        except LocalProtocolError as exc:
            raise RemoteProtocolError(str(exc), start) from exc
    return tuple(entries)
