"""Windows-only paths of rdptrust, taken on Linux: ``RDPTRUST_FORCE_WINDOWS_PATHS=1``.

Loaded by tests/conftest.py for the test process and by sitecustomize.py for every
Python process the tests start (the CLI in subprocesses). Where the standard library
lets a Linux process look like Windows, it does:

- ``os.fchmod`` is removed (Windows Python has it only from 3.13);
- the event loops' ``add_signal_handler`` raises NotImplementedError, as the Windows
  Proactor loop's does (asyncio's selector loop and uvloop alike);
- ``rdptrust.files.WINDOWS`` is true, so rdptrust takes its win32 branches: no POSIX
  modes, secrets restricted with ``icacls`` (absent here unless a test puts one on
  PATH, so the "not restricted" warning path runs), FreeRDP's folder under %APPDATA%.
"""

from __future__ import annotations

import os
from typing import Any

VARIABLE = "RDPTRUST_FORCE_WINDOWS_PATHS"


def wanted() -> bool:
    return os.environ.get(VARIABLE) == "1"


def _refuse_signal_handler(self: Any, sig: int, callback: Any, *args: Any) -> None:
    raise NotImplementedError


def install() -> None:
    """Take the Windows paths in this process (idempotent)."""
    if hasattr(os, "fchmod"):
        del os.fchmod
    import asyncio.unix_events

    asyncio.unix_events._UnixSelectorEventLoop.add_signal_handler = _refuse_signal_handler  # type: ignore[method-assign]
    try:
        import uvloop
    except ImportError:
        pass
    else:
        uvloop.Loop.add_signal_handler = _refuse_signal_handler  # type: ignore[method-assign]
    try:
        import rdptrust.files
    except ImportError:  # another program's Python (a peer's venv): nothing to force
        return
    rdptrust.files.WINDOWS = True
