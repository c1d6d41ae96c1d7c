"""The inventory's record values: the little they compute themselves."""

from __future__ import annotations

import datetime as dt

from rdptrust.model.records import CertificateEntry, ObservationRecord
from rdptrust.model.target import Target


def test_an_undecodable_certificate_entry_says_why_and_holds_no_facts() -> None:
    entry = CertificateEntry.undecodable("bad DER at offset 3")
    assert entry.subject == "(undecodable certificate: bad DER at offset 3)"
    assert entry.issuer == ""
    assert not entry.self_signed
    assert (entry.not_before, entry.not_after, entry.common_name) == (None, None, None)
    assert (entry.public_key_sha256, entry.key_type, entry.key_bits) == (None, None, None)
    assert entry.signature_hash is None


def test_an_observation_names_its_target() -> None:
    at = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
    record = ObservationRecord(
        id=1,
        scan_id=1,
        host="fd00::5",
        port=3390,
        observed_at=at,
        ok=False,
        error_kind="connect",
        error_message="refused",
        address=None,
        selected_protocol=None,
        negotiation_failure=None,
        certificate=None,
        chain=(),
        tls_version=None,
        tls_cipher=None,
        protocols={},
        tls_versions={},
        connect_ms=None,
        x224_ms=None,
        tls_ms=None,
        total_ms=None,
        verdict=None,
        predicted_stall_s=None,
        retrievals=None,
    )
    assert record.target == Target("fd00::5", 3390)
    assert str(record.target) == "[fd00::5]:3390"
