"""The rules table is the one list the outputs and the README cite.

Run ``python tests/pki/test_rules.py`` to rewrite the README's table from it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rdptrust.model.windows import Basis
from rdptrust.pki.rules import BY_ID, RULES, Status, rule, rules_markdown

README = Path(__file__).resolve().parents[2] / "README.md"
START = "<!-- rules table: generated from rdptrust.pki.rules -->\n"
END = "<!-- end of rules table -->\n"


def readme_with_rules(text: str) -> str:
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    return head + START + rules_markdown() + END + tail


def test_ids_are_unique_and_every_rule_has_a_source() -> None:
    assert len(BY_ID) == len(RULES)
    for entry in RULES:
        assert entry.source.strip()
        assert "WINDOWS.md" in entry.source or entry.status == Status.OBSERVED, entry


def test_unverified_rules_are_reported_as_assumed() -> None:
    assert Status.UNVERIFIED.basis == Basis.ASSUMED
    assert Status.DOCUMENTED.basis == Basis.DOCUMENTED
    assert rule("ctl-fetch-wait").status == Status.UNVERIFIED
    assert rule("revocation-regime-unknown").status == Status.UNVERIFIED
    assert rule("revocation-accumulative").status == Status.DOCUMENTED


def test_readme_lists_every_rule_as_the_table_says() -> None:
    text = README.read_text(encoding="utf-8")
    assert START in text, "the README lacks the rules table markers"
    assert END in text, "the README lacks the rules table markers"
    assert readme_with_rules(text) == text, "run: python tests/pki/test_rules.py"
    for entry in RULES:
        assert f"| `{entry.id}` |" in text


if __name__ == "__main__":
    README.write_text(readme_with_rules(README.read_text(encoding="utf-8")), encoding="utf-8")
    sys.exit(0)
