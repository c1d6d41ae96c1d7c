"""Two binary registry values a Windows client's trust depends on, parsed (sans-I/O).

``WinHttpSettings`` (``HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Internet
Settings\\Connections``) is where ``netsh winhttp set proxy`` keeps WinHTTP's static
proxy. Microsoft does not document its layout; this is the layout netsh writes and
IE's ``DefaultConnectionSettings`` shares (observed, all little-endian)::

    offset  size  field
    0       4     structure version (0x18 as netsh writes it; not checked)
    4       4     change counter
    8       4     flags: 0x1 direct, 0x2 named proxy, 0x4 auto-config URL, 0x8 auto-detect
    12      4     N, the proxy server list's length in bytes
    16      N     proxy server list, ASCII ("host:port" or "http=host:port;https=…")
    16+N    4     M, the bypass list's length in bytes
    20+N    M     bypass list, ASCII ("<local>;*.corp")
    …             (DefaultConnectionSettings goes on: auto-config URL and more; ignored)

The proxy counts only with the 0x2 flag, as WinHTTP reads it. ``LastSyncTime``
(``…\\SystemCertificates\\AuthRoot\\AutoUpdate``) is a FILETIME: 100 ns ticks since
1601-01-01 UTC, 8 bytes little-endian (SDK ``FILETIME``; documented).
"""

from __future__ import annotations

import datetime as dt
import struct

from rdptrust.errors import RemoteProtocolError
from rdptrust.model.client_state import MAX_TEXT, WinHttpProxy

#: WinHttpSettings flag: a named proxy is set.
PROXY_TYPE_PROXY = 0x2
_HEADER = 12
_FILETIME_EPOCH = dt.datetime(1601, 1, 1, tzinfo=dt.UTC)


def _string(data: bytes, offset: int, what: str) -> tuple[str, int]:
    if len(data) < offset + 4:
        raise RemoteProtocolError(f"WinHttpSettings ends before the {what} length", offset)
    (length,) = struct.unpack_from("<I", data, offset)
    offset += 4
    if length > MAX_TEXT or len(data) < offset + length:
        raise RemoteProtocolError(
            f"WinHttpSettings {what} length {length} runs past the value's end", offset - 4
        )
    raw = data[offset : offset + length]
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise RemoteProtocolError(f"WinHttpSettings {what} is not ASCII", offset) from None
    if any(not c.isprintable() for c in text):
        raise RemoteProtocolError(f"WinHttpSettings {what} holds control characters", offset)
    return text, offset + length


def parse_winhttp_settings(data: bytes) -> WinHttpProxy:
    """The static proxy in a ``WinHttpSettings`` value (see the module docstring).

    Raises RemoteProtocolError, naming the offset, for a value that breaks the layout.
    """
    if len(data) < _HEADER:
        raise RemoteProtocolError(
            f"WinHttpSettings is {len(data)} bytes, shorter than its {_HEADER}-byte header", 0
        )
    (flags,) = struct.unpack_from("<I", data, 8)
    server, offset = _string(data, _HEADER, "proxy server")
    bypass, _ = _string(data, offset, "bypass list")
    if not flags & PROXY_TYPE_PROXY or not server.strip():
        return WinHttpProxy(None, None)
    return WinHttpProxy(server.strip(), bypass.strip() or None)


def build_winhttp_settings(
    server: str | None, bypass: str | None = None, *, counter: int = 1
) -> bytes:
    """The ``WinHttpSettings`` value netsh writes for *server* (None: direct access)."""
    proxy = (server or "").encode("ascii")
    skip = (bypass or "").encode("ascii")
    flags = 0x1 | (PROXY_TYPE_PROXY if proxy else 0)
    return (
        struct.pack("<III", 0x18, counter, flags)
        + struct.pack("<I", len(proxy))
        + proxy
        + struct.pack("<I", len(skip))
        + skip
    )


def parse_filetime(data: bytes) -> dt.datetime | None:
    """The UTC moment of an 8-byte FILETIME, None for 0 (never); RemoteProtocolError when
    it is not 8 bytes or lies beyond year 9999."""
    if len(data) != 8:
        raise RemoteProtocolError(f"a FILETIME is 8 bytes, not {len(data)}", 0)
    (ticks,) = struct.unpack("<Q", data)
    if ticks == 0:
        return None
    try:
        return _FILETIME_EPOCH + dt.timedelta(microseconds=ticks // 10)
    except OverflowError:
        raise RemoteProtocolError("the FILETIME lies beyond year 9999", 0) from None
