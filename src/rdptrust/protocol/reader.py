"""Bounds-checked reading over one packet, shared by the MCS (BER) and GCC parsers.

Every error is a :class:`~rdptrust.errors.RemoteProtocolError` that names the part being
read and the offset of the fault, counted from ``base`` (the reader's first byte within
the whole packet), so a hostile or broken answer is reported where it went wrong.
"""

from __future__ import annotations

import struct

from rdptrust.errors import RemoteProtocolError


class PacketReader:
    """Reads *data* front to back; ``pos`` is the next byte."""

    def __init__(self, data: bytes, base: int, what: str) -> None:
        self.data = data
        self.pos = 0
        self.base = base
        self.what = what

    def error(self, message: str, at: int | None = None) -> RemoteProtocolError:
        """An error about *what* at offset *at* (default: the current position)."""
        return RemoteProtocolError(
            f"{self.what}: {message}", self.base + (self.pos if at is None else at)
        )

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def take(self, count: int, name: str) -> bytes:
        """The next *count* bytes, or an error naming *name* when fewer remain."""
        if count > self.remaining:
            raise self.error(f"{name} needs {count} bytes, {self.remaining} remain")
        value = self.data[self.pos : self.pos + count]
        self.pos += count
        return bytes(value)


class LittleEndianReader(PacketReader):
    """Little-endian integers, as the RDP settings blocks and server certificate hold them."""

    def u8(self, name: str) -> int:
        return self.take(1, name)[0]

    def u16(self, name: str) -> int:
        return int(struct.unpack("<H", self.take(2, name))[0])

    def u32(self, name: str) -> int:
        return int(struct.unpack("<I", self.take(4, name))[0])

    def end(self) -> None:
        """Refuse bytes left after the last field."""
        if self.remaining:
            raise self.error(f"{self.remaining} unexpected bytes at the end")
