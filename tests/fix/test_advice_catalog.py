"""The fixes follow the problem catalog: every fix id advice produces is the catalog's,
each fix removes only what the catalog maps to it, and every code gets a fix it maps to."""

from __future__ import annotations

import pytest

from pki.judgements import scenarios
from rdptrust.fix.advice import fixes_for, removed_by
from rdptrust.model import catalog
from rdptrust.model.assessment import Assessment
from rdptrust.model.catalog import STALL_FIXES, FixId, lookup
from rdptrust.model.retrieval import Purpose


@pytest.fixture(scope="module")
def judged() -> list[Assessment]:
    return [j.assessment for j in scenarios() if j.assessment]


def test_each_fix_removes_only_what_the_catalog_maps_to_it(judged: list[Assessment]) -> None:
    for assessment in judged:
        for fix in fixes_for(assessment):
            assert fix.id in set(FixId), fix.id
            assert fix.removes, fix
            for removed in fix.removes:
                if removed in catalog.CATALOG:
                    assert fix.id in lookup(removed).fixes, (fix.id, removed)
                else:
                    assert fix.id in STALL_FIXES[Purpose(removed)], (fix.id, removed)


def test_advice_produces_every_fix_of_the_catalog(judged: list[Assessment]) -> None:
    produced = {fix.id for a in judged for fix in fixes_for(a)}
    mapped = {fix for entry in catalog.ENTRIES for fix in entry.fixes}
    assert produced == set(FixId) == mapped


def test_every_problem_with_fixes_gets_one_of_them(judged: list[Assessment]) -> None:
    for assessment in judged:
        if assessment.leaf is None:
            assert fixes_for(assessment) == ()  # nothing to fix a certificate with
            continue
        removed = {r for fix in fixes_for(assessment) for r in fix.removes}
        for problem in (*assessment.problems, *assessment.findings):
            if problem.code == catalog.PREDICTED_STALL.code:
                continue  # through its causes, below
            if lookup(problem.code).fixes:
                assert problem.code in removed, (assessment.target, problem.code)
        for cause in assessment.causes:
            assert cause.purpose.value in removed, cause


def test_removed_by_counts_a_stall_through_its_causes() -> None:
    codes = {"predicted-stall", "self-signed-not-pinned", "name-mismatch"}
    assert removed_by(FixId.METHOD1_TRUST_HOST_CERTIFICATE, codes, {Purpose.ROOT_LIST}) == (
        "name-mismatch",
        "root_list",
        "self-signed-not-pinned",
    )
    assert removed_by(FixId.METHOD2_DISABLE_ROOT_UPDATE, codes, ()) == ()
    with pytest.raises(catalog.UnknownProblemCode):
        removed_by(FixId.REISSUE_PROPERLY, {"no-such-code"}, ())


def test_root_store_fixes_carry_the_kb_4560600_caveat(judged: list[Assessment]) -> None:
    # WINDOWS.md §7: roots deployed by Group Policy "might intermittently appear as
    # untrusted", RDS listed: every fix that puts a root in the clients' Root store says so
    rooted = {FixId.METHOD1_TRUST_HOST_CERTIFICATE, FixId.TRUST_ISSUING_CA}
    seen = set()
    for assessment in judged:
        for fix in fixes_for(assessment):
            if fix.id in rooted:
                seen.add(fix.id)
                assert "KB 4560600" in fix.note, fix
                assert "certutil -addstore Root" in fix.note
            else:
                assert "KB 4560600" not in fix.note, fix
    assert seen == rooted
