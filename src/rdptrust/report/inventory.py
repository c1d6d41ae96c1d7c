"""Inventory documents: the per-host JSON line, CSV, the hosts JSON and the history.

``rdptrust.scan-host/2`` is one object per host per scan (``scan --jsonl`` prints it as
each host completes, ``report --jsonl`` from the inventory); ``rdptrust.hosts/2`` holds
each host's latest one, ``rdptrust.history/2`` all of one host's. The keys are described
in ``schemas/scan-host.schema.json`` and its siblings (and the README tables made from
them). The inventory keeps fewer facts than a probe sees, so its ``certificate``,
``negotiation``, ``protocols``, ``tls_versions``, ``ntlm`` and ``retrievals`` objects are
strict subsets of the probe's and the diagnosis' objects, under the same key names.

Version 2 (from 1): ``selected_protocol`` and ``negotiation_failure`` are
``negotiation.selected`` and ``negotiation.failure``; each ``protocols`` and
``tls_versions`` entry is an object with ``accepted``, as in ``rdptrust.probe/2``;
``chain`` (fingerprints) is ``chain_sha256`` and a retrieval's ``status`` is
``http_status``, as in ``rdptrust.diagnosis/2``; the certificate object gains
``public_key_sha256``. In ``hosts/2`` and ``history/2`` a count of observations is
``observation_count``, and in ``history/2`` each certificate span holds its
``certificate`` object instead of spreading its keys.

The terminal views of the same records are in :mod:`rdptrust.report.inventory_text`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TextIO

from rdptrust.model.records import (
    CertificateRecord,
    EventRecord,
    HostHistory,
    HostSummary,
    ObservationRecord,
)
from rdptrust.model.target import Target
from rdptrust.report.jsonform import dumps, optional_timestamp, timestamp, to_jsonable
from rdptrust.report.objects import ntlm_summary_document

HOST_SCHEMA = "rdptrust.scan-host/2"
HOSTS_SCHEMA = "rdptrust.hosts/2"
HISTORY_SCHEMA = "rdptrust.history/2"


def retrieval_summary_document(stored: Mapping[str, Any]) -> dict[str, Any]:
    """The inventory's retrieval object: the keys of the diagnosis' ``retrievals`` it
    keeps (null when an older version did not store one)."""
    return {
        "purpose": stored.get("purpose"),
        "url": stored.get("url"),
        "outcome": stored.get("outcome"),
        "elapsed_ms": stored.get("elapsed_ms"),
        "http_status": stored.get("status"),
        "counted": stored.get("counted"),
        "wait_s": stored.get("wait_s"),
        "modelled": stored.get("modelled"),
    }


def certificate_summary_document(cert: CertificateRecord | None) -> dict[str, Any] | None:
    """The inventory's ``certificate`` object: the keys of the certificate object it keeps
    (the dates and key are null when the certificate could not be decoded)."""
    if cert is None:
        return None
    return {
        "subject": cert.subject,
        "issuer": cert.issuer,
        "common_name": cert.common_name,
        "self_signed": cert.self_signed,
        "not_before": optional_timestamp(cert.not_before),
        "not_after": optional_timestamp(cert.not_after),
        "sha256": cert.sha256,
        "key_type": cert.key_type,
        "key_bits": cert.key_bits,
        "signature_hash": cert.signature_hash,
        "public_key_sha256": cert.public_key_sha256,
    }


def event_document(event: EventRecord) -> dict[str, Any]:
    return {
        "scan_id": event.scan_id,
        "target": str(Target(event.host, event.port)),
        "at": timestamp(event.at),
        "kind": event.kind,
        "change": event.change,
        "old_sha256": event.old_sha256,
        "new_sha256": event.new_sha256,
        "detail": event.detail,
        "site": event.site,
    }


def observation_document(record: ObservationRecord) -> dict[str, Any]:
    """Build the ``rdptrust.scan-host/2`` object for one observation."""
    return {
        "schema": HOST_SCHEMA,
        "scan_id": record.scan_id,
        "target": str(record.target),
        "host": record.host,
        "port": record.port,
        "observed_at": timestamp(record.observed_at),
        "ok": record.ok,
        "error": None
        if record.error_kind is None
        else {"kind": record.error_kind, "message": record.error_message or ""},
        "address": record.address,
        "negotiation": None
        if not record.ok and record.selected_protocol is None and record.negotiation_failure is None
        else {"selected": record.selected_protocol, "failure": record.negotiation_failure},
        "certificate": certificate_summary_document(record.certificate),
        "chain_sha256": list(record.chain),
        "tls": None
        if record.tls_version is None
        else {"version": record.tls_version, "cipher": record.tls_cipher},
        "protocols": {name: {"accepted": v} for name, v in record.protocols.items()},
        "tls_versions": {name: {"accepted": v} for name, v in record.tls_versions.items()},
        "timings_ms": {
            "connect": record.connect_ms,
            "x224": record.x224_ms,
            "tls": record.tls_ms,
            "total": record.total_ms,
        },
        "verdict": record.verdict,
        "predicted_stall_s": record.predicted_stall_s,
        "problems": [
            {"code": p.code, "severity": p.severity, "message": p.message} for p in record.problems
        ],
        "ntlm": ntlm_summary_document(record.ntlm),
        "retrievals": None
        if record.retrievals is None
        else [retrieval_summary_document(r) for r in record.retrievals],
        "events": [event_document(e) for e in record.events],
        "site": record.site,
    }


def hosts_document(hosts: Iterable[HostSummary]) -> dict[str, Any]:
    """``rdptrust.hosts/2``: each host, ``first_seen``, ``observation_count``, ``latest``."""
    return {"schema": HOSTS_SCHEMA, "hosts": [host_document(h) for h in hosts]}


def host_document(host: HostSummary) -> dict[str, Any]:
    """One entry of ``rdptrust.hosts/2``."""
    return {
        "target": str(Target(host.host, host.port)),
        "first_seen": timestamp(host.first_seen),
        "observation_count": host.observations,
        "latest": observation_document(host.latest),
    }


def write_hosts_json(hosts: Iterable[HostSummary], out: TextIO) -> int:
    """Write the :func:`hosts_document` of *hosts* to *out* as it reads them; returns how
    many it wrote.

    Each host is one compact line of the ``hosts`` list (``jq`` or ``json.load`` read the
    same document as :func:`hosts_document`'s), so memory does not grow with the fleet and
    each host costs one pass of the C JSON encoder.
    """
    out.write('{"schema": ' + json.dumps(HOSTS_SCHEMA) + ', "hosts": [')
    count = 0
    batch: list[str] = []
    for host in hosts:
        batch.append(("\n" if not count else ",\n") + dumps(host_document(host), pretty=False))
        count += 1
        if len(batch) >= 64:
            out.writelines(batch)
            batch.clear()
    out.writelines(batch)
    out.write("\n]}\n" if count else "]}\n")
    return count


def history_document(history: HostHistory) -> dict[str, Any]:
    """``rdptrust.history/2``: certificates with first/last seen, observations, events."""
    return {
        "schema": HISTORY_SCHEMA,
        "target": str(Target(history.host, history.port)),
        "first_seen": timestamp(history.first_seen),
        "certificates": [
            {
                "certificate": certificate_summary_document(span.certificate),
                "first_seen": timestamp(span.first_seen),
                "last_seen": timestamp(span.last_seen),
                "observation_count": span.observations,
            }
            for span in history.certificates
        ],
        "observations": [observation_document(o) for o in history.observations],
        "events": [event_document(e) for e in history.events],
    }


CSV_COLUMNS = (
    "scan_id",
    "target",
    "observed_at",
    "ok",
    "error_kind",
    "error_message",
    "selected_protocol",
    "tls_version",
    "sha256",
    "subject",
    "issuer",
    "self_signed",
    "not_after",
    "verdict",
    "predicted_stall_s",
    "total_ms",
    "site",
)


def _csv_cell(value: Any) -> str:
    text = "" if value is None else str(to_jsonable(value))
    # A cell a spreadsheet would read as a formula is quoted with a leading apostrophe.
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        text = "'" + text
    return text


def csv_rows(records: Iterable[ObservationRecord]) -> Iterator[str]:
    """Yield the CSV text (header first) for *records*, one line at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    yield buffer.getvalue()
    for r in records:
        buffer.seek(0)
        buffer.truncate()
        cert = r.certificate
        writer.writerow(
            [
                _csv_cell(v)
                for v in (
                    r.scan_id,
                    str(r.target),
                    r.observed_at,
                    r.ok,
                    r.error_kind,
                    r.error_message,
                    r.selected_protocol,
                    r.tls_version,
                    cert.sha256 if cert else None,
                    cert.subject if cert else None,
                    cert.issuer if cert else None,
                    cert.self_signed if cert else None,
                    cert.not_after if cert else None,
                    r.verdict,
                    r.predicted_stall_s,
                    r.total_ms,
                    r.site,
                )
            ]
        )
        yield buffer.getvalue()
