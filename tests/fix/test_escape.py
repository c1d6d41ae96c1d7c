"""Hostile certificate text stays inert in every language rdptrust writes."""

from __future__ import annotations

import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rdptrust.errors import UsageError
from rdptrust.fix.escape import (
    cmd_string,
    comment_text,
    html_text,
    powershell_string,
    reg_string,
    shell_string,
)
from rdptrust.fix.host_cert import trust_script

HOSTILE = [
    "CN=x'; Remove-Item C:\\ -Recurse; '",
    'CN="quoted" $(whoami) `calc` ; & | < >',
    "CN=<script>alert(1)</script>",
    "CN=\u2019; Stop-Computer; \u2018",
    "CN=${env:USERNAME} @(1) $null",
]

printable = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x2FFF, exclude_characters="\x7f"),
    max_size=40,
)


def powershell_single_quoted_value(literal: str) -> str:
    """Decode a PowerShell single-quoted literal, failing if anything is outside the quotes."""
    quotes = "'\u2018\u2019\u201a\u201b"
    assert literal[0] in quotes
    assert literal[-1] in quotes
    out, i, body = [], 0, literal[1:-1]
    while i < len(body):
        ch = body[i]
        if ch in quotes:
            # inside the literal a quote must be doubled, or the string would end here
            assert i + 1 < len(body), "literal ends early"
            assert body[i + 1] in quotes, f"unescaped quote at {i}"
            out.append(ch)
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


@pytest.mark.parametrize("text", HOSTILE)
def test_powershell_literal_is_closed(text: str) -> None:
    assert powershell_single_quoted_value(powershell_string(text)) == text


@given(printable)
def test_powershell_round_trip(text: str) -> None:
    assert powershell_single_quoted_value(powershell_string(text)) == text


@settings(max_examples=40, deadline=None)
@given(printable)
def test_shell_word_round_trips_through_bash(text: str) -> None:
    out = subprocess.run(
        ["bash", "-c", f"printf %s {shell_string(text)}"],
        capture_output=True,
        timeout=10,
        check=True,
    )
    assert out.stdout.decode() == text


@pytest.mark.parametrize("text", HOSTILE)
def test_reg_and_html(text: str) -> None:
    reg = reg_string(text)
    assert reg.startswith('"')
    assert reg.endswith('"')
    inner = reg[1:-1]
    # every double quote inside is escaped
    assert all(inner[i - 1] == "\\" for i, c in enumerate(inner) if c == '"')
    html = html_text(text)
    assert "<" not in html
    assert ">" not in html
    assert '"' not in html
    assert "'" not in html


def test_cmd_refuses_what_it_cannot_quote() -> None:
    assert cmd_string("host.cer") == '"host.cer"'
    for text in HOSTILE[1:3]:
        with pytest.raises(UsageError):
            cmd_string(text)


def test_control_characters_refused_or_replaced() -> None:
    with pytest.raises(UsageError):
        powershell_string("a\r\nRemove-Item x")
    assert comment_text("a\r\nRemove-Item x") == "a??Remove-Item x"


@pytest.mark.parametrize("subject", HOSTILE)
def test_trust_script_keeps_subject_in_a_comment(subject: str) -> None:
    script = trust_script("host.cer", "ab" * 20, subject)
    lines = script.split("\r\n")
    assert lines[0].startswith("# ")
    # the subject appears raw only on the first (comment) line; elsewhere only as the
    # literal of $subject (tests/fix/test_script_parsers.py parses it)
    assert all(subject not in line for line in lines[1:] if not line.startswith("$subject = "))
    assert sum(line.startswith("$subject = '") for line in lines) == 1
