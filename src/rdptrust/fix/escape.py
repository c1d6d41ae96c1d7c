"""Quoting for every language rdptrust writes text into.

Anything that comes from a certificate or a user (host names, subjects) passes through
one of these before it enters a script or file, so a hostile subject such as
``CN=x'; Remove-Item C:\\ -Recurse; '`` stays a string.
"""

from __future__ import annotations

import shlex

from markupsafe import escape as _html_escape

from rdptrust.errors import UsageError


def _no_controls(text: str, what: str) -> str:
    if any(ord(c) < 0x20 and c not in "\t" for c in text) or "\x7f" in text:
        raise UsageError(f"{what} contains control characters; refusing to write it into a script")
    return text


def powershell_string(text: str) -> str:
    """A PowerShell single-quoted literal: no expansion of ``$``, backticks or ``$()``.

    PowerShell treats the typographic quotes U+2018..U+201B as single quotes too, so
    they are doubled like ``'``.
    """
    _no_controls(text, "text")
    out = []
    for ch in text:
        out.append(ch * 2 if ch in "'\u2018\u2019\u201a\u201b" else ch)
    return "'" + "".join(out) + "'"


def powershell_text_literal(text: str) -> str:
    """Certificate text (a subject) as one PowerShell single-quoted literal.

    Unlike :func:`powershell_string` it never refuses: a line break stays inside the
    literal (a single-quoted string may span lines and expands nothing), written as
    CRLF, the line ending of every script rdptrust writes, so the file holds no bare LF;
    a tab stays; any other control character becomes ``?``; quotes are doubled as there.
    """
    out = []
    for ch in text:
        if ch in "'\u2018\u2019\u201a\u201b":
            out.append(ch * 2)
        elif ch == "\n":
            out.append("\r\n")
        elif ch == "\t" or (ch.isprintable() and ch != "\x7f"):
            out.append(ch)
        else:
            out.append("?")
    return "'" + "".join(out) + "'"


def cmd_string(text: str) -> str:
    """A value safe to place in a .cmd batch line inside double quotes.

    cmd.exe has no escape inside double quotes for ``%`` and ``"``; we refuse those and
    the characters that end a command, rather than guess.
    """
    _no_controls(text, "text")
    bad = set('"%!^&|<>\r\n') & set(text)
    if bad:
        raise UsageError(
            f"{text!r} contains {''.join(sorted(bad))!r}, which cannot be quoted safely in a"
            " .cmd file; use the PowerShell script instead"
        )
    return f'"{text}"'


def reg_string(text: str) -> str:
    """A .reg file string value: backslashes and double quotes escaped."""
    _no_controls(text, "text")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def shell_string(text: str) -> str:
    """A POSIX shell word."""
    return shlex.quote(_no_controls(text, "text"))


def html_text(text: str) -> str:
    """Text for HTML element content or a quoted attribute."""
    return str(_html_escape(text))


def comment_text(text: str) -> str:
    """Text safe on one comment line of any script: control characters replaced."""
    return "".join(c if c.isprintable() else "?" for c in text)
