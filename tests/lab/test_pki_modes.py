"""The PKI responder's modes: parsing and printing ``ok``, ``delay:S``, ``blackhole``, ..."""

from __future__ import annotations

import gzip
import struct
import zlib

import pytest

from rdptrust.errors import UsageError
from rdptrust.lab.pki.content import BOMB_CRC32, BOMB_INFLATED_BYTES, _gzip_zeros, gzip_bomb
from rdptrust.lab.pki.modes import ALL_OK, OK, PURPOSES, PkiModes, ResponderMode


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        ("ok", ResponderMode("ok")),
        ("delay:2.5", ResponderMode("delay", 2.5)),
        (" Delay:0 ", ResponderMode("delay", 0.0)),
        ("blackhole", ResponderMode("blackhole")),
        ("refuse", ResponderMode("refuse")),
        ("404", ResponderMode("404")),
        ("garbage", ResponderMode("garbage")),
        ("gzip-bomb", ResponderMode("gzip-bomb")),
        ("GET-only", ResponderMode("get-only")),
        ("post-only", ResponderMode("post-only")),
        ("huge", ResponderMode("huge")),
        ("delta", ResponderMode("delta")),
    ],
)
def test_mode_parse(text: str, mode: ResponderMode) -> None:
    assert ResponderMode.parse(text) == mode
    assert ResponderMode.parse(str(mode)) == mode


@pytest.mark.parametrize("text", ["", "slow", "delay", "delay:x", "delay:-1", "delay:nan", "500"])
def test_mode_parse_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        ResponderMode.parse(text)


def test_every_purpose_has_its_own_mode() -> None:
    modes = PkiModes(crl=ResponderMode("blackhole"), ocsp=ResponderMode("delay", 1.5))
    assert [str(modes.for_purpose(p)) for p in PURPOSES] == ["ok", "ok", "blackhole", "delay:1.5"]
    assert all(ALL_OK.for_purpose(p) == OK for p in PURPOSES)


def test_the_gzip_bomb_is_valid_gzip_of_2_gib_of_zeros() -> None:
    # The inner layer is checked whole at a small size, the outer one by its trailer:
    # the 2 GiB layer carries the CRC-32 of that many zeros, recomputed here.
    small = 8 * 1024 * 1024
    assert gzip.decompress(_gzip_zeros(small, zlib.crc32(bytes(small)))) == bytes(small)
    inner = gzip.decompress(gzip_bomb())
    crc = 0
    zeros = bytes(16 * 1024 * 1024)
    for _ in range(BOMB_INFLATED_BYTES // len(zeros)):
        crc = zlib.crc32(zeros, crc)
    assert struct.unpack("<II", inner[-8:]) == (crc, BOMB_INFLATED_BYTES & 0xFFFFFFFF)
    assert crc == BOMB_CRC32
    assert len(gzip_bomb()) < 4096
    unpacker = zlib.decompressobj(31)
    first = unpacker.decompress(inner, 64 * 1024 * 1024)
    assert first == bytes(len(first))
    assert len(first) == 64 * 1024 * 1024
