"""The one conversion from result values to JSON-ready data, and the one timestamp style.

Every ``--json`` document is built in :mod:`rdptrust.report` by a builder function over
typed values, and every value in it passes through :func:`to_jsonable`: enums become
their values, datetimes RFC 3339 UTC text ending in ``Z`` (:func:`timestamp`), bytes
lowercase hex, tuples lists. The documents are plain frozen dataclasses and one
serializer rather than a model library (pydantic, msgspec): the results already are
frozen dataclasses, and this needs no new dependency. Each document carries ``schema``
(name and version) and has a JSON Schema of that ``$id`` in
:mod:`rdptrust.report.schemas`, so consumers can tell when the shape changes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import re
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from rdptrust.model.text import BIDI_CONTROLS


def timestamp(value: dt.datetime) -> str:
    """*value* as RFC 3339 UTC text: ``2026-05-01T12:00:00Z``, or ``….123Z`` with a
    fraction of a second (milliseconds). A naive *value* is taken to be UTC already."""
    if value.tzinfo is dt.UTC:
        # what the inventory reads back: no conversion, and no copy without the zone
        spec = "milliseconds" if value.microsecond else "seconds"
        return value.isoformat(timespec=spec)[:-6] + "Z"
    moment = value.astimezone(dt.UTC) if value.tzinfo is not None else value
    spec = "milliseconds" if moment.microsecond else "seconds"
    return moment.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def optional_timestamp(value: dt.datetime | None) -> str | None:
    """:func:`timestamp` of *value*, or None."""
    return None if value is None else timestamp(value)


def to_jsonable(value: Any) -> Any:
    """Convert *value* (dataclasses, enums, datetimes, containers) into JSON types."""
    if isinstance(value, enum.Enum):
        return value.value if isinstance(value, str) else value.name
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.datetime):
        return timestamp(value)
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
    """Serialise a document built with :func:`to_jsonable`.

    Letters stay UTF-8, but C1 controls and bidi overrides, which JSON allows raw, are
    written as ``\\uXXXX`` escapes: the same value to a parser, inert on a terminal.
    """
    text = (_PRETTY if pretty else _COMPACT).encode(document)
    if text.isascii() and "\x7f" not in text:
        return text  # the usual case, two scans in C: DEL is the one such ASCII character
    return _RAW_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


#: The encoders of :func:`dumps`, made once (``json.dumps`` with options makes one a call).
_PRETTY = json.JSONEncoder(ensure_ascii=False, indent=2)
_COMPACT = json.JSONEncoder(ensure_ascii=False)
#: What ``ensure_ascii=False`` leaves raw that a terminal would act on (model/text.py).
_RAW_IN_JSON = re.compile(f"[\\x7f-\\x9f\u2028\u2029{BIDI_CONTROLS}]")
