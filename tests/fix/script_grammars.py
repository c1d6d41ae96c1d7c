"""Parsers for the script languages rdptrust writes, strict enough to fail on a bad quote.

- PowerShell: the ``tree-sitter-powershell`` grammar (PyPI), a real syntax tree.
- ``.reg``: regedit's documented format (Microsoft, "How to add, modify, or delete
  registry subkeys and values by using a .reg file", KB 310516): the header
  ``Windows Registry Editor Version 5.00`` in UTF-16 LE with a BOM (or ``REGEDIT4`` in
  ANSI), ``[HIVE\\key]`` lines, ``"name"=value`` lines whose strings escape only ``\\``
  and ``"``, values ``"string"``, ``dword:XXXXXXXX``, ``hex:..``/``hex(N):..`` and ``-``.
- ``.cmd``: cmd.exe's documented parsing order (``cmd /?``, ``set /?``, ``call /?``):
  ``%`` expansion first, then the special characters ``& | < > ( ) ^`` outside double
  quotes; a double quote toggles quoting. :func:`check_cmd_value_inert` says whether a
  value placed in a line stays one inert quoted argument.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import tree_sitter_powershell
from tree_sitter import Language, Node, Parser, Tree

_POWERSHELL = Parser(Language(tree_sitter_powershell.language()))


def parse_powershell(text: str) -> Tree:
    return _POWERSHELL.parse(text.encode("utf-8"))


def syntax_faults(tree: Tree) -> list[str]:
    """Every ERROR or MISSING node of *tree*, as ``type@row:column``."""
    faults = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            faults.append(f"{node.type}@{node.start_point[0]}:{node.start_point[1]}")
        stack.extend(node.children)
    return faults


def nodes_of_type(tree: Tree, kind: str) -> list[Node]:
    found = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == kind:
            found.append(node)
        stack.extend(node.children)
    return found


# --- .reg ---------------------------------------------------------------------------

REG5_HEADER = "Windows Registry Editor Version 5.00"
REG4_HEADER = "REGEDIT4"
HIVES = {
    "HKEY_LOCAL_MACHINE",
    "HKEY_CURRENT_USER",
    "HKEY_CLASSES_ROOT",
    "HKEY_USERS",
    "HKEY_CURRENT_CONFIG",
}


class RegSyntaxError(ValueError):
    pass


@dataclass(frozen=True)
class RegValue:
    kind: str  # "sz", "dword", "hex", "hex(N)", "delete"
    value: str | int | bytes | None


def _reg_quoted(text: str, at: int, line_no: int) -> tuple[str, int]:
    """The string starting with ``"`` at *at*: its value and the index after it."""
    if text[at : at + 1] != '"':
        raise RegSyntaxError(f"line {line_no}: a quoted string expected at column {at}")
    out = []
    i = at + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            nxt = text[i + 1 : i + 2]
            if nxt not in ('"', "\\"):
                raise RegSyntaxError(f"line {line_no}: invalid escape \\{nxt} at column {i}")
            out.append(nxt)
            i += 2
        elif ch == '"':
            return "".join(out), i + 1
        else:
            out.append(ch)
            i += 1
    raise RegSyntaxError(f"line {line_no}: unterminated string")


_HEX_BYTES = re.compile(r"^[0-9a-fA-F]{2}(,[0-9a-fA-F]{2})*$")


def parse_reg(data: bytes) -> dict[str, dict[str, RegValue]]:
    """A .reg file's keys and values; RegSyntaxError at the first thing regedit refuses."""
    if data.startswith(b"\xff\xfe"):
        text = data[2:].decode("utf-16-le")
        header = REG5_HEADER
    else:
        text = data.decode("ascii")
        header = REG4_HEADER
    lines = text.split("\r\n")
    if lines[0] != header:
        raise RegSyntaxError(f"first line {lines[0]!r} is not {header!r} (or its BOM is wrong)")
    if lines[-1] != "":
        raise RegSyntaxError("the file does not end with CRLF")
    keys: dict[str, dict[str, RegValue]] = {}
    current: dict[str, RegValue] | None = None
    for number, line in enumerate(lines[1:-1], start=2):
        if "\n" in line or "\r" in line:
            raise RegSyntaxError(f"line {number}: a bare CR or LF")
        if not line or line.startswith(";"):
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise RegSyntaxError(f"line {number}: a key line must end with ]")
            path = line[1:-1].removeprefix("-")
            hive = path.split("\\", 1)[0]
            if hive not in HIVES or "\\\\" in path or path.endswith("\\"):
                raise RegSyntaxError(f"line {number}: bad key {path!r}")
            current = keys.setdefault(path, {})
            continue
        if current is None:
            raise RegSyntaxError(f"line {number}: a value before any key")
        if line.startswith("@="):
            name, rest = "", line[2:]
        else:
            name, end = _reg_quoted(line, 0, number)
            if line[end : end + 1] != "=":
                raise RegSyntaxError(f"line {number}: '=' expected after the value name")
            rest = line[end + 1 :]
        if rest.startswith('"'):
            value, end = _reg_quoted(rest, 0, number)
            if end != len(rest):
                raise RegSyntaxError(f"line {number}: text after the string: {rest[end:]!r}")
            current[name] = RegValue("sz", value)
        elif rest.startswith("dword:"):
            digits = rest[6:]
            if not re.fullmatch(r"[0-9a-fA-F]{8}", digits):
                raise RegSyntaxError(f"line {number}: dword needs 8 hex digits, not {digits!r}")
            current[name] = RegValue("dword", int(digits, 16))
        elif match := re.fullmatch(r"(hex(?:\([0-9a-fA-F]+\))?):(.*)", rest):
            if match.group(2) and not _HEX_BYTES.match(match.group(2)):
                raise RegSyntaxError(f"line {number}: bad hex bytes {match.group(2)!r}")
            current[name] = RegValue(match.group(1), bytes.fromhex(match.group(2).replace(",", "")))
        elif rest == "-":
            current[name] = RegValue("delete", None)
        else:
            raise RegSyntaxError(f"line {number}: unknown value {rest!r}")
    return keys


# --- .cmd ---------------------------------------------------------------------------

#: What cmd.exe expands or treats as syntax: % always; the rest outside double quotes.
CMD_ALWAYS = set('%"')
CMD_OUTSIDE_QUOTES = set("&|<>()^")


class CmdQuotingError(ValueError):
    pass


def _quoted_spans(line: str) -> list[tuple[int, int]]:
    """The [start, end) spans of *line* inside double quotes, as cmd.exe toggles them."""
    spans = []
    start: int | None = None
    for i, ch in enumerate(line):
        if ch == '"':
            if start is None:
                start = i + 1
            else:
                spans.append((start, i))
                start = None
        elif ch == "^" and start is None:
            continue
    if start is not None:
        spans.append((start, len(line)))
    return spans


def check_cmd_value_inert(script: str, value: str) -> None:
    """CmdQuotingError unless every occurrence of *value* in *script* is inert.

    Inert: inside a double-quoted span that it does not end (no ``"``), with no ``%``
    (expanded even inside quotes) and no ``!`` (expanded under delayed expansion). A
    value outside quotes may not hold any of ``& | < > ( ) ^`` or spaces.
    """
    found = False
    for number, line in enumerate(script.split("\r\n"), start=1):
        at = line.find(value)
        while at != -1:
            found = True
            end = at + len(value)
            bad_always = (CMD_ALWAYS | {"!"}) & set(value)
            if bad_always:
                raise CmdQuotingError(
                    f"line {number}: {''.join(sorted(bad_always))!r} in {value!r} is expanded"
                )
            inside = any(s <= at and end <= e for s, e in _quoted_spans(line))
            if not inside:
                special = (CMD_OUTSIDE_QUOTES | {" ", "\t", ";", ","}) & set(value)
                if special:
                    raise CmdQuotingError(
                        f"line {number}: {''.join(sorted(special))!r} of {value!r} is outside"
                        " quotes"
                    )
            at = line.find(value, end)
    if not found:
        raise CmdQuotingError(f"{value!r} does not appear in the script")


def check_cmd_percent_signs(script: str) -> None:
    """CmdQuotingError for a ``%`` that is not ``%%`` or a batch parameter like ``%~dp0``."""
    for number, line in enumerate(script.split("\r\n"), start=1):
        rest = re.sub(r"%%|%~[a-z]*[0-9]|%[0-9*]", "", line)
        if "%" in rest:
            raise CmdQuotingError(f"line {number}: a % that cmd.exe would expand: {line!r}")
