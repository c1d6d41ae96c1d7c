"""The shared queue: claims, leases, hand-back and completion, on both backends."""

from __future__ import annotations

import threading
import time

from fixtures.inventory import served
from rdptrust.engine.scan import record_result
from rdptrust.lab.certs import windows_self_signed
from rdptrust.model.records import HostResult
from rdptrust.model.target import Target
from rdptrust.store.inventory import Inventory

TARGETS = [Target("127.0.0.1", 20000 + i) for i in range(10)]
CREDENTIALS = windows_self_signed("WIN-QUEUE")


def _queue(inventory: Inventory, site: str = "hq") -> int:
    return inventory.create_scan(["fleet"], {}, TARGETS, site=site, queued=True).id


def _record(inventory: Inventory, scan_id: int, claimed: list[tuple[int, Target]]) -> None:
    for seq, target in claimed:
        record_result(inventory, scan_id, seq, target, HostResult(served(target, CREDENTIALS)))


def test_two_workers_claim_different_targets_and_finish_the_scan(inventory_db: str) -> None:
    with Inventory.open(inventory_db) as inventory:
        scan_id = _queue(inventory)
        assert inventory.scan(scan_id).queued
        assert inventory.scan(scan_id).pid is None
        # Given two workers of the site claiming four targets each
        first = inventory.claim_targets("hq", "m:1", 4, 60)
        second = inventory.claim_targets("hq", "m:2", 4, 60)
        assert first is not None
        assert second is not None
        assert {s for s, _ in first[1]} == {0, 1, 2, 3}
        assert {s for s, _ in second[1]} == {4, 5, 6, 7}
        # and a worker of another site, which finds nothing
        assert inventory.claim_targets("branch-2", "m:3", 4, 60) is None
        status = inventory.queue_status(scan_id)
        assert (status.done, status.claimed, status.waiting) == (0, 8, 2)
        # When each records what it claimed, and the first takes the rest
        _record(inventory, scan_id, first[1])
        _record(inventory, scan_id, second[1])
        third = inventory.claim_targets("hq", "m:1", 4, 60)
        assert third is not None
        assert [s for s, _ in third[1]] == [8, 9]
        assert not inventory.finish_queued(scan_id)
        _record(inventory, scan_id, third[1])
        # Then the scan is done, and the status says who did what
        assert inventory.claim_targets("hq", "m:1", 4, 60) is None
        assert inventory.open_queued("hq") == []
        assert inventory.scan(scan_id).status == "done"
        status = inventory.queue_status(scan_id)
        assert (status.done, status.claimed, status.waiting) == (10, 0, 0)
        assert [(w.worker, w.done, w.claimed) for w in status.workers] == [
            ("m:1", 6, 0),
            ("m:2", 4, 0),
        ]


def test_a_lapsed_lease_is_claimed_again_and_a_released_batch_at_once(inventory_db: str) -> None:
    with Inventory.open(inventory_db) as inventory:
        scan_id = _queue(inventory)
        # Given a worker that claims 3 targets for a short lease and is then silent
        dead = inventory.claim_targets("hq", "m:dead", 3, 0.2)
        assert dead is not None
        assert [s for s, _ in dead[1]] == [0, 1, 2]
        live = inventory.claim_targets("hq", "m:live", 3, 60)
        assert live is not None
        assert [s for s, _ in live[1]] == [3, 4, 5]
        # When its lease passes, the next claim takes its targets first
        time.sleep(0.3)
        taken = inventory.claim_targets("hq", "m:live", 3, 60)
        assert taken is not None
        assert [s for s, _ in taken[1]] == [0, 1, 2]
        # And a renewed lease is not taken; a released batch is, at once
        assert inventory.renew_claims(scan_id, "m:live", 60) == 6
        inventory.release_claims(scan_id, "m:live")
        again = inventory.claim_targets("hq", "m:other", 10, 60)
        assert again is not None
        assert [s for s, _ in again[1]] == list(range(10))


def test_a_queued_scan_is_not_resumed_by_scan(inventory_db: str) -> None:
    import pytest

    from rdptrust.errors import UsageError

    with Inventory.open(inventory_db) as inventory:
        scan_id = _queue(inventory, site="branch-2")
        with pytest.raises(UsageError, match="rdptrust worker --site branch-2"):
            inventory.claim_scan(scan_id)


def test_concurrent_claims_never_share_a_target(inventory_db: str) -> None:
    # Given eight connections (as eight workers would have) claiming at the same time
    with Inventory.open(inventory_db) as inventory:
        scan_id = inventory.create_scan(
            ["fleet"], {}, [Target("127.0.0.1", 1 + i) for i in range(400)], site="hq", queued=True
        ).id
    claimed: dict[str, list[int]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def claim(name: str) -> None:
        try:
            with Inventory.open(inventory_db, lock_timeout=30) as own:
                start.wait()
                while (got := own.claim_targets("hq", name, 7, 60)) is not None:
                    claimed.setdefault(name, []).extend(s for s, _ in got[1])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=claim, args=(f"m:{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    # Then every target was claimed once, by one of them
    every = [s for seqs in claimed.values() for s in seqs]
    assert sorted(every) == list(range(400))
    with Inventory.open(inventory_db) as inventory:
        assert inventory.queue_status(scan_id).claimed == 400
