"""The scan engine against lab endpoints: every target once, right outcome, changes as events."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import sqlite3
import ssl
import tracemalloc
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fixtures.inventory import counted_lookups
from fixtures.lab import LabFactory
from rdptrust.engine import leaves as leaves_module
from rdptrust.engine.scan import ScanSummary, TokenBucket, run_scan
from rdptrust.engine.scan_options import ScanOptions
from rdptrust.errors import StoreError
from rdptrust.lab.certs import CertKind, HostCredentials, make_host_credentials, windows_self_signed
from rdptrust.lab.rdp import HostileMode, RdpEndpoint, RdpPolicy, server_context
from rdptrust.lab.runner import Lab, LabConfig
from rdptrust.model.records import ObservationRecord
from rdptrust.model.target import Target
from rdptrust.store.inventory import Inventory

#: What a probe reports for each hostile mode: the error kinds it may give.
HOSTILE_KINDS: dict[HostileMode, set[str]] = {
    HostileMode.GARBAGE: {"remote_protocol"},
    HostileMode.TRUNCATED: {"remote_protocol", "connect"},
    HostileMode.RESET: {"connect"},
    HostileMode.TLS_ALERT: {"tls"},
    HostileMode.SILENCE: {"timeout"},
    HostileMode.LENGTH_TOO_LARGE: {"remote_protocol"},
}


def context_for(credentials: HostCredentials, directory: Path) -> ssl.SSLContext:
    chain, key = credentials.write_pem(directory / credentials.sha256[:16])
    return server_context(chain, key)


@dataclass
class Fleet:
    labs: list[Lab]
    #: The leaf SHA-256 each well-behaved endpoint serves, by target.
    expected: dict[Target, str]
    hostile: dict[Target, HostileMode]
    refused: list[Target]

    @property
    def targets(self) -> list[Target]:
        return [t for lab in self.labs for t in lab.targets] + self.refused


#: Well-behaved labs of the 200-endpoint fleet: certificate kind and endpoint count.
FLEET = ((CertKind.SELF_SIGNED, 60), (CertKind.CA, 50), (CertKind.EXPIRED, 40), (CertKind.SHA1, 44))


@contextlib.asynccontextmanager
async def fleet() -> AsyncIterator[Fleet]:
    """194 endpoints with mixed certificates, six hostile ones and three refused ports."""
    expected: dict[Target, str] = {}
    hostile: dict[Target, HostileMode] = {}
    async with contextlib.AsyncExitStack() as stack:
        labs = []
        for kind, count in FLEET:
            lab = await stack.enter_async_context(
                Lab(LabConfig(count=count, cert=kind, request_timeout_s=5.0))
            )
            labs.append(lab)
            expected.update(dict.fromkeys(lab.targets, lab.certificate_sha256))
        for mode in HOSTILE_KINDS:
            lab = await stack.enter_async_context(
                Lab(LabConfig(hostile=mode, request_timeout_s=5.0))
            )
            labs.append(lab)
            hostile[lab.target] = mode
        # three ports bound at once (so distinct) and released: they refuse
        with contextlib.ExitStack() as bound:
            sockets = [bound.enter_context(socket.socket()) for _ in range(3)]
            for sock in sockets:
                sock.bind(("127.0.0.1", 0))
            refused = [Target("127.0.0.1", s.getsockname()[1]) for s in sockets]
        yield Fleet(labs, expected, hostile, refused)


def check_outcome(record: ObservationRecord, f: Fleet) -> None:
    target = record.target
    if target in f.expected:
        assert record.ok, record.error_message
        assert record.certificate is not None
        assert record.certificate.sha256 == f.expected[target]
        assert record.tls_version in ("TLSv1.2", "TLSv1.3")
        assert record.total_ms is not None
    elif target in f.hostile:
        assert not record.ok
        assert record.error_kind in HOSTILE_KINDS[f.hostile[target]], (
            f.hostile[target],
            record.error_kind,
            record.error_message,
        )
    else:
        assert target in f.refused
        assert record.error_kind == "connect"


async def test_scan_of_200_endpoints_records_each_once(inventory_db: str) -> None:
    async with fleet() as f:
        assert len(f.expected) + len(f.hostile) == 200
        with Inventory.open(inventory_db) as inventory:
            # Given a scan whose target list names some endpoints twice
            scan = inventory.create_scan([], {}, f.targets + f.targets[:10])
            assert scan.target_count == 203
            seen: list[Target] = []
            # When it runs
            summary = await run_scan(
                inventory,
                scan,
                ScanOptions(concurrency=50, timeout=1.5),
                on_result=lambda r: seen.append(r.target),
            )
            # Then every target is recorded exactly once with its outcome
            assert summary.status == "done"
            assert summary.recorded == summary.done == 203
            assert summary.errors == len(f.hostile) + len(f.refused)
            assert Counter(seen) == Counter(f.targets)
            records = list(inventory.observations(scan_id=scan.id))
            assert len(records) == 203
            assert {r.target for r in records} == set(f.targets)
            for record in records:
                check_outcome(record, f)
            assert inventory.target_states(scan.id) == {"pending": 0, "done": 203}
            # And each certificate is stored once, however many hosts share it
            hosts = inventory.hosts()
            assert len(hosts) == 203
            served = {h.latest.certificate.sha256 for h in hosts if h.latest.certificate}
            assert served == set(f.expected.values())
            assert len(served) == len(FLEET)


async def test_each_result_is_reported_once_committed(tmp_path: Path) -> None:
    # Given 150 refused targets (they finish at once, many per commit batch)
    path = tmp_path / "inv.sqlite3"
    committed_when_reported: list[bool] = []
    with contextlib.ExitStack() as bound:
        # bound and not listening: each refuses, and no two share a port
        sockets = [bound.enter_context(socket.socket()) for _ in range(150)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        targets = [Target("127.0.0.1", s.getsockname()[1]) for s in sockets]
        summary = await _scan_reporting_commits(path, targets, committed_when_reported)
    # Then every host was durable before it was reported
    assert summary.recorded == 150
    assert committed_when_reported == [True] * 150


async def _scan_reporting_commits(
    path: Path, targets: list[Target], committed_when_reported: list[bool]
) -> ScanSummary:
    with Inventory.open(path) as inventory:
        scan = inventory.create_scan([], {}, targets)
        reader = sqlite3.connect(path)

        def on_result(record: ObservationRecord) -> None:
            # another connection sees only committed data
            row = reader.execute(
                "SELECT COUNT(*) FROM observations WHERE id = ?", (record.id,)
            ).fetchone()
            committed_when_reported.append(row[0] == 1)

        # When the scan runs
        try:
            return await run_scan(
                inventory, scan, ScanOptions(concurrency=100, timeout=1), on_result=on_result
            )
        finally:
            reader.close()


async def test_certificate_change_between_scans_is_an_event(inventory_db: str) -> None:
    async with Lab(LabConfig()) as recreating, Lab(LabConfig()) as enrolling:
        with Inventory.open(inventory_db) as inventory:
            targets = [recreating.target, enrolling.target]
            first = recreating.certificate_sha256
            scan = inventory.create_scan([], {}, targets)
            await run_scan(inventory, scan, ScanOptions(timeout=3))
            # When one host recreates its self-signed certificate and the other enrols
            recreated = recreating.regenerate_certificate()
            enrolling.set_credentials(make_host_credentials(CertKind.CA, computer_name="WIN-LAB01"))
            second = inventory.create_scan([], {}, targets)
            events: dict[Target, list[tuple[str, str | None]]] = {}
            await run_scan(
                inventory,
                second,
                ScanOptions(timeout=3),
                on_result=lambda r: events.setdefault(
                    r.target, [(e.kind, e.change) for e in r.events]
                ),
            )
            # Then each change is an event, classified
            assert events == {
                recreating.target: [("certificate-changed", "recreation")],
                enrolling.target: [("certificate-changed", "ca-issued")],
            }
            history = inventory.history(recreating.target)
            assert [s.certificate.sha256 for s in history.certificates] == [
                first,
                recreated.sha256,
            ]
            change = history.events[-1]
            assert (change.old_sha256, change.new_sha256) == (first, recreated.sha256)
            # And a third scan with nothing changed adds no event
            third = inventory.create_scan([], {}, targets)
            await run_scan(inventory, third, ScanOptions(timeout=3))
            assert inventory.events(scan_id=third.id) == []


async def test_stop_leaves_in_flight_targets_pending(tmp_path: Path) -> None:
    async with contextlib.AsyncExitStack() as stack:
        silent = [
            await stack.enter_async_context(
                RdpEndpoint(
                    RdpPolicy(hostile=HostileMode.SILENCE),
                    context_for(windows_self_signed(), tmp_path),
                )
            )
        ]
        with Inventory.open(tmp_path / "inv.sqlite3") as inventory:
            targets = [silent[0].target] + [Target("127.0.0.1", p) for p in range(1, 30)]
            scan = inventory.create_scan([], {}, targets)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            loop.call_later(0.5, stop.set)
            # Given a slow target in flight when the scan is stopped
            summary = await run_scan(
                inventory, scan, ScanOptions(concurrency=2, timeout=10), stop=stop
            )
            # Then the scan is interrupted and the slow target is still pending
            assert summary.status == "interrupted"
            pending = [t for _, t in inventory.pending_targets(scan.id)]
            assert silent[0].target in pending
            assert inventory.scan(scan.id).status == "interrupted"
            assert summary.done + len(pending) == 30
            # And running the scan again finishes it with each target once
            summary = await run_scan(inventory, scan, ScanOptions(concurrency=8, timeout=0.5))
            assert summary.status == "done"
            assert len(list(inventory.observations(scan_id=scan.id))) == 30


async def test_rate_limit_paces_starts() -> None:
    bucket = TokenBucket(20.0)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for _ in range(11):
        await bucket.acquire()
    # The first start is free; ten more at 20 per second take half a second.
    assert 0.45 <= loop.time() - start < 1.5


async def test_per_host_deadline(tmp_path: Path) -> None:
    async with RdpEndpoint(
        RdpPolicy(hostile=HostileMode.SILENCE), context_for(windows_self_signed(), tmp_path)
    ) as silent:
        with Inventory.open(tmp_path / "inv.sqlite3") as inventory:
            scan = inventory.create_scan([], {}, [silent.target])
            loop = asyncio.get_running_loop()
            start = loop.time()
            await run_scan(inventory, scan, ScanOptions(timeout=30, deadline=0.5))
            assert loop.time() - start < 3
            (record,) = inventory.observations(scan_id=scan.id)
            assert record.error_kind == "timeout"
            assert "0.5 s" in (record.error_message or "")


async def test_enumerate_adds_protocols_and_tls_versions(inventory_db: str) -> None:
    async with Lab(LabConfig()) as lab:
        with Inventory.open(inventory_db) as inventory:
            scan = inventory.create_scan([], {}, lab.targets)
            await run_scan(inventory, scan, ScanOptions(timeout=3, enumerate=True))
            (record,) = inventory.observations(scan_id=scan.id)
            assert record.protocols["SSL"] is True
            assert record.protocols["HYBRID"] is True
            assert record.protocols["RDSAAD"] is False
            assert record.tls_versions["TLSv1.2"] is True
            assert record.tls_versions["TLSv1.0"] is False
            plain = inventory.create_scan([], {}, lab.targets)
            await run_scan(inventory, plain, ScanOptions(timeout=3))
            (record,) = inventory.observations(scan_id=plain.id)
            assert record.protocols == {}
            assert record.tls_versions == {}


async def _retained_memory(tmp_path: Path, count: int) -> int:
    """Bytes still allocated after scanning *count* refused targets (garbage collected)."""
    with Inventory.open(tmp_path / f"inv-{count}.sqlite3") as inventory:
        # Nothing listens on 127.0.0.2-254 here: every connection is refused at once.
        targets = [Target(f"127.0.0.{2 + n % 250}", 9 + n // 250) for n in range(count)]
        scan = inventory.create_scan([], {}, targets)
        del targets
        gc.collect()
        tracemalloc.start(1)
        try:
            summary = await run_scan(inventory, scan, ScanOptions(concurrency=100, timeout=2))
            gc.collect()
            retained = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        assert summary.done == count
        return retained


async def test_memory_stays_flat_as_targets_grow(tmp_path: Path) -> None:
    small = await _retained_memory(tmp_path, 200)
    large = await _retained_memory(tmp_path, 2000)
    # Ten times the targets: nothing is kept per target once it is recorded.
    assert large < small + 256 * 1024, (small, large)


async def test_diagnose_stores_verdict_stall_problems_and_retrievals(
    tmp_path: Path, lab_factory: LabFactory
) -> None:
    # Given a self-signed host whose root list does not answer, and a trusted CA-issued one
    stalling = await lab_factory(cert="self-signed", root_list="blackhole")
    trusted = await lab_factory(cert="ca")
    ca_file = str(trusted.ca_cert_path)
    options = ScanOptions(
        timeout=3,
        diagnose=True,
        url_timeout=1.0,
        root_list_url=stalling.root_list_url,
        # only the trusted list: the disallowed list (every chain) has its own switch
        disallowed_update=False,
        ca_files=(ca_file,),
        known_hosts=str(tmp_path / "known_hosts.json"),
    )
    with Inventory.open(tmp_path / "inv.sqlite3") as inventory:
        scan = inventory.create_scan([], options.to_json(), [stalling.target, trusted.target])
        loop = asyncio.get_running_loop()
        start = loop.time()
        # When the scan diagnoses both
        await run_scan(inventory, scan, options)
        # Then the black-holed root list costs one URL time-out of wall time, not more
        assert loop.time() - start < 1.0 + 3
        records = {r.target: r for r in inventory.observations(scan_id=scan.id)}
        slow = records[stalling.target]
        # And the predicted stall is Windows' 15 s, with its cause among the retrievals
        assert slow.verdict == "critical"
        assert slow.predicted_stall_s == pytest.approx(15.0, abs=1.0)
        assert {"self-signed-not-pinned", "predicted-stall"} <= {p.code for p in slow.problems}
        assert slow.retrievals is not None
        assert [(r["purpose"], r["outcome"]) for r in slow.retrievals if r["counted"]] == [
            ("root_list", "timeout"),
        ]
        good = records[trusted.target]
        assert good.verdict == "ok"
        assert good.predicted_stall_s == pytest.approx(0.0, abs=1.0)
        assert {r["purpose"] for r in good.retrievals or ()} >= {"crl", "ocsp"}
    assert ScanOptions.from_json(scan.options) == options


async def test_a_failing_first_record_of_a_batch_interrupts_cleanly(
    inventory_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a store that refuses the very first record (after the batch has begun)
    with contextlib.ExitStack() as bound:
        sockets = [bound.enter_context(socket.socket()) for _ in range(5)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        targets = [Target("127.0.0.1", s.getsockname()[1]) for s in sockets]
        with Inventory.open(inventory_db) as inventory:
            scan = inventory.create_scan([], {}, targets)
            real = inventory.stage

            def refuse_first(scan_id: int, seq: int, *args: Any, **kwargs: Any) -> Any:
                # a target the scan does not have: StoreError when its batch is stored
                return real(scan_id, 10_000 + seq, *args, **kwargs)

            monkeypatch.setattr(inventory, "stage", refuse_first)
            # When the scan runs, the error comes out as itself
            with pytest.raises(StoreError, match="is not a target of scan"):
                await run_scan(inventory, scan, ScanOptions(concurrency=1, timeout=1))
            # Then the batch was closed and the scan marked interrupted, nothing recorded
            assert inventory.staged == 0
            assert inventory.scan(scan.id).status == "interrupted"
            assert inventory.target_states(scan.id) == {"pending": 5, "done": 0}


async def test_a_scan_looks_up_its_leaves_a_batch_at_a_time(
    lab_factory: LabFactory, inventory_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 40 endpoints, each with a certificate of its own, scanned once already
    lab = await lab_factory(count=40, distinct_certs=True)
    with Inventory.open(inventory_db) as inventory:
        first = inventory.create_scan([], {}, lab.targets)
        await run_scan(inventory, first, ScanOptions(concurrency=40, timeout=5))
        singles, batches = counted_lookups(monkeypatch, inventory)
        parsed: list[bytes] = []
        monkeypatch.setattr(leaves_module, "read_leaf", lambda der: parsed.append(der))
        # When the fleet is scanned again
        again = inventory.create_scan([], {}, lab.targets)
        summary = await run_scan(inventory, again, ScanOptions(concurrency=40, timeout=5))
        records = list(inventory.observations(scan_id=again.id))
    # Then its 40 leaves were asked for in batches, never one host at a time, and each
    # came from the inventory: none was parsed again
    assert summary.recorded == summary.ok == 40
    assert singles == []
    assert parsed == []
    assert 1 <= len(batches) <= 40
    assert sum(len(b) for b in batches) == 40
    assert len({r.certificate.sha256 for r in records if r.certificate}) == 40
    assert {r.certificate.sha256 for r in records if r.certificate} == set(lab.endpoint_sha256)
