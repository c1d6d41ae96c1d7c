"""Recording a batch of scanned hosts with a few statements, not a few per host.

A scan stages what it saw of each host (:class:`Staged`) and writes them in batches
(:func:`write_batch`, inside one transaction of :class:`~rdptrust.store.inventory.Inventory`).
A batch is a fixed number of statements whatever its size, each an ``executemany`` or a
query over the whole batch: the targets marked done, the hosts looked up and the new
ones inserted, the previous observations read (for the events), the new certificates
inserted, then the observations, problems and events with ids handed out in advance
(:class:`IdSource`). On SQLite that is fewer calls into the library per host; on
PostgreSQL, whose ``executemany`` is pipelined, it is fewer round trips to the server,
which is what bounds a scanner there.

Nothing is read back: each :class:`~rdptrust.model.records.ObservationRecord` is built
from what was written (:func:`~rdptrust.store.rows.inserted_observation`). A target
another worker recorded first (a queued scan whose lease passed) is left out and
reported in ``Flushed.taken`` (:class:`~rdptrust.model.records.Flushed`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from rdptrust.errors import StoreError
from rdptrust.model.outcome import ProbeFailure
from rdptrust.model.probe import ProbeResult
from rdptrust.model.records import (
    CertificateEntry,
    CertificateRecord,
    DiagnosisRecord,
    EventRecord,
    Flushed,
    ObservationRecord,
    ProblemRecord,
)
from rdptrust.model.target import Target
from rdptrust.store.events import ChangeFacts, new_events
from rdptrust.store.rows import (
    IN_CHUNK,
    INSERT_CERTIFICATE,
    INSERT_EVENT,
    INSERT_OBSERVATION,
    INSERT_PROBLEM,
    certificate_params,
    in_chunks,
    inserted_observation,
    marks,
    observation_params,
    parse_time,
    recorded_certificate,
    select_certificates,
)

#: Leaf certificates a connection remembers as stored (memory stays flat for any fleet).
HELD_CERTIFICATES = 4096


@dataclass(frozen=True)
class Staged:
    """What a scan saw of one target, waiting to be written (see ``Inventory.stage``)."""

    scan_id: int
    seq: int
    target: Target
    probe: ProbeResult | None
    error: ProbeFailure | None
    diagnosis: DiagnosisRecord | None
    certificate: CertificateEntry | None
    problems: tuple[ProblemRecord, ...]
    leaf: bytes | None
    leaf_sha: str | None
    at: str
    site: str | None


#: ``(table, count)`` -> that many new ids of the table, ascending.
IdSource = Callable[[str, int], list[int]]


def sqlite_ids(db: Any) -> IdSource:
    """Ids after the table's largest, as SQLite would choose them (the write transaction
    holds the database, so no other writer takes them meanwhile)."""

    def take(table: str, count: int) -> list[int]:
        top = db.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}").fetchone()[0]
        return list(range(int(top) + 1, int(top) + 1 + count))

    return take


def postgres_ids(db: Any) -> IdSource:
    """Ids from the table's identity sequence, in one round trip (shared safely by every
    scanner of the database)."""

    def take(table: str, count: int) -> list[int]:
        rows = db.execute(
            f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) AS id "
            "FROM generate_series(1, ?)",
            (count,),
        ).fetchall()
        return sorted(int(r[0]) for r in rows)

    return take


def _groups(items: Sequence[Staged]) -> Iterator[list[Staged]]:
    """*items* in order, split wherever a host recurs for the same site (its second
    observation's events follow from its first)."""
    group: list[Staged] = []
    seen: set[tuple[str, int, str | None]] = set()
    for item in items:
        key = (item.target.host, item.target.port, item.site)
        if key in seen:
            yield group
            group, seen = [], set()
        group.append(item)
        seen.add(key)
    if group:
        yield group


def write_batch(
    db: Any,
    items: Sequence[Staged],
    *,
    where: str,
    held: dict[str, CertificateRecord],
    ids: IdSource,
    lock_rows: bool,
) -> Flushed:
    """Write *items* in the open transaction of *db*; what was written.

    *held* maps the leaf certificates this connection knows are stored (updated here).
    *lock_rows* locks the targets' rows while they are checked (PostgreSQL, where
    other workers write at the same time). A target that is not one of its scan's is a
    StoreError naming *where*; a leaf with no certificate entry that the inventory does
    not hold is a ValueError; either leaves the transaction for the caller to roll back.
    """
    records: list[ObservationRecord] = []
    taken: list[tuple[int, int]] = []
    for group in _groups(items):
        live = _mark_done(db, group, where=where, taken=taken, lock_rows=lock_rows)
        if live:
            records.extend(_write_group(db, live, held=held, ids=ids))
    return Flushed(tuple(records), tuple(taken))


def _mark_done(
    db: Any,
    group: Sequence[Staged],
    *,
    where: str,
    taken: list[tuple[int, int]],
    lock_rows: bool,
) -> list[Staged]:
    """Mark the group's pending targets done; the items whose target that was."""
    states: dict[tuple[int, int], str] = {}
    for scan_id in dict.fromkeys(i.scan_id for i in group):
        seqs = [i.seq for i in group if i.scan_id == scan_id]
        for part in in_chunks(seqs):
            rows = db.execute(
                "SELECT seq, state FROM scan_targets WHERE scan_id = ? "
                f"AND seq IN ({marks(len(part))}) ORDER BY seq"
                + (" FOR UPDATE" if lock_rows else ""),
                (scan_id, *part),
            ).fetchall()
            states.update({(scan_id, int(r["seq"])): r["state"] for r in rows})
    live: list[Staged] = []
    for item in group:
        state = states.get((item.scan_id, item.seq))
        if state is None:
            raise StoreError(
                f"inventory {where}: {item.target} is not a target of scan {item.scan_id}"
            )
        if state == "pending":
            live.append(item)
        else:
            taken.append((item.scan_id, item.seq))
    db.executemany(
        "UPDATE scan_targets SET state = 'done' WHERE scan_id = ? AND seq = ?",
        [(i.scan_id, i.seq) for i in live],
    )
    return live


def _host_ids(db: Any, items: Sequence[Staged]) -> tuple[dict[tuple[str, int], int], set[int]]:
    """Each target's hosts row id (inserting the new ones), and the ids inserted now."""
    wanted = list(dict.fromkeys((i.target.host, i.target.port) for i in items))

    def look_up(keys: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        # Each (host, port) through the unique index: a name shared by many ports (a
        # gateway, NAT, a lab) must not make every batch read all of that name's rows.
        found: dict[tuple[str, int], int] = {}
        for part in in_chunks(keys, IN_CHUNK // 2):
            pairs = ", ".join(["(?, ?)"] * len(part))
            for row in db.execute(
                f"SELECT h.id, h.host, h.port FROM (VALUES {pairs}) AS wanted JOIN hosts h"
                " ON h.host = wanted.column1 AND h.port = wanted.column2",
                [value for key in part for value in key],
            ):
                found[(row["host"], int(row["port"]))] = int(row["id"])
        return found

    known = look_up(wanted)
    missing = [key for key in wanted if key not in known]
    if not missing:
        return known, set()
    first = {key: i.at for i in items if (key := (i.target.host, i.target.port)) in missing}
    db.executemany(
        "INSERT OR IGNORE INTO hosts (host, port, first_seen) VALUES (?, ?, ?)",
        [(host, port, first[(host, port)]) for host, port in missing],
    )
    # (one that another scanner of a shared inventory inserted meanwhile is found too)
    added = look_up(missing)
    return {**known, **added}, set(added.values())


def _previous(
    db: Any, host_ids: Sequence[int], site: str | None
) -> dict[int, tuple[bool | None, str | None]]:
    """Each host's newest reachability and newest leaf seen from *site* (observations
    from before sites existed count as every site's)."""
    found: dict[int, tuple[bool | None, str | None]] = {}
    here = site or ""
    for part in in_chunks(list(host_ids)):
        rows = db.execute(
            "SELECT h.id AS host_id, (SELECT o.ok FROM observations o WHERE o.host_id = h.id "
            "AND COALESCE(o.site, ?) = ? ORDER BY o.id DESC LIMIT 1) AS ok, "
            "(SELECT o.sha256 FROM observations o WHERE o.host_id = h.id "
            "AND o.sha256 IS NOT NULL AND COALESCE(o.site, ?) = ? ORDER BY o.id DESC LIMIT 1) "
            f"AS sha256 FROM hosts h WHERE h.id IN ({marks(len(part))})",
            (here, here, here, here, *part),
        ).fetchall()
        for row in rows:
            ok = None if row["ok"] is None else bool(row["ok"])
            found[int(row["host_id"])] = (ok, row["sha256"])
    return found


def _store_certificates(
    db: Any, items: Sequence[Staged], held: dict[str, CertificateRecord]
) -> None:
    """Insert the leaves the inventory does not hold yet; *held* then has every leaf."""
    if len(held) >= HELD_CERTIFICATES:
        held.clear()
    wanted = list(dict.fromkeys(i.leaf_sha for i in items if i.leaf_sha and i.leaf_sha not in held))
    if not wanted:
        return
    held.update(select_certificates(db, wanted))
    new: dict[str, Staged] = {}
    for item in items:
        sha = item.leaf_sha
        if sha is None or sha in held or sha in new:
            continue
        if item.certificate is None or item.leaf is None:
            raise ValueError(
                f"record of {item.target} needs the certificate entry of its leaf, "
                "which the inventory does not hold"
            )
        new[sha] = item
    if not new:
        return
    db.executemany(
        INSERT_CERTIFICATE,
        [
            certificate_params(sha, i.leaf or b"", i.certificate, i.at)
            for sha, i in new.items()
            if i.certificate
        ],
    )
    for sha, item in new.items():
        if item.certificate is not None:
            held[sha] = recorded_certificate(sha, item.certificate, parse_time(item.at))


def _change_facts(db: Any, shas: set[str]) -> ChangeFacts:
    facts: ChangeFacts = {}
    for part in in_chunks(sorted(shas)):
        for row in db.execute(
            "SELECT sha256, subject, self_signed, public_key_sha256 FROM certificates "
            f"WHERE sha256 IN ({marks(len(part))})",
            part,
        ):
            facts[row["sha256"]] = {
                "subject": row["subject"],
                "self_signed": row["self_signed"],
                "public_key_sha256": row["public_key_sha256"],
            }
    return facts


def _write_group(
    db: Any, items: Sequence[Staged], *, held: dict[str, CertificateRecord], ids: IdSource
) -> list[ObservationRecord]:
    """The observations, problems and events of *items* (no host twice for one site)."""
    host_ids, new_hosts = _host_ids(db, items)
    previous: dict[int, tuple[bool | None, str | None]] = {}
    for site in dict.fromkeys(i.site for i in items):
        seen = [
            host_ids[(i.target.host, i.target.port)]
            for i in items
            if i.site == site and host_ids[(i.target.host, i.target.port)] not in new_hosts
        ]
        if seen:
            previous.update(_previous(db, seen, site))
    _store_certificates(db, items, held)
    observation_ids = ids("observations", len(items))
    rows: list[tuple[Any, ...]] = []
    problems: list[tuple[Any, ...]] = []
    for oid, item in zip(observation_ids, items, strict=True):
        host_id = host_ids[(item.target.host, item.target.port)]
        params = observation_params(
            item.scan_id, host_id, item.at, item.probe, item.error, item.diagnosis, item.site
        )
        rows.append(params)
        problems.extend((oid, p.code, p.severity, p.message) for p in item.problems)
    db.executemany(
        INSERT_OBSERVATION,
        [(oid, *r) for oid, r in zip(observation_ids, rows, strict=True)],
    )
    if problems:
        db.executemany(INSERT_PROBLEM, problems)
    # the events, from each host's previous observation
    changes = {
        sha
        for item in items
        for sha in (
            previous.get(host_ids[(item.target.host, item.target.port)], (None, None))[1],
            item.leaf_sha,
        )
        if sha is not None
    }
    changed = [
        i
        for i in items
        if i.leaf_sha is not None
        and previous.get(host_ids[(i.target.host, i.target.port)], (None, None))[1]
        not in (None, i.leaf_sha)
    ]
    facts = _change_facts(db, changes) if changed else {}
    planned = []
    for oid, item in zip(observation_ids, items, strict=True):
        host_id = host_ids[(item.target.host, item.target.port)]
        was_ok, old_sha = previous.get(host_id, (None, None))
        for event in new_events(
            facts,
            new_host=was_ok is None,
            was_ok=was_ok,
            now_ok=item.error is None,
            old_sha=old_sha,
            new_sha=item.leaf_sha,
            error=item.error,
        ):
            planned.append((oid, host_id, item, event))
    event_ids = ids("events", len(planned)) if planned else []
    if planned:
        db.executemany(
            INSERT_EVENT,
            [
                (
                    eid,
                    host_id,
                    item.scan_id,
                    oid,
                    item.at,
                    e.kind,
                    e.change,
                    e.old_sha256,
                    e.new_sha256,
                    e.detail,
                    item.site,
                )
                for eid, (oid, host_id, item, e) in zip(event_ids, planned, strict=True)
            ],
        )
    events: dict[int, list[EventRecord]] = {}
    for eid, (oid, _, item, e) in zip(event_ids, planned, strict=True):
        events.setdefault(oid, []).append(
            EventRecord(
                eid,
                item.scan_id,
                item.target.host,
                item.target.port,
                parse_time(item.at),
                e.kind,
                e.change,
                e.old_sha256,
                e.new_sha256,
                e.detail,
                item.site,
            )
        )
    return [
        inserted_observation(
            oid,
            item.target.host,
            item.target.port,
            params,
            held.get(item.leaf_sha) if item.leaf_sha is not None else None,
            item.problems,
            tuple(events.get(oid, ())),
        )
        for oid, item, params in zip(observation_ids, items, rows, strict=True)
    ]
