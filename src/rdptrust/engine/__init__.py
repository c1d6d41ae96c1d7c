"""Runs an assessment of one host (probe, retrievals, judgement) and the fleet scan.

``from rdptrust.engine import assess, AssessOptions``; the names load on first use, so
that the scan loop (``rdptrust.engine.scan``) does not import the retrieval code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rdptrust.engine.assessment import assess, assess_probe
    from rdptrust.engine.options import AssessOptions

__all__ = ["AssessOptions", "assess", "assess_probe"]

_LAZY = {
    "AssessOptions": "rdptrust.engine.options",
    "assess": "rdptrust.engine.assessment",
    "assess_probe": "rdptrust.engine.assessment",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rdptrust.engine' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
