"""The ``rdptrust policy --json`` documents: ``rdptrust.policy/1`` and
``rdptrust.registry-pol/1``.

``policy/1``: the ``policy`` written (its name), its registry ``entries`` and the
``files`` written. ``registry-pol/1``: the ``file`` read and its ``entries``. An entry
is ``key`` (no hive prefix), ``value_name``, ``type`` (``REG_DWORD`` …, or
``UNKNOWN_n``), ``data`` (lowercase hex) and ``value`` (the data decoded by type: a
number, a string, a list of strings, or the hex text again when it cannot be decoded).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from rdptrust.fix.policy import PolicySet
from rdptrust.fix.registry_pol import PolicyEntry, type_name
from rdptrust.report.objects import files_document

POLICY_SCHEMA = "rdptrust.policy/1"
REGISTRY_POL_SCHEMA = "rdptrust.registry-pol/1"


def entry_document(entry: PolicyEntry) -> dict[str, Any]:
    """One registry value of a policy."""
    value = entry.value
    return {
        "key": entry.key,
        "value_name": entry.value_name,
        "type": type_name(entry.type),
        "data": entry.data.hex(),
        "value": value.hex() if isinstance(value, bytes) else value,
    }


def policy_document(policy_set: PolicySet, files: Mapping[str, Path]) -> dict[str, Any]:
    """Build the ``rdptrust.policy/1`` document of the files written for *policy_set*."""
    return {
        "schema": POLICY_SCHEMA,
        "policy": policy_set.name,
        "entries": [entry_document(e) for e in policy_set.entries],
        "files": files_document(files),
    }


def registry_pol_document(file: Path, entries: Iterable[PolicyEntry]) -> dict[str, Any]:
    """Build the ``rdptrust.registry-pol/1`` document of a Registry.pol file read."""
    return {
        "schema": REGISTRY_POL_SCHEMA,
        "file": str(file),
        "entries": [entry_document(e) for e in entries],
    }
