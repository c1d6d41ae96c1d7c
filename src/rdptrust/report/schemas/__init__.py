"""The JSON Schema (draft 2020-12) of every document rdptrust prints.

One file per document, ``<name>.schema.json``, whose ``$id`` is the document's
``schema`` value (``rdptrust.probe/2``). Each file stands alone: the objects several
documents share (``certificate``, ``problem``, ``ntlm``, …) are repeated under the same
``$defs`` name in each file that uses them, identical in every one (a test checks).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

_SUFFIX = ".schema.json"


def schema_files() -> dict[str, str]:
    """Each shipped schema's ``$id``, and its file name."""
    found: dict[str, str] = {}
    for entry in resources.files(__name__).iterdir():
        if entry.name.endswith(_SUFFIX):
            found[str(json.loads(entry.read_text(encoding="utf-8"))["$id"])] = entry.name
    return found


def load_schema(schema_id: str) -> dict[str, Any]:
    """The schema of the document whose ``schema`` is *schema_id* (``rdptrust.probe/2``).

    Raises KeyError for a name rdptrust does not ship.
    """
    name = schema_id.removeprefix("rdptrust.").split("/", 1)[0]
    entry = resources.files(__name__).joinpath(name + _SUFFIX)
    if not entry.is_file():
        raise KeyError(schema_id)
    schema: dict[str, Any] = json.loads(entry.read_text(encoding="utf-8"))
    if schema.get("$id") != schema_id:
        raise KeyError(schema_id)
    return schema
