"""The one serializer: every time RFC 3339 UTC with Z, whatever zone it came in."""

from __future__ import annotations

import datetime as dt
import enum

import pytest

from rdptrust.model.problems import Problem, Severity
from rdptrust.report.jsonform import timestamp, to_jsonable

PLUS_TWO = dt.timezone(dt.timedelta(hours=2))


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC), "2026-05-01T12:00:00Z"),
        (dt.datetime(2026, 5, 1, 14, 0, tzinfo=PLUS_TWO), "2026-05-01T12:00:00Z"),
        (dt.datetime(2026, 5, 1, 12, 0), "2026-05-01T12:00:00Z"),  # naive: taken as UTC
        (dt.datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=dt.UTC), "2026-05-01T12:00:00.123Z"),
    ],
)
def test_timestamp_is_rfc3339_utc_with_z(value: dt.datetime, text: str) -> None:
    assert timestamp(value) == text
    assert to_jsonable({"at": value}) == {"at": text}


def test_values_become_json_types() -> None:
    class Flag(enum.IntEnum):
        ON = 1

    problem = Problem("a-code", Severity.WARNING, "text")
    assert to_jsonable((problem, Flag.ON, b"\x01\xff", None)) == [
        {"code": "a-code", "severity": "warning", "message": "text"},
        "ON",
        "01ff",
        None,
    ]
