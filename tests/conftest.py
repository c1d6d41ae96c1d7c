"""Shared fixtures live in tests/fixtures/; each module there is a pytest plugin.

Every Python process of the test run, this one and the CLI subprocesses the tests start,
loads tests/netguard/sitecustomize.py: name lookups and connections outside loopback fail
at once (see that module). With ``RDPTRUST_FORCE_WINDOWS_PATHS=1`` in the environment
(the second pytest run of ``./run test``), the same start-up makes every process take
rdptrust's Windows-only paths where the standard library allows (tests/netguard/
force_windows.py): no ``os.fchmod``, no ``add_signal_handler``, ``rdptrust.files.WINDOWS``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_NETGUARD = str(Path(__file__).resolve().parent / "netguard")
os.environ["PYTHONPATH"] = os.pathsep.join(
    [_NETGUARD, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
)
if _NETGUARD not in sys.path:
    sys.path.insert(0, _NETGUARD)
import sitecustomize  # noqa: E402, F401  (the guard: installed by importing it)

pytest_plugins = ["fixtures.peers", "fixtures.lab", "fixtures.postgres"]
