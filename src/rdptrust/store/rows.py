"""The inventory's SQL, and the mapping between its rows and :mod:`rdptrust.model.records`.

Rows are read as :class:`sqlite3.Row` and every column is taken by name (the SELECTs
below name each one), so a column added to a query can never shift another. Times are
stored as ISO 8601 text in UTC with milliseconds and a ``Z``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from rdptrust.model.outcome import ProbeFailure
from rdptrust.model.probe import ENUMERATION_REQUESTS, ProbeResult
from rdptrust.model.records import (
    CertificateEntry,
    CertificateRecord,
    DiagnosisRecord,
    EventRecord,
    ObservationRecord,
    ProblemRecord,
    ScanInfo,
)
from rdptrust.model.wire import SecurityProtocol

INSERT_TARGET = "INSERT OR IGNORE INTO scan_targets (scan_id, seq, host, port) VALUES (?, ?, ?, ?)"
INSERT_CERTIFICATE = (
    "INSERT OR IGNORE INTO certificates (sha256, der, subject, issuer, common_name, "
    "self_signed, not_before, not_after, public_key_sha256, key_type, key_bits, "
    "signature_hash, first_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
#: The ids are handed out first, for a whole batch (store/recording.py).
INSERT_OBSERVATION = (
    "INSERT INTO observations (id, scan_id, host_id, observed_at, address, ok, error_kind, "
    "error_message, selected_protocol, negotiation_failure, sha256, chain, tls_version, "
    "tls_cipher, protocols, tls_versions, connect_ms, x224_ms, tls_ms, total_ms, verdict, "
    "predicted_stall_s, retrievals, ntlm, site) VALUES "
    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_PROBLEM = (
    "INSERT INTO problems (observation_id, code, severity, message) VALUES (?, ?, ?, ?)"
)
INSERT_EVENT = (
    "INSERT INTO events (id, host_id, scan_id, observation_id, at, kind, change, "
    "old_sha256, new_sha256, detail, site) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
SCAN_SELECT = (
    "SELECT s.id, s.started_at, s.finished_at, s.status, s.arguments, s.options, s.pid, "
    "s.target_count, s.site, s.machine, s.queued, (SELECT COUNT(*) FROM scan_targets t "
    "WHERE t.scan_id = s.id AND t.state = 'done') AS done_count FROM scans s"
)
#: A certificate's columns, each named ``cert_…`` (an observation has columns of the same
#: names).
CERT_COLUMNS = (
    "c.sha256 AS cert_sha256, c.subject AS cert_subject, c.issuer AS cert_issuer, "
    "c.common_name AS cert_common_name, c.self_signed AS cert_self_signed, "
    "c.not_before AS cert_not_before, c.not_after AS cert_not_after, "
    "c.public_key_sha256 AS cert_public_key_sha256, c.key_type AS cert_key_type, "
    "c.key_bits AS cert_key_bits, c.signature_hash AS cert_signature_hash, "
    "c.first_seen AS cert_first_seen"
)
CERTIFICATE_SELECT = f"SELECT {CERT_COLUMNS} FROM certificates c"
_OBSERVATION_COLUMNS = (
    "SELECT o.id, o.scan_id, h.host, h.port, o.observed_at, o.ok, o.error_kind, "
    "o.error_message, o.address, o.selected_protocol, o.negotiation_failure, o.chain, "
    "o.tls_version, o.tls_cipher, o.protocols, o.tls_versions, o.connect_ms, o.x224_ms, "
    "o.tls_ms, o.total_ms, o.verdict, o.predicted_stall_s, o.retrievals, o.ntlm, o.site, "
    f"{CERT_COLUMNS}"
)
_OBSERVATION_FROM = (
    " FROM observations o JOIN hosts h ON h.id = o.host_id "
    "LEFT JOIN certificates c ON c.sha256 = o.sha256"
)
#: Observations as queries and reports read them: with the certificate's DER, whose
#: SHA-1 is the thumbprint Windows shows.
OBSERVATION_SELECT = _OBSERVATION_COLUMNS + ", c.der AS cert_der" + _OBSERVATION_FROM
#: Observations without the certificate's DER (and so without the SHA-1), for what shows
#: no thumbprint (a record just made, the hosts listing): one blob read and hash less per
#: host.
SUMMARY_SELECT = _OBSERVATION_COLUMNS + _OBSERVATION_FROM
EVENT_SELECT = (
    "SELECT e.id, e.scan_id, h.host, h.port, e.at, e.kind, e.change, e.old_sha256, "
    "e.new_sha256, e.detail, e.site FROM events e JOIN hosts h ON h.id = e.host_id"
)
PROBLEM_SELECT = "SELECT code, severity, message FROM problems WHERE observation_id = ?"


T = TypeVar("T")

#: Values per ``IN (…)`` list (SQLite before 3.32 allows 999 parameters per statement).
IN_CHUNK = 500


def in_chunks(values: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    """*values* in slices of at most *size* (:data:`IN_CHUNK`), one ``IN (…)`` list each."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def marks(count: int) -> str:
    """The placeholders of an ``IN (…)`` list of *count* values."""
    return ", ".join("?" * count)


# --- times --------------------------------------------------------------------------


def now_text() -> str:
    """The current time, as stored."""
    return time_text(dt.datetime.now(dt.UTC))


def time_text(value: dt.datetime) -> str:
    """*value* as stored: ISO 8601, UTC, milliseconds, ``Z``."""
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> dt.datetime:
    """Read a timestamp as stored (ISO 8601, UTC: ``…Z``, or ``…+00:00`` as written
    before)."""
    return dt.datetime.fromisoformat(text)


def _opt_float(value: float | None) -> float | None:
    return float(value) if value is not None else None


def _opt_time(text: str | None) -> dt.datetime | None:
    return parse_time(text) if text else None


def _opt_time_text(value: dt.datetime | None) -> str | None:
    return time_text(value) if value is not None else None


# --- values going in ----------------------------------------------------------------


def sha256_hex(der: bytes) -> str:
    """How the inventory names a certificate: the SHA-256 of its DER, lowercase hex."""
    return hashlib.sha256(der).hexdigest()


def protocol_name(value: SecurityProtocol | None) -> str | None:
    """The stored name of a selected protocol (``RDP``, ``SSL``, ``HYBRID|…``)."""
    if value is None:
        return None
    return _protocol_name(int(value))


@functools.lru_cache(maxsize=64)
def _protocol_name(value: int) -> str:
    # a fleet selects a handful of values: each is named once
    if value == SecurityProtocol.RDP:
        return "RDP"
    names = [p.name or "" for p in SecurityProtocol if p and (value & p) == p]
    return "|".join(names) or hex(value)


def _protocols(probe: ProbeResult) -> dict[str, bool | None]:
    if not probe.protocols:
        return {}
    found = {p.name: p.accepted for p in probe.protocols}
    return {name: found.get(name) for name in ENUMERATION_REQUESTS if name in found}


def _ntlm_json(probe: ProbeResult) -> str | None:
    info = probe.ntlm
    if info is None or not info.ok:
        return None
    version = info.os_version
    return json.dumps(
        {
            "netbios_computer_name": info.netbios_computer_name,
            "netbios_domain_name": info.netbios_domain_name,
            "dns_computer_name": info.dns_computer_name,
            "dns_domain_name": info.dns_domain_name,
            "dns_tree_name": info.dns_tree_name,
            "os_version": (f"{version.major}.{version.minor}.{version.build}" if version else None),
            "server_time": info.server_time.isoformat() if info.server_time else None,
        }
    )


def observation_params(
    scan_id: int,
    host_id: int,
    at: str,
    probe: ProbeResult | None,
    error: ProbeFailure | None,
    diagnosis: DiagnosisRecord | None,
    site: str | None = None,
) -> tuple[Any, ...]:
    """The parameters of :data:`INSERT_OBSERVATION` after the id for what a scan saw of
    one host."""
    outcome = (
        int(error is None),
        error.kind if error is not None else None,
        error.message if error is not None else None,
    )
    judged = (
        (
            diagnosis.verdict,
            diagnosis.predicted_stall_s,
            (
                json.dumps([dict(r) for r in diagnosis.retrievals])
                if diagnosis.retrievals is not None
                else None
            ),
        )
        if diagnosis is not None
        else (None, None, None)
    )
    if probe is None:
        # protocol, negotiation failure, leaf, chain, TLS, enumerations, timings
        unseen = (None, None, None, "[]", None, None, "{}", "{}", None, None, None, None)
        return (scan_id, host_id, at, None, *outcome, *unseen, *judged, None, site)
    neg = probe.negotiation
    tls = probe.tls
    timings = probe.timings
    return (
        scan_id,
        host_id,
        at,
        probe.address,
        *outcome,
        protocol_name(neg.selected) if neg is not None else None,
        neg.failure if neg is not None else None,
        sha256_hex(probe.leaf) if probe.leaf else None,
        json.dumps([sha256_hex(d) for d in probe.chain]),
        tls.version if tls is not None else None,
        tls.cipher if tls is not None else None,
        json.dumps(_protocols(probe)) if probe.protocols else "{}",
        json.dumps({v.version: v.accepted for v in probe.tls_versions})
        if probe.tls_versions
        else "{}",
        timings.connect_ms,
        timings.x224_ms,
        timings.tls_ms,
        timings.total_ms,
        *judged,
        _ntlm_json(probe),
        site,
    )


def certificate_params(
    sha256: str, der: bytes, entry: CertificateEntry, at: str
) -> tuple[Any, ...]:
    """The parameters of :data:`INSERT_CERTIFICATE` for one certificate."""
    return (
        sha256,
        der,
        entry.subject,
        entry.issuer,
        entry.common_name,
        int(entry.self_signed),
        _opt_time_text(entry.not_before),
        _opt_time_text(entry.not_after),
        entry.public_key_sha256,
        entry.key_type,
        entry.key_bits,
        entry.signature_hash,
        at,
    )


# --- values coming out --------------------------------------------------------------


def scan_info(row: sqlite3.Row) -> ScanInfo:
    return ScanInfo(
        id=row["id"],
        started_at=parse_time(row["started_at"]),
        finished_at=_opt_time(row["finished_at"]),
        status=row["status"],
        arguments=tuple(json.loads(row["arguments"])),
        options=json.loads(row["options"]),
        pid=row["pid"],
        target_count=row["target_count"],
        done_count=row["done_count"],
        site=row["site"],
        machine=row["machine"],
        queued=bool(row["queued"]),
    )


def event_record(row: sqlite3.Row) -> EventRecord:
    return EventRecord(
        id=row["id"],
        scan_id=row["scan_id"],
        host=row["host"],
        port=row["port"],
        at=parse_time(row["at"]),
        kind=row["kind"],
        change=row["change"],
        old_sha256=row["old_sha256"],
        new_sha256=row["new_sha256"],
        detail=row["detail"],
        site=row["site"],
    )


def problem_record(row: sqlite3.Row) -> ProblemRecord:
    return ProblemRecord(code=row["code"], severity=row["severity"], message=row["message"])


def _named(row: sqlite3.Row) -> dict[str, Any]:
    # Named lookups on a wide sqlite3.Row cost about 1 µs each; a dict of it, much less.
    return dict(zip(row.keys(), row, strict=True))


def certificate_record(row: sqlite3.Row) -> CertificateRecord | None:
    """The certificate in a row with :data:`CERT_COLUMNS`; None when it has none."""
    return _certificate(_named(row))


def select_certificates(db: Any, sha256s: Iterable[str]) -> dict[str, CertificateRecord]:
    """The certificates of these SHA-256s that *db* holds, by SHA-256: one query per
    :data:`IN_CHUNK` of them."""
    found: dict[str, CertificateRecord] = {}
    for part in in_chunks(sorted(set(sha256s))):
        for row in db.execute(
            CERTIFICATE_SELECT + f" WHERE c.sha256 IN ({marks(len(part))})", part
        ):
            record = certificate_record(row)
            if record is not None:
                found[record.sha256] = record
    return found


def _certificate(row: Mapping[str, Any]) -> CertificateRecord | None:
    sha256 = row["cert_sha256"]
    if sha256 is None:
        return None
    return CertificateRecord(
        sha256=sha256,
        subject=row["cert_subject"],
        issuer=row["cert_issuer"],
        common_name=row["cert_common_name"],
        self_signed=bool(row["cert_self_signed"]),
        not_before=_opt_time(row["cert_not_before"]),
        not_after=_opt_time(row["cert_not_after"]),
        public_key_sha256=row["cert_public_key_sha256"],
        key_type=row["cert_key_type"],
        key_bits=row["cert_key_bits"],
        signature_hash=row["cert_signature_hash"],
        first_seen=parse_time(row["cert_first_seen"]),
        sha1=hashlib.sha1(row["cert_der"]).hexdigest() if row.get("cert_der") else None,
    )


def recorded_certificate(
    sha256: str, entry: CertificateEntry, first_seen: dt.datetime
) -> CertificateRecord:
    """The certificate record of a leaf just stored from *entry* (as a read-back of it
    with :data:`SUMMARY_SELECT` gives it: without the SHA-1)."""
    fields = {name: getattr(entry, name) for name in _ENTRY_FIELDS}
    # the dates as the table keeps them (milliseconds)
    fields["not_before"] = _stored_time(entry.not_before)
    fields["not_after"] = _stored_time(entry.not_after)
    return CertificateRecord(sha256=sha256, first_seen=first_seen, **fields)


#: The fields of a :class:`CertificateEntry`, in order.
_ENTRY_FIELDS = tuple(f.name for f in dataclasses.fields(CertificateEntry))


def _stored_time(value: dt.datetime | None) -> dt.datetime | None:
    """*value* as :func:`parse_time` reads back what :func:`time_text` wrote of it: UTC,
    cut to milliseconds."""
    if value is None:
        return None
    utc = value.astimezone(dt.UTC)
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)


#: The columns of :data:`INSERT_OBSERVATION` after ``id, scan_id, host_id``, in order.
_INSERTED = (
    "observed_at",
    "address",
    "ok",
    "error_kind",
    "error_message",
    "selected_protocol",
    "negotiation_failure",
    "sha256",
    "chain",
    "tls_version",
    "tls_cipher",
    "protocols",
    "tls_versions",
    "connect_ms",
    "x224_ms",
    "tls_ms",
    "total_ms",
    "verdict",
    "predicted_stall_s",
    "retrievals",
    "ntlm",
    "site",
)


def inserted_observation(
    observation_id: int,
    host: str,
    port: int,
    params: tuple[Any, ...],
    certificate: CertificateRecord | None,
    problems: tuple[ProblemRecord, ...],
    events: tuple[EventRecord, ...],
) -> ObservationRecord:
    """The observation just inserted with *params* (:func:`observation_params`), as
    reading it back would give it, without reading it back."""
    row = dict(zip(_INSERTED, params[2:], strict=True))
    row.update(id=observation_id, scan_id=params[0], host=host, port=port)
    return _observation(row, certificate, problems, events)


def observation_record(
    found: sqlite3.Row, problems: tuple[ProblemRecord, ...], events: tuple[EventRecord, ...]
) -> ObservationRecord:
    """The observation in a row of :data:`OBSERVATION_SELECT`."""
    row = _named(found)
    return _observation(row, _certificate(row), problems, events)


def _json_tuple(text: str) -> tuple[Any, ...]:
    # most columns of a fleet hold the empty value: no parse for it
    return () if text == "[]" else tuple(json.loads(text))


def _json_mapping(text: str) -> dict[str, Any]:
    return {} if text == "{}" else dict(json.loads(text))


def _observation(
    row: Mapping[str, Any],
    certificate: CertificateRecord | None,
    problems: tuple[ProblemRecord, ...],
    events: tuple[EventRecord, ...],
) -> ObservationRecord:
    retrievals = row["retrievals"]
    ntlm = row["ntlm"]
    return ObservationRecord(
        id=row["id"],
        scan_id=row["scan_id"],
        host=row["host"],
        port=row["port"],
        observed_at=parse_time(row["observed_at"]),
        ok=bool(row["ok"]),
        error_kind=row["error_kind"],
        error_message=row["error_message"],
        address=row["address"],
        selected_protocol=row["selected_protocol"],
        negotiation_failure=row["negotiation_failure"],
        certificate=certificate,
        chain=_json_tuple(row["chain"]),
        tls_version=row["tls_version"],
        tls_cipher=row["tls_cipher"],
        protocols=_json_mapping(row["protocols"]),
        tls_versions=_json_mapping(row["tls_versions"]),
        connect_ms=row["connect_ms"],
        x224_ms=row["x224_ms"],
        tls_ms=row["tls_ms"],
        total_ms=row["total_ms"],
        verdict=row["verdict"],
        predicted_stall_s=_opt_float(row["predicted_stall_s"]),
        retrievals=_json_tuple(retrievals) if retrievals is not None else None,
        problems=problems,
        events=events,
        ntlm=json.loads(ntlm) if ntlm else None,
        site=row["site"],
    )
