"""The problem catalog: every code once, every emitted code in it, every entry emitted,
the README's table made from it, and no problem built around it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from pki.judgements import Judged, scenarios
from rdptrust.model import catalog
from rdptrust.model.catalog import (
    CATALOG,
    ENTRIES,
    STALL_FIXES,
    CatalogEntry,
    FixId,
    Kind,
    UnknownProblemCode,
    catalog_markdown,
    lookup,
)
from rdptrust.model.problems import Severity
from rdptrust.model.retrieval import Purpose
from rdptrust.pki.judge import STALL_CRITICAL_S, STALL_WARNING_S

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "rdptrust"
#: Catalog codes (and severities) that no scenario raises, each with the reason. Empty:
#: every code is raised at every severity it allows.
NOT_EMITTED: dict[tuple[str, Severity], str] = {}


@pytest.fixture(scope="module")
def judged() -> tuple[Judged, ...]:
    return scenarios()


def test_every_code_once_with_its_facts() -> None:
    assert len(CATALOG) == len(ENTRIES)
    assert list(CATALOG) == [e.code for e in ENTRIES]
    for entry in ENTRIES:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", entry.code), entry.code
        assert entry.severities == tuple(sorted(entry.severities, key=lambda s: s.rank))
        assert entry.label
        assert entry.doc
        assert len(set(entry.fixes)) == len(entry.fixes)
        assert lookup(entry.code) is entry
        assert getattr(catalog, entry.code.upper().replace("-", "_")) is entry
    labels = [e.label for e in ENTRIES]
    assert len(set(labels)) == len(labels)


def test_the_stall_doc_gives_the_judges_thresholds() -> None:
    doc = catalog.PREDICTED_STALL.doc
    assert f"wait {STALL_WARNING_S:g} s or more (critical from {STALL_CRITICAL_S:g} s)" in doc


def test_lookup_refuses_an_unknown_code() -> None:
    with pytest.raises(UnknownProblemCode, match="no-such-code"):
        lookup("no-such-code")
    assert isinstance(UnknownProblemCode("x"), KeyError)


def test_an_entry_refuses_a_severity_it_does_not_allow() -> None:
    problem = catalog.EXPIRED.problem(Severity.CRITICAL, "gone")
    assert (problem.code, problem.severity, problem.message) == ("expired", "critical", "gone")
    with pytest.raises(ValueError, match="expired cannot be warning"):
        catalog.EXPIRED.problem(Severity.WARNING, "gone")
    with pytest.raises(ValueError, match="warning or critical"):
        CatalogEntry("fine", Kind.CHAIN, (Severity.OK,), "fine", "nothing")
    with pytest.raises(ValueError, match="table cell"):
        CatalogEntry("bad", Kind.CHAIN, (Severity.WARNING,), "a | b", "doc")


def test_every_fix_is_reached_from_a_code() -> None:
    mapped = {fix for entry in ENTRIES for fix in entry.fixes}
    assert mapped == set(FixId)
    assert set(STALL_FIXES) == set(Purpose)
    stall = {fix for fixes in STALL_FIXES.values() for fix in fixes}
    assert set(catalog.PREDICTED_STALL.fixes) == stall


def test_every_emitted_code_is_in_the_catalog_at_an_allowed_severity(
    judged: tuple[Judged, ...],
) -> None:
    assert len({j.name for j in judged}) == len(judged)
    for judgement in judged:
        for problem in judgement.raised:
            entry = lookup(problem.code)  # raises for a code the catalog lacks
            assert problem.severity in entry.severities, (judgement.name, problem)
        assessment = judgement.assessment
        if assessment is not None:
            # findings come from the probe, problems from the chain and the retrievals
            assert all(lookup(f.code).kind is Kind.FINDING for f in assessment.findings)
            assert all(lookup(p.code).kind is not Kind.FINDING for p in assessment.problems)
            if not assessment.diagnosed:
                kinds = {lookup(p.code).kind for p in assessment.problems}
                assert Kind.DIAGNOSIS not in kinds, judgement.name


def test_every_catalog_entry_is_emitted_at_every_severity(judged: tuple[Judged, ...]) -> None:
    emitted = {(p.code, p.severity) for j in judged for p in j.raised}
    catalogued = {(e.code, s) for e in ENTRIES for s in e.severities}
    assert emitted <= catalogued
    assert not (emitted & set(NOT_EMITTED)), "marked as not emitted, but it is"
    assert catalogued - emitted == set(NOT_EMITTED)


def test_the_readme_table_is_the_catalog() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.findall(
        r"<!-- problem-codes:begin -->\n(.*?)<!-- problem-codes:end -->", readme, re.DOTALL
    )
    assert found == [catalog_markdown()], (
        "regenerate the README table with rdptrust.model.catalog.catalog_markdown()"
    )
    table = catalog_markdown().splitlines()
    assert len(table) == 2 + len(ENTRIES)
    assert all(row.count(" | ") == 5 for row in table[2:])


def test_no_problem_is_built_around_the_catalog() -> None:
    # Given every module of rdptrust but the catalog
    offenders: list[str] = []
    codes = set(CATALOG)
    for path in sorted(SRC.rglob("*.py")):
        if path == SRC / "model" / "catalog.py":
            continue
        relative = path.relative_to(SRC).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            # Then none builds a Problem itself...
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Problem":
                offenders.append(f"{relative}:{node.lineno}: Problem(...)")
            # ...and the modules that emit or describe codes spell none as a literal
            if (
                relative.startswith("pki/") or relative in ("monitor/check.py", "fix/advice.py")
            ) and (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and node.value in codes
            ):
                offenders.append(f"{relative}:{node.lineno}: {node.value!r}")
    assert offenders == []


def test_the_catalog_imports_nothing_above_the_model() -> None:
    tree = ast.parse((SRC / "model" / "catalog.py").read_text(encoding="utf-8"))
    imported = [
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module is not None
    ]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    ours = [name for name in imported if name.startswith("rdptrust")]
    assert ours
    assert all(name.startswith("rdptrust.model") for name in ours), ours
