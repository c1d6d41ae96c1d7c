"""The one conversion from result values to JSON-ready data.

Every ``--json`` output is built from frozen result dataclasses through
:func:`to_jsonable`: enums become their names, datetimes ISO 8601 in UTC, bytes
lowercase hex, tuples lists. Each document carries ``schema`` (name and version), so
consumers can tell when the shape changes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any


def to_jsonable(value: Any) -> Any:
    """Convert *value* (dataclasses, enums, datetimes, containers) into JSON types."""
    if value is None or isinstance(value, bool | int | float | str):
        if isinstance(value, enum.Enum):
            return value.name if not isinstance(value, str) else value.value
        return value
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    if isinstance(value, PurePath):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    return str(value)


def dumps(document: Mapping[str, Any], *, pretty: bool = True) -> str:
    """Serialise a document built with :func:`to_jsonable`."""
    return json.dumps(document, indent=2 if pretty else None, ensure_ascii=False, sort_keys=False)
