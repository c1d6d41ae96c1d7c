"""The certificate record a scan keeps of a leaf it just stored is what reading the row
back would give: the dates cut to the milliseconds the table keeps, in UTC."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from rdptrust.model.records import CertificateEntry
from rdptrust.store.rows import parse_time, recorded_certificate, time_text

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))

TIMES = [
    dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    dt.datetime(2026, 1, 1, 1, 2, 3, 999, tzinfo=dt.UTC),
    dt.datetime(2026, 1, 1, 1, 2, 3, 1000, tzinfo=dt.UTC),
    dt.datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
    dt.datetime(2026, 6, 30, 2, 0, 0, 123456, tzinfo=IST),
    dt.datetime(2026, 6, 30, 2, 0, 0, 654321),  # naive: local time, as time_text takes it
]


def _entry(not_before: dt.datetime | None, not_after: dt.datetime | None) -> CertificateEntry:
    return CertificateEntry(
        subject="CN=WIN-LAB01",
        issuer="CN=WIN-LAB01",
        common_name="WIN-LAB01",
        self_signed=True,
        not_before=not_before,
        not_after=not_after,
        public_key_sha256="ab" * 32,
        key_type="RSA",
        key_bits=2048,
        signature_hash="sha256",
    )


@pytest.mark.parametrize("value", TIMES)
def test_recorded_dates_are_the_stored_dates_read_back(value: dt.datetime) -> None:
    first_seen = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
    record = recorded_certificate("cd" * 32, _entry(value, value), first_seen)
    stored = parse_time(time_text(value))
    assert record.not_before == stored
    assert record.not_after == stored
    assert record.not_before is not None
    assert record.not_before.tzinfo == dt.UTC
    assert record.not_before.microsecond % 1000 == 0


def test_every_entry_field_is_carried_into_the_record() -> None:
    entry = _entry(None, None)
    record = recorded_certificate("cd" * 32, entry, dt.datetime(2026, 12, 7, tzinfo=dt.UTC))
    for field in dataclasses.fields(entry):
        assert getattr(record, field.name) == getattr(entry, field.name), field.name
    assert record.sha256 == "cd" * 32
    assert record.first_seen == dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
