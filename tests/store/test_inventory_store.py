"""The inventory database: migrations, atomic recording, events, and failures of the file."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from rdptrust.errors import StoreError, UsageError
from rdptrust.lab.certs import CertKind, HostCredentials, make_host_credentials, windows_self_signed
from rdptrust.model.outcome import ProbeFailure
from rdptrust.model.probe import Negotiation, ProbeResult, Timings, TlsSessionInfo
from rdptrust.model.target import Target
from rdptrust.model.wire import SecurityProtocol
from rdptrust.report.inventory import hosts_document, write_hosts_json
from rdptrust.report.jsonform import dumps
from rdptrust.store.inventory import DiagnosisRecord, Inventory, ProblemRecord, classify_change
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


def served(target: Target, credentials: HostCredentials | None) -> ProbeResult:
    """The result a probe returns for a host serving *credentials* (None: refused)."""
    if credentials is None:
        return ProbeResult(
            target,
            None,
            None,
            None,
            (),
            (),
            Timings(total_ms=1.0),
            ProbeFailure("connect", f"{target}: connection refused"),
        )
    chain = tuple(c.public_bytes(Encoding.DER) for c in credentials.chain)
    return ProbeResult(
        target=target,
        address=target.host,
        negotiation=Negotiation(SecurityProtocol.SSL, SecurityProtocol.SSL, None, False),
        tls=TlsSessionInfo("TLSv1.3", "TLS_AES_256_GCM_SHA384", chain),
        protocols=(),
        tls_versions=(),
        timings=Timings(0.2, 0.3, 2.0, 2.5),
        error=None,
    )


def one_target_scan(inventory: Inventory, target: Target) -> int:
    return inventory.create_scan([str(target)], {}, [target]).id


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


def test_bad_target_file_leaves_no_scan_behind(tmp_path: Path) -> None:
    def targets() -> object:
        yield Target("127.0.0.1", 1)
        raise UsageError("targets.txt:2: bad")

    with Inventory.open(tmp_path / "inv.sqlite3") as inventory:
        with pytest.raises(UsageError):
            inventory.create_scan([], {}, targets())  # type: ignore[arg-type]
        assert inventory.scans() == []


def test_duplicate_targets_are_stored_once(tmp_path: Path) -> None:
    with Inventory.open(tmp_path / "inv.sqlite3") as inventory:
        target = Target("127.0.0.1", 3389)
        scan = inventory.create_scan([], {}, [target, target, Target("127.0.0.1", 3390)])
        assert scan.target_count == 2
        assert [t for _, t in inventory.pending_targets(scan.id)] == [
            target,
            Target("127.0.0.1", 3390),
        ]


def test_record_marks_done_and_refuses_a_second_record(tmp_path: Path) -> None:
    with Inventory.open(tmp_path / "inv.sqlite3") as inventory:
        target = Target("127.0.0.1", 3389)
        scan_id = one_target_scan(inventory, target)
        credentials = windows_self_signed("WIN-A")
        record = inventory.record(scan_id, 0, target, served(target, credentials))
        assert record.ok
        assert record.certificate is not None
        assert record.certificate.sha256 == credentials.sha256
        assert record.certificate.self_signed
        assert [e.kind for e in record.events] == ["first-seen"]
        assert inventory.target_states(scan_id) == {"pending": 0, "done": 1}
        with pytest.raises(StoreError, match="already recorded"):
            inventory.record(scan_id, 0, target, served(target, credentials))
        assert len(list(inventory.observations(scan_id=scan_id))) == 1


@pytest.mark.parametrize(
    ("credentials", "expected"),
    [
        (windows_self_signed("WIN-A"), [("self-signed-certificate", "warning")]),
        (
            make_host_credentials(CertKind.EXPIRED, computer_name="WIN-B"),
            [("expiring-certificate", "critical"), ("self-signed-certificate", "warning")],
        ),
        (make_host_credentials(CertKind.CA, computer_name="WIN-C"), []),
    ],
)
def test_findings_are_the_same_for_a_new_and_a_stored_certificate(
    tmp_path: Path, credentials: HostCredentials, expected: list[tuple[str, str]]
) -> None:
    # Given two hosts serving the same certificate, recorded one after the other
    # (the first reads the certificate, the second finds it in the inventory)
    with Inventory.open(tmp_path / "inv.sqlite3") as inventory:
        targets = [Target("127.0.0.1", 3389), Target("127.0.0.2", 3389)]
        scan_id = inventory.create_scan(["x"], {}, targets).id
        records = [
            inventory.record(scan_id, seq, target, served(target, credentials))
            for seq, target in enumerate(targets)
        ]
    # Then both carry the same findings, each naming its own host
    for record, target in zip(records, targets, strict=True):
        assert [(p.code, p.severity) for p in record.problems] == expected
        assert all(str(target) in p.message for p in record.problems)
    first, second = ([p.message for p in r.problems] for r in records)
    assert [m.replace("127.0.0.1", "HOST") for m in first] == [
        m.replace("127.0.0.2", "HOST") for m in second
    ]


def test_batched_records_are_durable_only_once_committed(tmp_path: Path) -> None:
    path = tmp_path / "inv.sqlite3"
    targets = [Target("127.0.0.1", 3389), Target("127.0.0.2", 3389), Target("127.0.0.3", 3389)]
    credentials = windows_self_signed("WIN-A")
    with Inventory.open(path) as inventory:
        scan_id = inventory.create_scan(["x"], {}, targets).id
        # Given two records in a batch
        for seq in (0, 1):
            inventory.record(
                scan_id, seq, targets[seq], served(targets[seq], credentials), commit=False
            )
        assert inventory.uncommitted
        # Then another connection does not see them yet
        other = sqlite3.connect(path)
        try:
            assert other.execute("SELECT COUNT(*) FROM observations").fetchone() == (0,)
            # And a failing record in the batch rolls back only itself
            with pytest.raises(StoreError, match="already recorded"):
                inventory.record(
                    scan_id, 0, targets[0], served(targets[0], credentials), commit=False
                )
            # And another write must wait for the commit
            with pytest.raises(RuntimeError, match="commit"):
                inventory.finish_scan(scan_id, "done")
            # When the batch is committed, both are there
            inventory.commit()
            assert not inventory.uncommitted
            assert other.execute("SELECT COUNT(*) FROM observations").fetchone() == (2,)
        finally:
            other.close()
        # And a batch never committed is lost whole when the inventory closes
        inventory.record(scan_id, 2, targets[2], served(targets[2], credentials), commit=False)
    with Inventory.open(path) as inventory:
        assert inventory.target_states(scan_id) == {"pending": 1, "done": 2}
        assert len(list(inventory.observations(scan_id=scan_id))) == 2


def test_diagnosis_and_problems_are_stored(tmp_path: Path) -> None:
    with Inventory.open(tmp_path / "inv.sqlite3") as inventory:
        target = Target("127.0.0.1", 3389)
        scan_id = one_target_scan(inventory, target)
        diagnosis = DiagnosisRecord(
            verdict="warning",
            predicted_stall_s=15.0,
            problems=(ProblemRecord("self-signed-not-pinned", "warning", "pin it"),),
            retrievals=({"purpose": "root_list", "outcome": "timeout", "elapsed_ms": 1.0},),
        )
        inventory.record(
            scan_id, 0, target, served(target, windows_self_signed()), diagnosis=diagnosis
        )
        (stored,) = inventory.observations(scan_id=scan_id)
        assert stored.verdict == "warning"
        assert stored.predicted_stall_s == 15.0
        assert stored.problems == diagnosis.problems
        assert stored.retrievals == diagnosis.retrievals


def test_events_over_four_scans(tmp_path: Path) -> None:
    target = Target("127.0.0.1", 3389)
    first = windows_self_signed("WIN-A")
    recreated = windows_self_signed("WIN-A")
    with Inventory.open(tmp_path / "inv.sqlite3") as inventory:
        kinds = []
        for probe in (
            served(target, first),
            served(target, recreated),
            served(target, None),
            served(target, recreated),
        ):
            scan_id = one_target_scan(inventory, target)
            record = inventory.record(scan_id, 0, target, probe)
            kinds.append([(e.kind, e.change) for e in record.events])
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


def _facts(credentials: HostCredentials) -> dict[str, object]:
    from rdptrust.pki.facts import certificate_facts

    facts = certificate_facts(credentials.leaf)
    return {
        "subject": facts.subject,
        "self_signed": facts.self_signed,
        "public_key_sha256": facts.public_key_sha256,
    }


def test_change_classes() -> None:
    a = _facts(windows_self_signed("WIN-A"))
    a_again = _facts(windows_self_signed("WIN-A"))
    b = _facts(windows_self_signed("WIN-B"))
    ca_issued = _facts(make_host_credentials(CertKind.CA, computer_name="WIN-A"))
    assert classify_change(a, a_again) == "recreation"
    assert classify_change(a, ca_issued) == "ca-issued"
    assert classify_change(a, b) == "unexpected"
    assert classify_change(ca_issued, a) == "unexpected"
    # Same key re-signed is no Windows recreation either.
    assert classify_change(a, dict(a)) == "unexpected"


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
                inventory.record(scan.id, seq, target, served(target, credentials[seq % 4]))
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


@pytest.mark.parametrize("count", [0, 1, 3])
def test_hosts_json_streams_the_same_document(tmp_path: Path, count: int) -> None:
    # Given an inventory of *count* hosts, one with a hostile subject
    targets = [Target(f"127.0.0.{i + 1}", 3389) for i in range(count)]
    with Inventory.open(tmp_path / "inv.sqlite3") as inventory:
        if targets:
            scan_id = inventory.create_scan(["x"], {}, targets).id
            names = ['WIN-"A"', "WIN-B", "WIN-C"]
            for seq, target in enumerate(targets):
                credentials = windows_self_signed(names[seq])
                inventory.record(scan_id, seq, target, served(target, credentials))
        # When the document is written host by host
        out = io.StringIO()
        write_hosts_json(inventory.iter_hosts(), out)
        whole = dumps(hosts_document(inventory.hosts()))
    # Then it is the same text as the whole document at once, and valid JSON
    assert out.getvalue() == whole + "\n"
    assert len(json.loads(out.getvalue())["hosts"]) == count
