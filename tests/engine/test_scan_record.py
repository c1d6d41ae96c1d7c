"""Judging a host result before it is recorded: the leaf's entry, and the probe's findings."""

from __future__ import annotations

import dataclasses

import pytest

from fixtures.inventory import counted_lookups, leaf_calls, one_target_scan, served
from rdptrust.engine import leaves as leaves_module
from rdptrust.engine.leaves import LeafReader, judge_host
from rdptrust.engine.scan import record_result, stage_result
from rdptrust.lab.certs import CertKind, HostCredentials, make_host_credentials, windows_self_signed
from rdptrust.model.outcome import ProbeFailure
from rdptrust.model.probe import TlsSessionInfo
from rdptrust.model.records import DiagnosisRecord, HostResult, ProblemRecord
from rdptrust.model.target import Target
from rdptrust.store.inventory import Inventory


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every certificate the leaf reader parses, in order."""
    return leaf_calls(monkeypatch, "load_certificate")


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
    inventory_db: str, credentials: HostCredentials, expected: list[tuple[str, str]]
) -> None:
    # Given two hosts serving the same certificate, recorded one after the other
    # (the first reads the certificate, the second finds it in the inventory)
    with Inventory.open(inventory_db) as inventory:
        targets = [Target("127.0.0.1", 3389), Target("127.0.0.2", 3389)]
        scan_id = inventory.create_scan(["x"], {}, targets).id
        records = [
            record_result(inventory, scan_id, seq, target, HostResult(served(target, credentials)))
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


def test_a_known_certificate_is_not_parsed_again(
    inventory_db: str, reads: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given three hosts serving the same certificate, counting certificate reads and lookups
    credentials = windows_self_signed("WIN-A")
    targets = [Target(f"127.0.0.{n}", 3389) for n in (1, 2, 3)]
    with Inventory.open(inventory_db) as inventory:
        lookups, _ = counted_lookups(monkeypatch, inventory)
        scan_id = inventory.create_scan(["x"], {}, targets).id
        leaves = LeafReader(inventory)
        # When they are recorded in one batch with one reader, as a scan does
        for seq, t in enumerate(targets):
            stage_result(
                inventory, scan_id, seq, t, HostResult(served(t, credentials)), leaves=leaves
            )
        # Then the certificate was looked up and read for the first host only
        assert (len(lookups), len(reads)) == (1, 1)
        records = inventory.flush().records
        assert len(records) == len(targets)
        # And a reader of a later scan finds it in the inventory, without reading it
        entry, problems = judge_host(
            LeafReader(inventory), HostResult(served(targets[0], credentials))
        )
        assert (len(lookups), len(reads)) == (2, 1)
    first = leaves.read(served(targets[0], credentials).leaf or b"")[0]
    assert entry == first
    assert [p.code for p in problems] == ["self-signed-certificate"]
    # And every record has the same certificate and findings
    assert {r.certificate for r in records} == {records[0].certificate}
    assert [[p.code for p in r.problems] for r in records] == [["self-signed-certificate"]] * 3


def test_a_prefetch_looks_up_a_batch_of_leaves_in_one_query(
    inventory_db: str, reads: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an inventory that holds the first of three certificates
    targets = [Target(f"127.0.0.{n}", 3389) for n in (1, 2, 3)]
    probes = [served(t, windows_self_signed(f"WIN-{n}")) for n, t in enumerate(targets)]
    ders = [p.leaf or b"" for p in probes]
    with Inventory.open(inventory_db) as inventory:
        scan_id = inventory.create_scan(["x"], {}, targets).id
        stored = record_result(inventory, scan_id, 0, targets[0], HostResult(probes[0]))
        assert stored.certificate is not None
        singles, batches = counted_lookups(monkeypatch, inventory)
        reads.clear()
        # When a new reader prefetches all three, twice, and then reads them
        leaves = LeafReader(inventory)
        leaves.prefetch([*ders, ders[1]])
        entries = [leaves.read(der)[0] for der in ders]
        leaves.prefetch(ders)
    # Then one query asked for the three, none for each, and the second prefetch asked
    # nothing: the stored one came from the inventory, the two others were parsed
    assert len(batches) == 1
    assert sorted(batches[0]) == sorted({leaves_module.sha256_hex(d) for d in ders})
    assert singles == []
    assert reads == ders[1:]
    assert entries[0].subject == stored.certificate.subject
    assert [e.common_name for e in entries] == ["WIN-0", "WIN-1", "WIN-2"]


def test_a_batch_hashes_each_leaf_once(inventory_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a reader, and a count of the SHA-256s it works out
    targets = [Target(f"127.0.0.{n}", 3389) for n in (1, 2)]
    ders = [served(t, windows_self_signed(f"WIN-H{n}")).leaf or b"" for n, t in enumerate(targets)]
    hashed = leaf_calls(monkeypatch, "sha256_hex")
    with Inventory.open(inventory_db) as inventory:
        leaves = LeafReader(inventory)
        # When a batch is prefetched and each of its leaves read
        leaves.prefetch(ders)
        entries = [leaves.read(der)[0] for der in ders]
        # Then each leaf was hashed once, by the prefetch
        assert sorted(hashed) == sorted(ders)
        # and a leaf of no prefetch is hashed when it is read
        other = served(targets[0], windows_self_signed("WIN-H9")).leaf or b""
        leaves.read(other)
    assert hashed[-1] == other
    assert [e.common_name for e in entries] == ["WIN-H0", "WIN-H1"]


def test_a_leaf_absent_at_one_prefetch_is_looked_up_after_the_next(
    inventory_db: str, reads: list[bytes]
) -> None:
    # Given a reader that prefetched a leaf the inventory did not hold yet
    target = Target("127.0.0.1", 3389)
    probe = served(target, windows_self_signed("WIN-A"))
    der = probe.leaf or b""
    with Inventory.open(inventory_db) as inventory:
        scan_id = inventory.create_scan(["x"], {}, [target]).id
        leaves = LeafReader(inventory)
        leaves.prefetch([der])
        # When another reader stores it, and the next prefetch holds other leaves
        record_result(inventory, scan_id, 0, target, HostResult(probe))
        reads.clear()
        leaves.prefetch([])
        entry = leaves.read(der)[0]
    # Then reading it takes it from the inventory, not from a new parse
    assert reads == []
    assert entry.common_name == "WIN-A"


def test_the_leaf_reader_forgets_the_oldest_certificate_first(inventory_db: str) -> None:
    ders = [
        served(Target("127.0.0.1", 3389), windows_self_signed(f"WIN-{n}")).leaf or b""
        for n in range(3)
    ]
    with Inventory.open(inventory_db) as inventory:
        leaves = LeafReader(inventory, size=2)
        entries = [leaves.read(der)[0] for der in ders]
        # the first was forgotten: reading it again makes a new (equal) entry
        again = leaves.read(ders[0])[0]
        assert again == entries[0]
        assert again is not entries[0]
        assert leaves.read(ders[2])[0] is entries[2]


def test_a_diagnosed_host_keeps_its_diagnosis_problems_only(inventory_db: str) -> None:
    # Given a diagnosis that already holds the probe's findings
    target = Target("127.0.0.1", 3389)
    diagnosis = DiagnosisRecord(
        "warning", 15.0, (ProblemRecord("self-signed-certificate", "warning", "from diagnose"),)
    )
    result = HostResult(served(target, windows_self_signed()), diagnosis=diagnosis)
    with Inventory.open(inventory_db) as inventory:
        # When it is judged, no finding is added, but the new leaf gets its entry
        entry, problems = judge_host(LeafReader(inventory), result)
        assert problems == ()
        assert entry is not None
        assert entry.self_signed
        recorded = record_result(inventory, one_target_scan(inventory, target), 0, target, result)
    # Then the record holds the diagnosis' problems, once
    assert recorded.problems == diagnosis.problems


def test_an_undecodable_leaf_is_kept_with_why(inventory_db: str) -> None:
    # Given a host that sends bytes that are no certificate
    target = Target("127.0.0.1", 3389)
    probe = served(target, windows_self_signed())
    assert probe.tls is not None
    garbage = TlsSessionInfo(probe.tls.version, probe.tls.cipher, (b"\x30\x03\x02\x01\x00",))
    result = HostResult(dataclasses.replace(probe, tls=garbage))
    with Inventory.open(inventory_db) as inventory:
        # When it is judged and recorded
        entry, problems = judge_host(LeafReader(inventory), result)
        recorded = record_result(inventory, one_target_scan(inventory, target), 0, target, result)
    # Then its entry says it could not be decoded, and no certificate finding is raised
    assert entry is not None
    assert entry.subject.startswith("(undecodable certificate: ")
    assert problems == ()
    assert recorded.certificate is not None
    assert recorded.certificate.subject == entry.subject
    assert recorded.certificate.not_after is None
    assert recorded.problems == ()


def test_no_probe_result_needs_nothing_judged(inventory_db: str) -> None:
    target = Target("127.0.0.1", 3389)
    failure = ProbeFailure("timeout", f"{target}: no result within 1 s")
    with Inventory.open(inventory_db) as inventory:
        assert judge_host(LeafReader(inventory), HostResult(None, failure)) == (None, ())
        recorded = record_result(
            inventory, one_target_scan(inventory, target), 0, target, HostResult(None, failure)
        )
    assert not recorded.ok
    assert (recorded.error_kind, recorded.certificate, recorded.problems) == ("timeout", None, ())
