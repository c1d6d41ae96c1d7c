"""The body budget shared by one chain's retrievals: bounded, never deadlocked."""

from __future__ import annotations

import asyncio

import pytest

from rdptrust.net.http import BodyBudget


async def test_within_the_limit_nothing_waits() -> None:
    budget = BodyBudget(100)
    a, b = object(), object()
    assert await budget.take(a, 60) == 0.0
    assert await budget.take(b, 40) == 0.0
    assert budget.used == 100
    await budget.give_back(a, 60)
    await budget.give_back(b, 40)
    assert budget.used == 0
    assert budget.peak == 100


async def test_one_overdraws_the_others_wait_and_all_finish() -> None:
    # Given many readers that each want three times the budget in small chunks,
    budget = BodyBudget(100)
    done: list[int] = []

    async def reader(n: int) -> None:
        me = object()
        held = 0
        for _ in range(30):
            await budget.take(me, 10)
            held += 10
            await asyncio.sleep(0)
        await budget.give_back(me, held)
        done.append(n)

    # when they all run at once, every one finishes (no deadlock),
    await asyncio.wait_for(asyncio.gather(*(reader(n) for n in range(20))), 10)
    assert sorted(done) == list(range(20))
    # and no more than the limit plus one overdrawn body was ever held.
    assert budget.used == 0
    assert budget.peak <= 100 + 300


def test_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        BodyBudget(0)
