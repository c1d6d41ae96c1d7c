"""``scan --workers``: the observer in worker processes, one writer, every target once."""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from pathlib import Path

import pytest
from test_scan_engine import FLEET, check_outcome, fleet

from fixtures.inventory import leaf_calls
from rdptrust.engine.scan import run_scan
from rdptrust.engine.scan_options import ScanOptions
from rdptrust.engine.workers import BATCH, GRACE_S, ProcessObserver, _Outbox, share
from rdptrust.errors import WorkerError
from rdptrust.lab.certs import CertKind
from rdptrust.lab.runner import Lab, LabConfig
from rdptrust.model.records import ObservationRecord
from rdptrust.model.target import Target
from rdptrust.store.inventory import Inventory


def test_concurrency_is_shared_among_the_workers() -> None:
    assert [share(200, i, 3) for i in range(3)] == [67, 67, 66]
    assert sum(share(7, i, 4) for i in range(4)) == 7


async def test_what_one_turn_posts_goes_in_one_message_of_at_most_batch_items() -> None:
    loop = asyncio.get_running_loop()
    sent: list[list[int]] = []
    outbox = _Outbox(loop, sent.append)
    # Given a turn of the event loop that posts more items than one message carries
    for i in range(BATCH + 10):
        outbox.post(i)
    assert sent == []  # nothing leaves during the turn
    # When the turn is over
    await asyncio.sleep(0)
    # Then they leave as two messages, in order
    assert [len(m) for m in sent] == [BATCH, 10]
    assert [i for m in sent for i in m] == list(range(BATCH + 10))
    # And the next turn's item is a message of its own
    outbox.post("next")
    await asyncio.sleep(0)
    assert sent[-1] == ["next"]
    assert len(sent) == 3


async def test_a_pipe_that_fails_hands_back_what_it_did_not_take() -> None:
    loop = asyncio.get_running_loop()
    taken: list[list[int]] = []
    failures: list[tuple[list[int], str]] = []

    def send(items: list[int]) -> None:
        if taken:
            raise OSError("broken pipe")
        taken.append(items)

    outbox = _Outbox(loop, send, lambda items, exc: failures.append((items, str(exc))))
    for i in range(2 * BATCH + 1):
        outbox.post(i)
    await asyncio.sleep(0)
    # the first message went; the second failed, and it and the third come back once
    assert taken == [list(range(BATCH))]
    assert failures == [(list(range(BATCH, 2 * BATCH + 1)), "broken pipe")]


async def test_a_target_the_worker_cannot_take_fails_with_worker_error() -> None:
    async with ProcessObserver(ScanOptions(concurrency=4, timeout=1.0), 1) as observe:
        worker = observe._workers[0]

        def broken(items: object) -> None:
            raise OSError("pipe closed")

        assert worker.outbox is not None
        worker.outbox._send = broken
        with pytest.raises(WorkerError, match="scan worker 1 cannot take targets"):
            async with asyncio.timeout(10):
                await observe(Target("127.0.0.1", 9))
        assert worker.in_flight == 0
        assert observe._waiting == {}


async def test_a_target_cancelled_before_it_was_sent_is_not_sent() -> None:
    class Held:
        """An event loop stand-in that never runs the flush."""

        def call_soon(self, callback: object) -> None:
            pass

    async with ProcessObserver(ScanOptions(concurrency=4, timeout=1.0), 1) as observe:
        worker = observe._workers[0]
        sent: list[object] = []
        worker.outbox = _Outbox(Held(), sent.append)  # type: ignore[arg-type]
        # Given a target posted to the worker but still in its outbox
        task = asyncio.create_task(observe(Target("127.0.0.1", 9)))
        await asyncio.sleep(0)
        assert [what for what, _, _ in worker.outbox.items] == ["observe"]
        # When the scan gives up on it
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # Then it leaves the outbox and no cancellation follows it
        assert worker.outbox.items == []
        assert sent == []
        assert worker.in_flight == 0


def _parent_pid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fork server is Linux's")
async def test_on_linux_workers_come_from_a_fork_server_that_ends_with_the_scan() -> None:
    async with ProcessObserver(ScanOptions(concurrency=4, timeout=1.0), 2) as observe:
        # Given the workers of a scan: not this process's children, but a fork server's
        parents = {_parent_pid(p.pid) for p in observe.processes}
        assert len(parents) == 1
        (server,) = parents
        assert server != os.getpid()
        assert _parent_pid(server) == os.getpid()
    # When the scan ends, the fork server has ended and been waited for: no process left
    with pytest.raises(ProcessLookupError):
        os.kill(server, 0)


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
