"""The ``rdptrust check --json`` document (``rdptrust.check/1``).

``state`` (OK, WARNING, CRITICAL, UNKNOWN) and ``exit_code`` are the plugin's; ``line``
is the plugin line it would print. ``verdict``, ``predicted_stall_s``, ``problems`` and
``findings`` are the assessment's, the same as ``rdptrust diagnose`` gives for the host.
"""

from __future__ import annotations

from typing import Any

from rdptrust.model.assessment import Assessment
from rdptrust.report.jsonform import to_jsonable

CHECK_SCHEMA = "rdptrust.check/1"


def check_document(state: str, exit_code: int, line: str, assessment: Assessment) -> dict[str, Any]:
    """Build the ``rdptrust.check/1`` document."""
    return {
        "schema": CHECK_SCHEMA,
        "schema_version": 1,
        "target": str(assessment.target),
        "state": state,
        "exit_code": exit_code,
        "line": line,
        "verdict": assessment.verdict.value,
        "diagnosed": assessment.diagnosed,
        "predicted_stall_s": assessment.predicted_stall_s,
        "problems": to_jsonable(assessment.problems),
        "findings": to_jsonable(assessment.findings),
        "error": None if assessment.probe.error is None else assessment.probe.error.message,
        "store_error": assessment.store_error,
    }
