"""The fixes for recorded waits are the catalog's, worded as diagnose words them."""

from __future__ import annotations

import inspect

from rdptrust.fix import advice
from rdptrust.fix.capi2 import STALL_FIX_TEXT, fixes_for_purpose
from rdptrust.model.catalog import STALL_FIXES, FixId
from rdptrust.model.retrieval import Purpose


def test_every_stall_fix_has_a_text_and_the_catalog_order() -> None:
    for purpose, ids in STALL_FIXES.items():
        assert tuple(f.id for f in fixes_for_purpose(purpose)) == ids
    assert fixes_for_purpose(None) == ()
    assert set(STALL_FIX_TEXT) == {f for ids in STALL_FIXES.values() for f in ids}


def test_titles_are_those_of_diagnose() -> None:
    source = inspect.getsource(advice)
    for fix, (title, _) in STALL_FIX_TEXT.items():
        if fix == FixId.TRUST_ISSUING_CA:
            continue  # diagnose names the CA: "Make the clients trust <subject>"
        assert f'"{title}"' in source, fix
    assert fixes_for_purpose(Purpose.CRL)[0].command.startswith(
        "rdptrust policy retrieval-timeouts"
    )
