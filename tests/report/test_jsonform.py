"""The one serializer: every time RFC 3339 UTC with Z, whatever zone it came in, and
nothing raw in the text that a terminal would act on."""

from __future__ import annotations

import datetime as dt
import enum
import json

import pytest

from rdptrust.model.problems import Problem, Severity
from rdptrust.report.jsonform import dumps, timestamp, to_jsonable

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


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("WIN-\x7f", "WIN-\\u007f"),  # DEL, the one ASCII character JSON leaves raw
        ("a\x9b31mb", "a\\u009b31mb"),  # C1 CSI
        ("evil\u202etxt.exe", "evil\\u202etxt.exe"),  # bidi override
        ("line\u2028break", "line\\u2028break"),
    ],
)
def test_dumps_escapes_what_a_terminal_acts_on(value: str, escaped: str) -> None:
    for pretty in (True, False):
        text = dumps({"subject": value, "name": "Zürich"}, pretty=pretty)
        assert escaped in text
        assert value not in text
        assert "Zürich" in text  # letters stay UTF-8
        assert json.loads(text) == {"subject": value, "name": "Zürich"}
        alone = dumps({"subject": value}, pretty=pretty)  # no other non-ASCII letter
        assert escaped in alone
        assert value not in alone


def test_dumps_of_plain_ascii_is_the_json_encoders_text() -> None:
    document = {"subject": "CN=WIN-HOST", "n": [1, None, True], "s": 'q"\\\n'}
    assert dumps(document, pretty=False) == json.dumps(document)
    assert dumps(document) == json.dumps(document, indent=2)
