"""The ``rdptrust demo --json`` document (``rdptrust.demo/2``).

``before`` and ``after`` are the ``rdptrust.diagnosis/2`` documents of the lab host
before the fixes and after them (Method 1, and the disallowed-list switch that Windows 8
and later need where Windows Update is unreachable); ``elapsed_s`` is how long the demo
took. Version 2 (from 1): both diagnoses are ``rdptrust.diagnosis/2``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rdptrust.model.assessment import Assessment, Fix
from rdptrust.report.diagnosis import diagnosis_document

DEMO_SCHEMA = "rdptrust.demo/2"


def demo_document(
    before: tuple[Assessment, Sequence[Fix]],
    method1: tuple[Assessment, Sequence[Fix]],
    after: tuple[Assessment, Sequence[Fix]],
    elapsed_s: float,
) -> dict[str, Any]:
    """Build the ``rdptrust.demo/2`` document: each diagnosis with its fixes, before any
    fix, with Method 1 alone, and with the disallowed-list switch too."""
    return {
        "schema": DEMO_SCHEMA,
        "before": diagnosis_document(*before),
        "after_method1": diagnosis_document(*method1),
        "after": diagnosis_document(*after),
        "elapsed_s": round(elapsed_s, 3),
    }
