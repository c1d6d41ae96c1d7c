"""``scan --workers``: the observer in worker processes, one writer, every target once."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest
from test_scan_engine import FLEET, check_outcome, fleet

from fixtures.inventory import leaf_calls
from rdptrust.engine.scan import run_scan
from rdptrust.engine.scan_options import ScanOptions
from rdptrust.engine.workers import GRACE_S, ProcessObserver, share
from rdptrust.errors import WorkerError
from rdptrust.lab.certs import CertKind
from rdptrust.lab.runner import Lab, LabConfig
from rdptrust.model.records import ObservationRecord
from rdptrust.store.inventory import Inventory


def test_concurrency_is_shared_among_the_workers() -> None:
    assert [share(200, i, 3) for i in range(3)] == [67, 67, 66]
    assert sum(share(7, i, 4) for i in range(4)) == 7


async def test_workers_record_every_target_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The scanning process parses no leaf itself: the workers send what they read.
    parsed = leaf_calls(monkeypatch, "read_leaf")
    async with fleet() as f:
        options = ScanOptions(concurrency=48, timeout=1.5)
        with Inventory.open(tmp_path / "inv.sqlite3") as inventory:
            # Given a scan whose target list names some endpoints twice
            scan = inventory.create_scan([], {}, f.targets + f.targets[:10])
            seen: list[ObservationRecord] = []
            # When three worker processes observe and this process records
            async with ProcessObserver(options, 3) as observe:
                summary = await run_scan(
                    inventory,
                    scan,
                    options,
                    observer=observe,
                    on_result=seen.append,
                    leaf_source=observe.leaf,
                    grace_s=GRACE_S,
                )
                handled = observe.handled
            # Then every target is recorded exactly once, with the outcome one process gives
            assert summary.status == "done"
            assert summary.recorded == summary.done == 203
            assert Counter(r.target for r in seen) == Counter(f.targets)
            records = list(inventory.observations(scan_id=scan.id))
            assert len(records) == 203
            for record in records:
                check_outcome(record, f)
            assert inventory.target_states(scan.id) == {"pending": 0, "done": 203}
            hosts = inventory.hosts()
            served = {h.latest.certificate.sha256 for h in hosts if h.latest.certificate}
            assert len(served) == len(FLEET)
    # And the work was shared: each process observed targets, 203 in all
    assert len(handled) == 3
    assert all(n > 0 for n in handled)
    assert sum(handled) == 203
    assert parsed == []


async def test_a_killed_worker_interrupts_and_resume_records_the_rest_once(
    tmp_path: Path,
) -> None:
    # 60 endpoints that each take 0.4 s to answer, 6 at a time: the scan runs ~4 s
    config = LabConfig(count=60, cert=CertKind.SELF_SIGNED, latency_ms=400)
    options = ScanOptions(concurrency=6, timeout=5.0)
    async with Lab(config) as lab:
        with Inventory.open(tmp_path / "inv.sqlite3") as inventory:
            scan = inventory.create_scan([], {}, lab.targets)
            recorded: list[ObservationRecord] = []
            some = asyncio.Event()

            def on_result(record: ObservationRecord) -> None:
                recorded.append(record)
                if len(recorded) >= 6:
                    some.set()

            async with ProcessObserver(options, 2) as observe:
                task = asyncio.create_task(
                    run_scan(
                        inventory,
                        scan,
                        options,
                        observer=observe,
                        on_result=on_result,
                        leaf_source=observe.leaf,
                        grace_s=GRACE_S,
                    )
                )
                # When a worker is killed once some hosts are recorded
                async with asyncio.timeout(30):
                    await some.wait()
                observe.processes[0].kill()
                # Then the scan stops with an error that is not the hosts'
                with pytest.raises(WorkerError, match="ended unexpectedly"):
                    await task
            states = inventory.target_states(scan.id)
            assert states["pending"] > 0
            assert states["done"] + states["pending"] == 60
            assert inventory.scan(scan.id).status == "interrupted"
            # nothing recorded for the targets the killed worker held
            done_before = states["done"]
            assert len(list(inventory.observations(scan_id=scan.id))) == done_before
            # And resuming records the rest, each target once in all
            resumed = inventory.claim_scan(scan.id)
            async with ProcessObserver(options, 2) as observe:
                summary = await run_scan(
                    inventory,
                    resumed,
                    options,
                    observer=observe,
                    leaf_source=observe.leaf,
                    grace_s=GRACE_S,
                )
            assert summary.status == "done"
            assert summary.recorded == 60 - done_before
            records = list(inventory.observations(scan_id=scan.id))
            assert Counter(r.target for r in records) == Counter(lab.targets)
            assert all(r.ok for r in records)
