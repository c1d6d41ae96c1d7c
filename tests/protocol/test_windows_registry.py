"""WinHttpSettings and FILETIME registry values, from bytes written out by hand."""

from __future__ import annotations

import datetime as dt

import pytest

from rdptrust.errors import RemoteProtocolError
from rdptrust.model.client_state import WinHttpProxy
from rdptrust.protocol.windows_registry import (
    build_winhttp_settings,
    parse_filetime,
    parse_winhttp_settings,
)

# netsh winhttp reset proxy: version 0x18, counter 0, flags 0x1 (direct), two empty lists
DIRECT = bytes.fromhex("18000000 00000000 01000000 00000000 00000000")
# netsh winhttp set proxy proxy:8080 "<local>": counter 2, flags 0x3, "proxy:8080", "<local>"
NAMED = bytes.fromhex(
    "18000000 02000000 03000000 0a000000"
    "70726f78793a38303830"  # proxy:8080
    "07000000"
    "3c6c6f63616c3e"  # <local>
)


def test_direct_access_is_no_proxy() -> None:
    assert parse_winhttp_settings(DIRECT) == WinHttpProxy(None, None)


def test_a_named_proxy_and_its_bypass_list() -> None:
    assert parse_winhttp_settings(NAMED) == WinHttpProxy("proxy:8080", "<local>")


def test_trailing_bytes_are_ignored_as_in_ie_settings() -> None:
    # DefaultConnectionSettings goes on with an auto-config URL and 32 more bytes
    assert parse_winhttp_settings(NAMED + bytes(40)) == WinHttpProxy("proxy:8080", "<local>")


def test_a_proxy_without_the_proxy_flag_does_not_count() -> None:
    off = NAMED[:8] + bytes.fromhex("01000000") + NAMED[12:]
    assert parse_winhttp_settings(off) == WinHttpProxy(None, None)


def test_per_scheme_list_without_bypass() -> None:
    text = b"http=127.0.0.1:3128;https=127.0.0.1:3129"
    data = bytes.fromhex("18000000 05000000 03000000") + len(text).to_bytes(4, "little")
    data += text + bytes(4)
    assert parse_winhttp_settings(data) == WinHttpProxy(text.decode(), None)


def test_the_builder_writes_what_netsh_writes() -> None:
    assert build_winhttp_settings(None, counter=0) == DIRECT
    assert build_winhttp_settings("proxy:8080", "<local>", counter=2) == NAMED


@pytest.mark.parametrize(
    ("data", "words", "offset"),
    [
        (DIRECT[:11], "shorter than its 12-byte header", 0),
        (DIRECT[:14], "ends before the proxy server length", 12),
        (NAMED[:20], "proxy server length 10 runs past", 12),
        (NAMED[:28], "ends before the bypass list length", 26),
        (NAMED[:-1], "bypass list length 7 runs past", 26),
        (NAMED[:16] + b"proxy\xff8080" + NAMED[26:], "proxy server is not ASCII", 16),
        (NAMED[:16] + b"proxy\n8080" + NAMED[26:], "control characters", 16),
        (bytes.fromhex("18000000 00000000 03000000 ffffffff"), "runs past", 12),
    ],
)
def test_a_broken_value_names_its_offset(data: bytes, words: str, offset: int) -> None:
    with pytest.raises(RemoteProtocolError, match=words) as caught:
        parse_winhttp_settings(data)
    assert caught.value.offset == offset


def test_filetime() -> None:
    # 2026-05-01T12:00:00Z = 134_221_104_000_000_000 ticks of 100 ns since 1601
    ticks = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC) - dt.datetime(1601, 1, 1, tzinfo=dt.UTC)
    value = (ticks // dt.timedelta(microseconds=1)) * 10
    assert value == 134221104000000000
    data = bytes.fromhex("00 e0 47 09 62 d9 dc 01")
    assert int.from_bytes(data, "little") == value
    assert parse_filetime(data) == dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)
    assert parse_filetime(bytes(8)) is None
    with pytest.raises(RemoteProtocolError, match="8 bytes, not 4"):
        parse_filetime(bytes(4))
    with pytest.raises(RemoteProtocolError, match="beyond year 9999"):
        parse_filetime(b"\xff" * 8)
