"""Benchmarks time rdptrust as it runs installed: from compiled bytecode.

pip compiles a package's modules when it installs them, so an installed rdptrust never
compiles its source at start. Where ``PYTHONDONTWRITEBYTECODE`` is set (some CI and
container images set it) a source checkout compiles every module in every process it
starts instead, about 0.1 s of CPU per process on this machine: a benchmark would time
that, not rdptrust. :func:`use_compiled_bytecode` compiles the package being measured
and lets the processes a benchmark starts write and read bytecode (a ``--baseline``
build's modules are compiled by its first, untimed, run).
"""

from __future__ import annotations

import compileall
import os
import sys
from pathlib import Path

import rdptrust


def use_compiled_bytecode() -> None:
    """Compile rdptrust's modules and let this process and its children use bytecode."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.dont_write_bytecode = False
    compileall.compile_dir(Path(rdptrust.__file__).parent, quiet=1)
