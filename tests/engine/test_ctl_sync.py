"""The certificate trust list syncs, for real, against the lab's responder on loopback."""

from __future__ import annotations

import re

from rdptrust.engine.ctl import sync_lists
from rdptrust.lab.pki import PkiModes, PkiResponder, ResponderMode
from rdptrust.model.retrieval import Fetched, FetchOutcome, Purpose
from rdptrust.pki.windows import ctl_directory

LISTS = (Purpose.ROOT_LIST, Purpose.DISALLOWED_LIST, Purpose.PIN_RULES)


async def _sync(mode: str, lists: tuple[Purpose, ...] = LISTS) -> tuple[list[str], list[Fetched]]:
    async with PkiResponder(None, PkiModes(root_list=ResponderMode.parse(mode))) as pki:
        directory = ctl_directory(pki.root_list_url, None)
        fetched = await sync_lists(lists, directory, timeout=0.5)
        return [r.path for r in pki.requests], list(fetched)


async def test_sequence_file_first_then_the_cabinet_with_a_random_query() -> None:
    paths, fetched = await _sync("ok")
    names = [p.rsplit("/", 1)[1] for p in paths]
    # WINDOWS.md §2: authrootseq.txt, then authrootstl.cab; the disallowed list likewise
    stems = [n.partition("?")[0] for n in names]
    assert stems.index("authrootseq.txt") < stems.index("authrootstl.cab")
    assert stems.index("disallowedcertseq.txt") < stems.index("disallowedcertstl.cab")
    assert "pinrulesstl.cab" in stems
    assert all(re.fullmatch(r"[a-z]+\.(txt|cab)\?[0-9a-f]{16}", n) for n in names), names
    # two syncs never send the same query string
    again, _ = await _sync("ok")
    assert set(again).isdisjoint(paths)
    assert [(f.purpose, f.result.outcome) for f in fetched] == [
        (Purpose.ROOT_LIST, FetchOutcome.OK),
        (Purpose.ROOT_LIST, FetchOutcome.OK),
        (Purpose.DISALLOWED_LIST, FetchOutcome.OK),
        (Purpose.DISALLOWED_LIST, FetchOutcome.OK),
        (Purpose.PIN_RULES, FetchOutcome.OK),
    ]


async def test_a_black_holed_sequence_file_stops_that_list() -> None:
    paths, fetched = await _sync("blackhole", (Purpose.ROOT_LIST,))
    assert [p.rsplit("/", 1)[1].partition("?")[0] for p in paths] == ["authrootseq.txt"]
    (only,) = fetched
    assert only.result.outcome == FetchOutcome.TIMEOUT


async def test_garbage_is_not_a_sequence_number() -> None:
    _, fetched = await _sync("garbage", (Purpose.DISALLOWED_LIST,))
    (only,) = fetched
    assert only.result.outcome == FetchOutcome.INVALID
    assert only.detail == "not a sequence number"


async def test_a_file_mirror_and_no_list_fetch_nothing() -> None:
    assert await sync_lists(LISTS, "file://fileserver/ctl/", timeout=0.5) == ()
    assert await sync_lists((), "http://127.0.0.1:9/", timeout=0.5) == ()
