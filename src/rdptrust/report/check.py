"""The ``rdptrust check --json`` document (``rdptrust.check/2``).

``state`` (OK, WARNING, CRITICAL, UNKNOWN) and ``exit_code`` are the plugin's; ``line``
is the plugin line it would print. ``verdict``, ``predicted_stall_s``, ``problems`` and
``findings`` are the assessment's, the same as ``rdptrust diagnose`` gives for the host.

Version 2 (from 1): ``error`` is the ``kind`` + ``message`` object of every document, not
the message alone.

When the check stops before anything is probed (a target that is no host name, a CA file
or pinned-host store that cannot be read, a bad client-state file), :func:`unknown_document`
gives the same document: state UNKNOWN, nothing judged, ``error`` saying why.
"""

from __future__ import annotations

from typing import Any

from rdptrust.model.assessment import Assessment
from rdptrust.report.objects import error_document, problems_document

CHECK_SCHEMA = "rdptrust.check/2"
CHECK_SCHEMA_VERSION = 2


def check_document(state: str, exit_code: int, line: str, assessment: Assessment) -> dict[str, Any]:
    """Build the ``rdptrust.check/2`` document."""
    return {
        "schema": CHECK_SCHEMA,
        "schema_version": CHECK_SCHEMA_VERSION,
        "target": str(assessment.target),
        "state": state,
        "exit_code": exit_code,
        "line": line,
        "verdict": assessment.verdict.value,
        "diagnosed": assessment.diagnosed,
        "predicted_stall_s": assessment.predicted_stall_s,
        "problems": problems_document(assessment.problems),
        "findings": problems_document(assessment.findings),
        "error": error_document(assessment.probe.error),
        "store_error": assessment.store_error,
    }


def unknown_document(
    target: str, line: str, kind: str, message: str, store_error: str | None = None
) -> dict[str, Any]:
    """The ``rdptrust.check/2`` document of a check that stopped before it probed *target*."""
    return {
        "schema": CHECK_SCHEMA,
        "schema_version": CHECK_SCHEMA_VERSION,
        "target": target or "''",
        "state": "UNKNOWN",
        "exit_code": 3,
        "line": line,
        "verdict": "unknown",
        "diagnosed": False,
        "predicted_stall_s": None,
        "problems": [],
        "findings": [],
        "error": {"kind": kind, "message": message},
        "store_error": store_error,
    }
