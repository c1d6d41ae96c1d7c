"""The inventory database: migrations, atomic recording, events, and failures of the file."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from fixtures.inventory import one_target_scan, record, served, stage
from rdptrust.engine.leaves import LeafReader
from rdptrust.engine.scan import stage_result
from rdptrust.errors import StoreError, UsageError
from rdptrust.lab.certs import CertKind, make_host_credentials, windows_self_signed
from rdptrust.model.outcome import ProbeFailure
from rdptrust.model.probe import ProtocolSupport, TlsVersionSupport
from rdptrust.model.records import CertificateEntry, DiagnosisRecord, HostResult, ProblemRecord
from rdptrust.model.target import Target
from rdptrust.model.wire import SecurityProtocol
from rdptrust.store.inventory import Inventory
from rdptrust.store.schema import SCHEMA_VERSION

TABLES = {
    "schema_migrations",
    "scans",
    "scan_targets",
    "hosts",
    "certificates",
    "observations",
    "problems",
    "events",
}


def test_migrations_create_every_table_in_an_empty_file(tmp_path: Path) -> None:
    # Given an empty file (as a user might touch one)
    path = tmp_path / "inv.sqlite3"
    path.touch()
    # When it is opened as an inventory
    with Inventory.open(path) as inventory:
        assert inventory.schema_version == SCHEMA_VERSION
    # Then every table exists, WAL is on and each migration is recorded once
    db = sqlite3.connect(path)
    try:
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert names >= TABLES
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        versions = [r[0] for r in db.execute("SELECT version FROM schema_migrations")]
        assert versions == list(range(1, SCHEMA_VERSION + 1))
    finally:
        db.close()
    # And opening again applies nothing twice
    with Inventory.open(path) as inventory:
        assert inventory.schema_version == SCHEMA_VERSION


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "inv.sqlite3"
    Inventory.open(path).close()
    db = sqlite3.connect(path)
    db.execute("INSERT INTO schema_migrations VALUES (?, 'later')", (SCHEMA_VERSION + 1,))
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer than this rdptrust"):
        Inventory.open(path)


def test_missing_parent_directory_is_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "inv.sqlite3"
    Inventory.open(path).close()
    assert path.is_file()


def test_corrupt_file_gives_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "inv.sqlite3"
    path.write_bytes(b"this is not a database at all\n" * 200)
    with pytest.raises(StoreError, match="corrupt or not an rdptrust inventory") as caught:
        Inventory.open(path)
    assert "\n" not in str(caught.value)


def test_bad_target_file_leaves_no_scan_behind(inventory_db: str) -> None:
    def targets() -> object:
        yield Target("127.0.0.1", 1)
        raise UsageError("targets.txt:2: bad")

    with Inventory.open(inventory_db) as inventory:
        with pytest.raises(UsageError):
            inventory.create_scan([], {}, targets())  # type: ignore[arg-type]
        assert inventory.scans() == []


def test_duplicate_targets_are_stored_once(inventory_db: str) -> None:
    with Inventory.open(inventory_db) as inventory:
        target = Target("127.0.0.1", 3389)
        scan = inventory.create_scan([], {}, [target, target, Target("127.0.0.1", 3390)])
        assert scan.target_count == 2
        assert [t for _, t in inventory.pending_targets(scan.id)] == [
            target,
            Target("127.0.0.1", 3390),
        ]


def test_record_marks_done_and_refuses_a_second_record(inventory_db: str) -> None:
    with Inventory.open(inventory_db) as inventory:
        target = Target("127.0.0.1", 3389)
        scan_id = one_target_scan(inventory, target)
        credentials = windows_self_signed("WIN-A")
        recorded = record(inventory, scan_id, 0, target, served(target, credentials))
        assert recorded.ok
        assert recorded.certificate is not None
        assert recorded.certificate.sha256 == credentials.sha256
        assert recorded.certificate.self_signed
        assert [e.kind for e in recorded.events] == ["first-seen"]
        assert inventory.target_states(scan_id) == {"pending": 0, "done": 1}
        with pytest.raises(StoreError, match="already recorded"):
            record(inventory, scan_id, 0, target, served(target, credentials))
        assert len(list(inventory.observations(scan_id=scan_id))) == 1


def test_staged_records_are_durable_only_once_flushed(inventory_db: str) -> None:
    targets = [Target("127.0.0.1", 3389), Target("127.0.0.2", 3389), Target("127.0.0.3", 3389)]
    credentials = windows_self_signed("WIN-A")
    with Inventory.open(inventory_db) as inventory:
        scan_id = inventory.create_scan(["x"], {}, targets).id
        # Given two records staged, and the first of them staged a second time
        for seq in (0, 1, 0):
            stage(inventory, scan_id, seq, targets[seq], served(targets[seq], credentials))
        assert inventory.staged == 3
        # Then nothing is stored yet
        assert len(list(inventory.observations(scan_id=scan_id))) == 0
        assert inventory.target_states(scan_id) == {"pending": 3, "done": 0}
        # When they are flushed, the two are stored and the repeat is left out as taken
        flushed = inventory.flush()
        assert [(r.host, r.ok) for r in flushed.records] == [
            ("127.0.0.1", True),
            ("127.0.0.2", True),
        ]
        assert flushed.taken == ((scan_id, 0),)
        assert inventory.staged == 0
        assert len(list(inventory.observations(scan_id=scan_id))) == 2
        # And a batch with a target that is not the scan's stores nothing of the batch
        stage(inventory, scan_id, 2, targets[2], served(targets[2], credentials))
        stage(inventory, scan_id, 99, targets[2], served(targets[2], credentials))
        with pytest.raises(StoreError, match="is not a target of scan"):
            inventory.flush()
        assert inventory.staged == 0
        assert inventory.target_states(scan_id) == {"pending": 1, "done": 2}
        # And a batch never flushed is lost whole when the inventory closes
        stage(inventory, scan_id, 2, targets[2], served(targets[2], credentials))
    with Inventory.open(inventory_db) as inventory:
        assert inventory.target_states(scan_id) == {"pending": 1, "done": 2}
        assert len(list(inventory.observations(scan_id=scan_id))) == 2


def test_diagnosis_and_problems_are_stored(inventory_db: str) -> None:
    with Inventory.open(inventory_db) as inventory:
        target = Target("127.0.0.1", 3389)
        scan_id = one_target_scan(inventory, target)
        diagnosis = DiagnosisRecord(
            verdict="warning",
            predicted_stall_s=15.0,
            problems=(ProblemRecord("self-signed-not-pinned", "warning", "pin it"),),
            retrievals=({"purpose": "root_list", "outcome": "timeout", "elapsed_ms": 1.0},),
        )
        record(
            inventory,
            scan_id,
            0,
            target,
            served(target, windows_self_signed()),
            diagnosis=diagnosis,
        )
        (stored,) = inventory.observations(scan_id=scan_id)
        assert stored.verdict == "warning"
        assert stored.predicted_stall_s == 15.0
        assert stored.problems == diagnosis.problems
        assert stored.retrievals == diagnosis.retrievals


def test_events_over_four_scans(inventory_db: str) -> None:
    target = Target("127.0.0.1", 3389)
    first = windows_self_signed("WIN-A")
    recreated = windows_self_signed("WIN-A")
    with Inventory.open(inventory_db) as inventory:
        kinds = []
        for probe in (
            served(target, first),
            served(target, recreated),
            served(target, None),
            served(target, recreated),
        ):
            scan_id = one_target_scan(inventory, target)
            recorded = record(inventory, scan_id, 0, target, probe)
            kinds.append([(e.kind, e.change) for e in recorded.events])
        assert kinds == [
            [("first-seen", None)],
            [("certificate-changed", "recreation")],
            [("became-unreachable", None)],
            [("became-reachable", None)],
        ]
        history = inventory.history(Target("127.0.0.1", 3389))
        assert [s.certificate.sha256 for s in history.certificates] == [
            first.sha256,
            recreated.sha256,
        ]
        assert len(history.observations) == 4
        assert [e.kind for e in history.events] == [
            "first-seen",
            "certificate-changed",
            "became-unreachable",
            "became-reachable",
        ]


def test_full_disk_keeps_completed_results(tmp_path: Path) -> None:
    path = tmp_path / "inv.sqlite3"
    targets = [Target("127.0.0.1", port) for port in range(1000, 1400)]
    with Inventory.open(path) as inventory:
        scan = inventory.create_scan([], {}, targets)
        recorded = 0
        credentials = [windows_self_signed(f"WIN-{n}") for n in range(4)]

        def record_all() -> None:
            nonlocal recorded
            for seq, target in inventory.pending_targets(scan.id):
                record(inventory, scan.id, seq, target, served(target, credentials[seq % 4]))
                recorded += 1

        # Cap the file where it is: SQLite then fails as on a full disk.
        pages = inventory._db.execute("PRAGMA page_count").fetchone()[0]
        inventory._db.execute(f"PRAGMA max_page_count = {pages + 2}")
        with pytest.raises(StoreError, match="full") as caught:
            record_all()
        assert "\n" not in str(caught.value)
        assert recorded > 0
    with Inventory.open(path) as inventory:
        states = inventory.target_states(scan.id)
        assert states["done"] == recorded
        assert len(list(inventory.observations(scan_id=scan.id))) == recorded


def test_locked_inventory_gives_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "inv.sqlite3"
    Inventory.open(path).close()
    # Given another process in the middle of a write
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with Inventory.open(path, lock_timeout=0.2) as inventory:
            # When this one must write, it waits, then says so in one line
            with pytest.raises(StoreError, match="locked by another rdptrust process"):
                inventory.create_scan([], {}, [Target("127.0.0.1", 1)])
            # And reading still works meanwhile
            assert inventory.scans() == []
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_record_keeps_what_it_is_given_and_judges_nothing(inventory_db: str) -> None:
    # Given a leaf whose entry and findings were computed before recording (made up here,
    # so that anything the store worked out for itself would show)
    target = Target("127.0.0.1", 3389)
    credentials = windows_self_signed("WIN-A")
    entry = CertificateEntry(
        subject="CN=given",
        issuer="CN=given issuer",
        common_name="given",
        self_signed=False,
        not_before=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        not_after=dt.datetime(2027, 1, 1, 12, 30, tzinfo=dt.UTC),
        public_key_sha256="ab" * 32,
        key_type="RSA",
        key_bits=4096,
        signature_hash="sha384",
    )
    diagnosis = DiagnosisRecord("warning", 1.5, (ProblemRecord("first", "warning", "one"),))
    given = (ProblemRecord("second", "critical", "two"),)
    with Inventory.open(inventory_db) as inventory:
        scan_id = one_target_scan(inventory, target)
        # When it is recorded
        recorded = inventory.record(
            scan_id,
            0,
            target,
            served(target, credentials),
            diagnosis=diagnosis,
            certificate=entry,
            problems=given,
        )
        (stored,) = inventory.observations(scan_id=scan_id)
    # Then the certificate holds exactly the entry, and the problems are the diagnosis'
    # then the given ones, in order
    for observation in (recorded, stored):
        cert = observation.certificate
        assert cert is not None
        assert cert.sha256 == credentials.sha256
        assert (cert.subject, cert.issuer, cert.common_name, cert.self_signed) == (
            "CN=given",
            "CN=given issuer",
            "given",
            False,
        )
        assert (cert.not_before, cert.not_after) == (entry.not_before, entry.not_after)
        assert (cert.public_key_sha256, cert.key_type, cert.key_bits, cert.signature_hash) == (
            "ab" * 32,
            "RSA",
            4096,
            "sha384",
        )
        assert [p.code for p in observation.problems] == ["first", "second"]


def test_record_refuses_a_new_leaf_without_its_entry(inventory_db: str) -> None:
    target = Target("127.0.0.1", 3389)
    with Inventory.open(inventory_db) as inventory:
        scan_id = one_target_scan(inventory, target)
        with pytest.raises(ValueError, match="certificate entry"):
            inventory.record(scan_id, 0, target, served(target, windows_self_signed()))
        # nothing was kept: the target is still pending
        assert inventory.target_states(scan_id) == {"pending": 1, "done": 0}
        assert list(inventory.observations()) == []


def test_every_column_comes_back_by_name(inventory_db: str) -> None:
    # Given a probe that saw every part: enumeration, TLS versions, timings, a chain
    target = Target("127.0.0.1", 3389)
    credentials = make_host_credentials(CertKind.CA, computer_name="WIN-A")
    probe = dataclasses.replace(
        served(target, credentials),
        protocols=(
            ProtocolSupport("SSL", SecurityProtocol.SSL, True, SecurityProtocol.SSL, None, None),
            ProtocolSupport(
                "RDP", SecurityProtocol.RDP, False, None, "SSL_REQUIRED_BY_SERVER", None
            ),
        ),
        tls_versions=(
            TlsVersionSupport("TLSv1.0", None, None),
            TlsVersionSupport("TLSv1.3", True, None),
        ),
    )
    with Inventory.open(inventory_db) as inventory:
        scan_id = one_target_scan(inventory, target)
        record(inventory, scan_id, 0, target, probe)
        (stored,) = inventory.observations(scan_id=scan_id)
    # Then each field holds what was seen
    assert (stored.scan_id, stored.host, stored.port, stored.address) == (
        scan_id,
        "127.0.0.1",
        3389,
        "127.0.0.1",
    )
    assert (stored.ok, stored.error_kind, stored.error_message) == (True, None, None)
    assert (stored.selected_protocol, stored.negotiation_failure) == ("SSL", None)
    assert stored.chain == tuple(
        hashlib.sha256(c.public_bytes(Encoding.DER)).hexdigest() for c in credentials.chain
    )
    assert (stored.tls_version, stored.tls_cipher) == ("TLSv1.3", "TLS_AES_256_GCM_SHA384")
    assert stored.protocols == {"SSL": True, "RDP": False}
    assert stored.tls_versions == {"TLSv1.0": None, "TLSv1.3": True}
    assert (stored.connect_ms, stored.x224_ms, stored.tls_ms, stored.total_ms) == (
        0.2,
        0.3,
        2.0,
        2.5,
    )
    assert (stored.verdict, stored.predicted_stall_s, stored.retrievals, stored.ntlm) == (
        None,
        None,
        None,
        None,
    )
    assert stored.certificate is not None
    assert stored.certificate.sha256 == credentials.sha256
    assert not stored.certificate.self_signed


def test_a_rolled_back_record_does_not_leave_its_certificate_assumed(
    inventory_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a record that fails after it wrote its new certificate (rolled back whole)
    from rdptrust.store import recording as recording_module

    real = recording_module.new_events
    calls = []

    def failing_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("fails after the certificate was written")
        return real(*args, **kwargs)

    monkeypatch.setattr(recording_module, "new_events", failing_once)
    target = Target("127.0.0.1", 3389)
    credentials = windows_self_signed("WIN-A")
    with Inventory.open(inventory_db) as inventory:
        scan_id = one_target_scan(inventory, target)
        with pytest.raises(RuntimeError):
            record(inventory, scan_id, 0, target, served(target, credentials))
        assert inventory.certificate(credentials.sha256) is None
        # When the target is recorded again, batched as a scan does
        stage(inventory, scan_id, 0, target, served(target, credentials))
        (again,) = inventory.flush().records
        # Then its certificate is written again, not assumed to be there
        assert again.certificate is not None
        assert inventory.certificate(credentials.sha256) == again.certificate


def test_a_record_equals_what_reading_it_back_gives(tmp_path: Path) -> None:
    # Given observations of every shape: new host, same leaf again (remembered), a new
    # leaf (certificate-changed), unreachable, a diagnosis with whole-number waits, and a
    # second connection that has not met the leaf yet (read once from the table)
    target = Target("127.0.0.1", 3389)
    first = windows_self_signed("WIN-A")
    recreated = windows_self_signed("WIN-A")
    diagnosis = DiagnosisRecord(
        verdict="critical",
        predicted_stall_s=15,  # an int: the REAL column gives back 15.0
        problems=(
            ProblemRecord("self-signed-not-pinned", "warning", "pin it"),
            ProblemRecord("revocation-unreachable", "critical", "a dead URL"),
        ),
        retrievals=({"purpose": "crl", "outcome": "timeout", "elapsed_ms": 15000},),
    )
    probes = [
        (served(target, first), None),
        (served(target, first), diagnosis),
        (served(target, recreated), diagnosis),
        (served(target, None), None),
        (served(target, recreated), None),
    ]
    path = tmp_path / "inv.sqlite3"
    pairs = []
    inventory = Inventory.open(path)
    try:
        for index, (probe, judged) in enumerate(probes):
            if index == len(probes) - 1:
                # the last through a new connection, which holds no certificate in memory
                inventory.close()
                inventory = Inventory.open(path)
            scan_id = one_target_scan(inventory, target)
            recorded = record(inventory, scan_id, 0, target, probe, diagnosis=judged)
            read = inventory._observation(inventory._db, recorded.id, with_events=True)
            pairs.append((index, recorded, read))
    finally:
        inventory.close()
    # Then each record() result is the stored row, field for field
    for index, recorded, read in pairs:
        assert recorded == read, index
        assert isinstance(recorded.predicted_stall_s, float | None)
    assert [e.kind for _, r, _ in pairs for e in r.events] == [
        "first-seen",
        "certificate-changed",
        "became-unreachable",
        "became-reachable",
    ]


def test_a_batch_remembers_its_leaves_without_reading_them_back(tmp_path: Path) -> None:
    # Given one connection recording 3 hosts that share a leaf, batched as a scan does
    credentials = windows_self_signed("WIN-SHARED")
    targets = [Target("127.0.0.1", 3389 + i) for i in range(3)]
    with Inventory.open(tmp_path / "inv.sqlite3") as inventory:
        scan_id = inventory.create_scan(["fleet"], {}, targets).id
        statements: list[str] = []
        inventory._db.set_trace_callback(statements.append)
        leaves = LeafReader(inventory)  # one per scan, as the scan engine keeps it
        for i, t in enumerate(targets):
            stage_result(
                inventory, scan_id, i, t, HostResult(served(t, credentials)), leaves=leaves
            )
        records = inventory.flush().records
        inventory._db.set_trace_callback(None)
        # Then the certificate is looked up twice (by the reader, and by the batch before
        # it inserts the new ones) and inserted once, and nothing recorded is selected back
        assert sum("FROM certificates c" in s for s in statements) == 2
        assert sum("INSERT OR IGNORE INTO certificates" in s for s in statements) == 1
        assert not any("FROM observations o JOIN hosts" in s for s in statements)
        assert not any("FROM problems" in s or "FROM events e" in s for s in statements)
        first_seen = {r.certificate.first_seen for r in records if r.certificate}
        assert len(first_seen) == 1
        assert inventory.certificate(credentials.sha256) == dataclasses.replace(
            records[2].certificate, sha1=inventory.certificate(credentials.sha256).sha1
        )


def test_a_version_4_inventory_gets_certificates_with_a_rowid_and_keeps_them(
    tmp_path: Path,
) -> None:
    # Given an inventory of schema 4 (certificates WITHOUT ROWID) with an observation of a
    # host and its certificate
    from rdptrust.store.schema import MIGRATIONS

    path = tmp_path / "v4.sqlite3"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    for version in range(1, 5):
        for statement in MIGRATIONS[version - 1].split(";"):
            if statement.strip():
                db.execute(statement)
        db.execute("INSERT INTO schema_migrations VALUES (?, 'then')", (version,))
    at = "2026-11-01T00:00:00.000Z"
    db.execute(
        "INSERT INTO scans (id, started_at, status, arguments, options) "
        "VALUES (1, ?, 'done', '[]', '{}')",
        (at,),
    )
    db.execute(
        "INSERT INTO hosts (id, host, port, first_seen) VALUES (1, '127.0.0.1', 3389, ?)", (at,)
    )
    db.execute(
        "INSERT INTO certificates (sha256, der, subject, issuer, self_signed, first_seen) "
        "VALUES (?, ?, 'CN=WIN-ROWID', 'CN=WIN-ROWID', 1, ?)",
        ("ab" * 32, b"\x30" * 900, at),
    )
    db.execute(
        "INSERT INTO observations (scan_id, host_id, observed_at, ok, sha256) "
        "VALUES (1, 1, ?, 1, ?)",
        (at, "ab" * 32),
    )
    db.commit()
    assert (
        "WITHOUT ROWID"
        in db.execute("SELECT sql FROM sqlite_master WHERE name = 'certificates'").fetchone()[0]
    )
    db.close()
    # When this rdptrust opens it
    with Inventory.open(path) as inventory:
        assert inventory.migrated_from == 4
        assert inventory.schema_version == SCHEMA_VERSION
        # Then foreign keys are on again, and the observation still has its certificate
        assert inventory._db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        (observation,) = inventory.history(Target("127.0.0.1", 3389)).observations
        assert observation.certificate is not None
        assert observation.certificate.sha256 == "ab" * 32
        assert observation.certificate.subject == "CN=WIN-ROWID"
    db = sqlite3.connect(path)
    try:
        # And the table has a rowid; every reference holds
        sql = db.execute("SELECT sql FROM sqlite_master WHERE name = 'certificates'").fetchone()[0]
        assert "WITHOUT ROWID" not in sql
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        assert db.execute("SELECT length(der) FROM certificates").fetchone() == (900,)
    finally:
        db.close()


class _Counting:
    """A connection that notes each call of execute/executemany (SQLite's trace callback
    sees each row of an executemany as a statement)."""

    def __init__(self, db: Any, calls: list[str]) -> None:
        self._db, self._calls = db, calls

    def execute(self, sql: str, *args: Any) -> Any:
        self._calls.append(sql)
        return self._db.execute(sql, *args)

    def executemany(self, sql: str, rows: Any) -> Any:
        self._calls.append(sql)
        return self._db.executemany(sql, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


def test_a_batch_costs_the_same_statements_for_8_hosts_as_for_64(tmp_path: Path) -> None:
    # Given two scans of the same fleet (the second sees every host again, some with a
    # new certificate, one unreachable), recorded a batch at a time as a scan does
    targets = [Target(f"127.0.1.{i}", 3389) for i in range(64)]
    first = [windows_self_signed(f"WIN-{i}") for i in range(64)]

    def statements_per_batch(inventory: Inventory, size: int, generation: int) -> int:
        scan_id = inventory.create_scan([str(generation)], {}, targets[:size]).id
        statements: list[str] = []
        for seq, t in enumerate(targets[:size]):
            if generation and seq == 0:
                failure = ProbeFailure("refused", "connection refused")
                inventory.stage(scan_id, seq, t, None, failure=failure)
                continue
            credentials = first[seq] if seq % 2 else windows_self_signed(f"WIN-{seq}")
            stage(inventory, scan_id, seq, t, served(t, credentials))
        real = inventory._db
        inventory._db = _Counting(real, statements)
        try:
            flushed = inventory.flush()
        finally:
            inventory._db = real
        assert len(flushed.records) == size
        if generation:
            kinds = {e.kind for r in flushed.records for e in r.events}
            assert kinds == {"became-unreachable", "certificate-changed"}
        return len(statements)

    counts = {}
    for size in (8, 64):
        with Inventory.open(tmp_path / f"inv{size}.sqlite3") as inventory:
            counts[size] = (
                statements_per_batch(inventory, size, 0),
                statements_per_batch(inventory, size, 1),
            )
    # Then a batch is the same few statements whatever its size, new hosts or known ones
    assert counts[8] == counts[64], counts
    assert max(counts[64]) <= 16, counts


class _FullAtCommit(_Counting):
    """A connection whose next COMMIT fails as on a full disk."""

    def execute(self, sql: str, *args: Any) -> Any:
        if sql == "COMMIT" and "COMMIT" not in self._calls:
            self._calls.append(sql)
            raise sqlite3.OperationalError("database or disk is full")
        return super().execute(sql, *args)


def test_a_batch_whose_commit_fails_is_not_stored_and_the_next_one_is(tmp_path: Path) -> None:
    # Given two hosts with certificates of their own, staged
    targets = [Target("127.0.0.1", 3389), Target("127.0.0.2", 3389)]
    with Inventory.open(tmp_path / "inv.sqlite3") as inventory:
        scan_id = inventory.create_scan(["x"], {}, targets).id
        for seq, t in enumerate(targets):
            stage(inventory, scan_id, seq, t, served(t, windows_self_signed(f"WIN-{seq}")))
        # When the flush's commit fails
        real = inventory._db
        inventory._db = _FullAtCommit(real, [])
        try:
            with pytest.raises(StoreError, match="full"):
                inventory.flush()
        finally:
            inventory._db = real
        # Then nothing of the batch is stored and no transaction is left open
        assert not real.in_transaction
        assert inventory.target_states(scan_id) == {"pending": 2, "done": 0}
        assert inventory.counts()["certificates"] == 0
        # And the same hosts staged again are stored whole, their certificates with them
        for seq, t in enumerate(targets):
            stage(inventory, scan_id, seq, t, served(t, windows_self_signed(f"WIN-{seq}")))
        flushed = inventory.flush()
    assert [r.certificate is not None for r in flushed.records] == [True, True]
    with Inventory.open(tmp_path / "inv.sqlite3", read_only=True) as inventory:
        assert inventory.target_states(scan_id) == {"pending": 0, "done": 2}
        assert inventory.counts()["certificates"] == 2
