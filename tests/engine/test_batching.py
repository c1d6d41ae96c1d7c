"""Judgements in batches: each caller gets its own result, one turn of the loop later, and
the batched judgement of a probe is the one assess_probe makes."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from pki.judgements import CHAIN, TRUSTED, UNTRUSTED, probe
from rdptrust.engine.assessment import assess_probe, judge_probe, judged_now
from rdptrust.engine.batching import Batch
from rdptrust.engine.options import AssessOptions
from rdptrust.model.assessment import Assessment
from rdptrust.pki.pinning import KnownHosts


class Recorder:
    """A step that remembers what it was called with, and when (the loop's turn)."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []
        self.turn = 0

    def __call__(self, item: int) -> int:
        if item < 0:
            raise ValueError(f"no square for {item}")
        self.calls.append((self.turn, item))
        return item * item


async def test_the_calls_of_one_turn_run_together_in_order() -> None:
    # Given a batch whose step records the loop turn it ran in
    step = Recorder()
    batch = Batch(step)

    # When five callers ask in the same turn
    tasks = [asyncio.create_task(batch(n)) for n in range(5)]
    await asyncio.sleep(0)  # the tasks run up to their await
    step.turn = 1

    # Then each gets its own result, and all ran together in the next turn, in order
    assert await asyncio.gather(*tasks) == [0, 1, 4, 9, 16]
    assert step.calls == [(1, n) for n in range(5)]


async def test_a_failing_item_fails_only_its_caller() -> None:
    batch = Batch(Recorder())
    results = await asyncio.gather(batch(2), batch(-1), batch(3), return_exceptions=True)
    assert results[0] == 4
    assert results[2] == 9
    assert isinstance(results[1], ValueError)
    assert "no square for -1" in str(results[1])


async def test_a_cancelled_caller_is_skipped() -> None:
    # Given two callers of one turn, one of which stops waiting before the batch runs
    step = Recorder()
    batch = Batch(step)
    kept = asyncio.create_task(batch(2))
    dropped = asyncio.create_task(batch(7))
    await asyncio.sleep(0)
    dropped.cancel()

    # Then the batch runs the other one only
    assert await kept == 4
    with pytest.raises(asyncio.CancelledError):
        await dropped
    assert [item for _, item in step.calls] == [2]


async def test_a_full_batch_runs_at_once_and_the_rest_next_turn() -> None:
    step = Recorder()
    batch = Batch(step, size=2)
    tasks = [asyncio.create_task(batch(n)) for n in range(3)]
    await asyncio.sleep(0)
    # the first two filled the batch and ran in the turn they were asked in
    assert step.calls == [(0, 0), (0, 1)]
    step.turn = 1
    assert await asyncio.gather(*tasks) == [0, 1, 4]
    assert step.calls[2] == (1, 2)


async def test_a_batch_is_reusable_after_it_ran() -> None:
    batch = Batch(Recorder())
    assert await batch(3) == 9
    assert await batch(4) == 16


def test_a_batch_holds_at_least_one() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Batch(Recorder(), size=0)


def _without_elapsed(assessment: Assessment) -> Assessment:
    return dataclasses.replace(assessment, elapsed_ms=0.0)


@pytest.mark.parametrize("anchors", [TRUSTED, UNTRUSTED], ids=["trusted", "untrusted"])
async def test_judge_probe_judges_a_long_chain_as_assess_probe(
    anchors: object, tmp_path: Path
) -> None:
    # Given a served chain longer than the event loop judges (assess_probe builds its path
    # in a worker thread), with duplicates, and no retrievals
    served = [CHAIN.leaf.cert, CHAIN.intermediate.cert, CHAIN.root.cert] * 2
    seen = probe(served)
    options = AssessOptions(
        diagnose=False,
        anchors=anchors,  # type: ignore[arg-type]
        known_hosts=KnownHosts(tmp_path / "known_hosts.json"),
        now=CHAIN.leaf.cert.not_valid_before_utc,
    )
    assert not judged_now(seen, options)

    # When both judge it
    threaded = await assess_probe(seen.target, seen, options)
    here = judge_probe(seen.target, seen, options)

    # Then they agree on everything but the time they took
    assert _without_elapsed(here) == _without_elapsed(threaded)
    assert here.trusted is (anchors is TRUSTED)
    assert len(here.path) == 3


async def test_a_light_chain_without_retrievals_is_judged_now(tmp_path: Path) -> None:
    seen = probe([CHAIN.leaf.cert, CHAIN.intermediate.cert])
    options = AssessOptions(diagnose=False, anchors=TRUSTED, known_hosts=KnownHosts(tmp_path / "k"))
    assert judged_now(seen, options)
    assert not judged_now(seen, dataclasses.replace(options, diagnose=True))
    assert not judged_now(seen, dataclasses.replace(options, intermediates=(b"x",)))
